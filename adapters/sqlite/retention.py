"""The janitor's deletes: every table bounded by a ``RetentionPolicy``, in short batches.

Each batch is one writer op that deletes at most ``policy.batch_size`` rows, and the next
is submitted only after it committed, so live writes queue between them (writer
fairness): a trim of a million rows never holds the write lock for more than a batch.
A table-wide rule deletes through a ``LIMIT``-ed select that an index serves; the rules
per check and per session find their work on the read connection first (it does not
block the writer), and each delete re-checks its condition in its own transaction, so a
row that changed meanwhile (a session restored, say) is left alone.

The rules (``orchestrator/domain/retention.py``):

- change log: beyond the newest ``change_log_max_rows`` rows, or older than
  ``change_log_max_age``; only a prefix is ever deleted, so a reader's cursor never skips
  a surviving row;
- outbox: delivered or given-up rows settled longer than ``outbox_settled_max_age`` ago;
  an open row stays whatever its age (docs/design.md, D-1);
- notifications: read or resolved longer than ``notification_read_max_age`` ago, then the
  oldest beyond ``notifications_max_rows``;
- check runs: beyond the newest ``check_runs_per_check`` runs of each check on each PR (in
  the CI brake's order: first-seen time, then insertion);
- sessions terminal for longer than ``terminated_history_max_age``: their reaction
  trackers, check runs and review comments (a live session's trackers stay:
  docs/design.md, D-2).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar

from adapters.sqlite.statements import CHANGE_LOG_HEAD, MAX_LOGGED_SEQ, TRIM_UPTO
from adapters.sqlite.tables import encode_ts
from orchestrator.domain.retention import RetentionPolicy, RetentionReport

_T = TypeVar("_T")


class Submit(Protocol):
    """The store's write: run ``op`` in the writer, errors named by ``what``."""

    def __call__(self, op: Callable[[sqlite3.Cursor], _T], what: str, /) -> Awaitable[_T]: ...


Read = Callable[[str, Sequence[Any]], Awaitable[list[tuple[Any, ...]]]]

# --- outbox and notifications ---------------------------------------------------------------

# The settled condition is written exactly as idx_outbox_settled's (migration 0003), so the
# index serves it.
DELETE_SETTLED_OUTBOX: Final = (
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
    " WHERE (delivered_at IS NOT NULL OR failed_at IS NOT NULL)"
    " AND COALESCE(delivered_at, failed_at) < ? LIMIT ?)"
)
DELETE_READ_NOTIFICATIONS: Final = (
    "DELETE FROM notifications WHERE id IN ("
    "SELECT id FROM notifications WHERE read_at < ?"
    " UNION SELECT id FROM notifications WHERE resolved_at < ? LIMIT ?)"
)
# The newest id beyond the cap (none when within it).
NOTIFICATIONS_CAP_EDGE: Final = "SELECT id FROM notifications ORDER BY id DESC LIMIT 1 OFFSET ?"
DELETE_NOTIFICATIONS_UPTO: Final = (
    "DELETE FROM notifications WHERE id IN"
    " (SELECT id FROM notifications WHERE id <= ? ORDER BY id LIMIT ?)"
)

# --- check runs -----------------------------------------------------------------------------

# Only a check that gained a run since the last pass can have gone over the cap, so a pass
# counts the runs of just those (new runs take rowids above every earlier one): counting
# every check each pass cost ~4 ms per 20k runs, on the event loop.
MAX_RUN_ROWID: Final = "SELECT COALESCE(MAX(rowid), 0) FROM pr_checks"
CHECKS_OVER_CAP: Final = (
    "SELECT pc.pr_url, pc.name FROM pr_checks AS pc"
    " WHERE (pc.pr_url, pc.name) IN (SELECT pr_url, name FROM pr_checks WHERE rowid > ?)"
    " GROUP BY pc.pr_url, pc.name HAVING COUNT(*) > ?"
)
# Newest first as the CI brake reads them (idx_pr_checks_lookup), skipping the kept ones.
DELETE_OLD_RUNS: Final = (
    "DELETE FROM pr_checks WHERE rowid IN (SELECT rowid FROM pr_checks"
    " WHERE pr_url = ? AND name = ? ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?)"
)

# --- sessions terminal for long -------------------------------------------------------------

# Both name the terminal states (TERMINAL_STATES; a test checks they agree).
LONG_TERMINATED_WITH_HISTORY: Final = (
    "SELECT s.id FROM sessions AS s"
    " WHERE (s.session_state = 'done' OR s.session_state = 'terminated')"
    " AND s.updated_at < ?"
    " AND (EXISTS (SELECT 1 FROM reaction_trackers AS rt WHERE rt.session_id = s.id)"
    " OR EXISTS (SELECT 1 FROM pr JOIN pr_checks AS pc ON pc.pr_url = pr.url"
    " WHERE pr.session_id = s.id)"
    " OR EXISTS (SELECT 1 FROM pr JOIN pr_comment AS c ON c.pr_url = pr.url"
    " WHERE pr.session_id = s.id))"
    " ORDER BY s.id"
)
IS_LONG_TERMINATED: Final = (
    "SELECT 1 FROM sessions AS s WHERE s.id = ?"
    " AND (s.session_state = 'done' OR s.session_state = 'terminated') AND s.updated_at < ?"
)
DELETE_SESSION_TRACKERS: Final = (
    "DELETE FROM reaction_trackers WHERE session_id = ? AND key IN"
    " (SELECT key FROM reaction_trackers WHERE session_id = ? LIMIT ?)"
)
DELETE_SESSION_RUNS: Final = (
    "DELETE FROM pr_checks WHERE rowid IN (SELECT pc.rowid FROM pr"
    " JOIN pr_checks AS pc ON pc.pr_url = pr.url WHERE pr.session_id = ? LIMIT ?)"
)
DELETE_SESSION_COMMENTS: Final = (
    "DELETE FROM pr_comment WHERE rowid IN (SELECT c.rowid FROM pr"
    " JOIN pr_comment AS c ON c.pr_url = pr.url WHERE pr.session_id = ? LIMIT ?)"
)


class SqliteJanitor:
    """Runs the retention rules through the store's writer (``submit``) and reader (``read``)."""

    def __init__(self, submit: Submit, read: Read) -> None:
        self._submit = submit
        self._read = read
        # The check-run rowid and cap of the last pass (the first pass counts every check).
        self._runs_seen = (0, 0)

    async def apply(self, policy: RetentionPolicy, now: datetime) -> RetentionReport:
        """One pass of every rule; the rows deleted per table."""
        batch = policy.batch_size
        change_log = await self.trim_change_log(
            older_than=now - policy.change_log_max_age,
            keep_max_rows=policy.change_log_max_rows,
            batch_size=batch,
        )
        outbox = await self._repeat(
            DELETE_SETTLED_OUTBOX,
            (encode_ts(now - policy.outbox_settled_max_age), batch),
            batch,
            "trim of settled outbox rows",
        )
        read_before = encode_ts(now - policy.notification_read_max_age)
        notifications = await self._repeat(
            DELETE_READ_NOTIFICATIONS,
            (read_before, read_before, batch),
            batch,
            "trim of read notifications",
        )
        edge = await self._read(NOTIFICATIONS_CAP_EDGE, (policy.notifications_max_rows,))
        if edge:
            notifications += await self._repeat(
                DELETE_NOTIFICATIONS_UPTO,
                (edge[0][0], batch),
                batch,
                "trim of the oldest notifications",
            )
        check_runs = await self._trim_check_runs(policy.check_runs_per_check, batch)
        trackers, runs, comments = await self._trim_terminated(
            encode_ts(now - policy.terminated_history_max_age), batch
        )
        return RetentionReport(
            change_log=change_log,
            outbox=outbox,
            notifications=notifications,
            check_runs=check_runs + runs,
            comments=comments,
            trackers=trackers,
        )

    async def trim_change_log(
        self, *, older_than: datetime, keep_max_rows: int, batch_size: int = 500
    ) -> int:
        """Delete the oldest change-log rows, ``batch_size`` per writer op; how many went.

        A row goes when it is beyond the newest ``keep_max_rows`` rows, or when it and every
        row before it are older than ``older_than``. Only a prefix of the log is ever
        deleted (a check-status row stamped with its old first-seen time survives while
        newer rows precede it), so a reader's cursor never skips a surviving row.
        """
        if keep_max_rows < 0 or batch_size < 1:
            raise ValueError("keep_max_rows must be >= 0 and batch_size >= 1")
        cutoff_time = encode_ts(older_than)

        def op(cur: sqlite3.Cursor) -> int:
            head = cur.execute(CHANGE_LOG_HEAD, (batch_size,)).fetchall()
            if not head:
                return 0
            (max_seq,) = cur.execute(MAX_LOGGED_SEQ).fetchone()
            over_cap = max_seq - keep_max_rows
            upto = None
            for seq, created_at in head:
                if seq <= over_cap or created_at < cutoff_time:
                    upto = seq
                else:
                    break
            if upto is None:
                return 0
            return cur.execute(TRIM_UPTO, (upto,)).rowcount

        total = 0
        while True:
            deleted = await self._submit(op, "trim of the change log")
            total += deleted
            if deleted < batch_size:
                return total

    async def _repeat(self, sql: str, params: Sequence[Any], batch: int, what: str) -> int:
        """Run a delete bounded by ``LIMIT batch`` until it deletes less than a batch."""

        def op(cur: sqlite3.Cursor) -> int:
            return cur.execute(sql, params).rowcount

        total = 0
        while True:
            deleted = await self._submit(op, what)
            total += deleted
            if deleted < batch:
                return total

    async def _trim_check_runs(self, keep: int, batch: int) -> int:
        ((newest,),) = await self._read(MAX_RUN_ROWID, ())
        seen, seen_keep = self._runs_seen
        checks = await self._read(CHECKS_OVER_CAP, (seen if keep == seen_keep else 0, keep))

        def op(cur: sqlite3.Cursor) -> tuple[int, int]:
            deleted = done = 0
            for pr_url, name in checks:
                deleted += cur.execute(
                    DELETE_OLD_RUNS, (pr_url, name, batch - deleted, keep)
                ).rowcount
                if deleted >= batch:
                    break  # this check may have more: the next batch starts with it
                done += 1
            return deleted, done

        total = 0
        while checks:
            deleted, done = await self._submit(op, "trim of old check runs")
            total += deleted
            checks = checks[done:]
        self._runs_seen = (newest, keep)  # only once done: a failed pass is retried whole
        return total

    async def _trim_terminated(self, ended_before: str, batch: int) -> tuple[int, int, int]:
        """Trackers, check runs and comments of long-terminated sessions, deleted; the
        counts of each."""
        found = await self._read(LONG_TERMINATED_WITH_HISTORY, (ended_before,))
        sessions = [session_id for (session_id,) in found]

        # Counts are returned, not accumulated: the writer may run an op twice (a batch's
        # merged attempt rolled back, then the op-by-op rerun).
        def op(cur: sqlite3.Cursor) -> tuple[int, tuple[int, int, int]]:
            counts = [0, 0, 0]
            budget, done = batch, 0
            for session_id in sessions:
                if cur.execute(IS_LONG_TERMINATED, (session_id, ended_before)).fetchone():
                    for index, (sql, params) in enumerate(
                        (
                            (DELETE_SESSION_TRACKERS, (session_id, session_id)),
                            (DELETE_SESSION_RUNS, (session_id,)),
                            (DELETE_SESSION_COMMENTS, (session_id,)),
                        )
                    ):
                        rows = cur.execute(sql, (*params, budget)).rowcount
                        counts[index] += rows
                        budget -= rows
                        if budget <= 0:  # this session may have more: the next op resumes it
                            return done, (counts[0], counts[1], counts[2])
                done += 1
            return done, (counts[0], counts[1], counts[2])

        totals = (0, 0, 0)
        while sessions:
            done, counts = await self._submit(op, "trim of long-terminated sessions' history")
            totals = (totals[0] + counts[0], totals[1] + counts[1], totals[2] + counts[2])
            sessions = sessions[done:]
        return totals
