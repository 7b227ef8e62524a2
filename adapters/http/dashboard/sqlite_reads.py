"""``BoardReads`` on SQLite in bulk: the whole board in five queries, one read transaction.

A board of 1,000 sessions read through the store's per-session methods costs ~3,000
queries (~500 ms on the project's 2-core box); here it is one query per table, grouped in
Python, with the same selection rules the store applies (which PR speaks for a session:
``select_pr_facts``; a check's latest run: newest first-seen time, then the run recorded
later). ``tests/integration/test_dashboard_reads.py`` pins it equal to ``StoreBoardReads``.

It reads on its own ``query_only`` connection, so it never touches the store's reader or
writer; WAL gives each transaction one consistent snapshot. Reads run inline on the trio
thread, as the store's do: a hop to a worker thread costs more than these queries.
"""

from __future__ import annotations

import os
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import trio

from adapters.http.dashboard.reads import CardFacts
from adapters.sqlite import tables as t
from adapters.sqlite.rows import (
    change_events_from_rows,
    check_from_row,
    outbox_from_row,
    session_from_row,
    tracker_from_row,
)
from orchestrator.domain.model import (
    CIState,
    Mergeability,
    PRCheck,
    PRFacts,
    ProjectId,
    PRState,
    ReviewDecision,
    SessionId,
)
from orchestrator.domain.prs import select_pr_facts
from orchestrator.domain.records import ChangeEvent, OutboxEntry, Tracker

TITLE_PROMPT_CHARS: Final = 300
"""Cards show only the prompt's first line: no need to read a long prompt whole."""

_SESSION_COLUMNS: Final = ", ".join(
    f"substr(s.prompt, 1, {TITLE_PROMPT_CHARS})" if c.name == "prompt" else f"s.{c.name}"
    for c in t.sessions.columns
)
# Column lists come from adapters.sqlite.tables (no outside text); values are bound.
_SESSIONS: Final = f"SELECT {_SESSION_COLUMNS} FROM sessions AS s"  # noqa: S608

_PRS: Final = (
    "SELECT p.session_id, p.url, p.number, p.pr_state, p.ci_state, p.review_decision,"
    " p.mergeability,"
    " EXISTS (SELECT 1 FROM pr_comment AS c WHERE c.pr_url = p.url AND c.resolved = 0)"
    " FROM pr AS p JOIN sessions AS s ON s.id = p.session_id"
)
_PR_ORDER: Final = " ORDER BY p.session_id, p.updated_at DESC, p.write_seq DESC"

# The latest run of each (PR, check), kept only when it failed. Log tails stay out.
_FAILING: Final = (
    "SELECT pr_url, name, commit_hash, status, url, '', created_at FROM ("
    " SELECT c.*, row_number() OVER (PARTITION BY c.pr_url, c.name"
    "  ORDER BY c.created_at DESC, c.rowid DESC) AS newest"
    " FROM pr_checks AS c JOIN pr AS p ON p.url = c.pr_url"
    " JOIN sessions AS s ON s.id = p.session_id {where}"
    ") WHERE newest = 1 AND status = 'failed' ORDER BY pr_url, name"
)

_TRACKER_COLUMNS: Final = ", ".join(f"r.{c.name}" for c in t.reaction_trackers.columns)
_TRACKERS: Final = (
    f"SELECT {_TRACKER_COLUMNS} FROM reaction_trackers AS r"  # noqa: S608
    " JOIN sessions AS s ON s.id = r.session_id"
)
_TRACKER_ORDER: Final = " ORDER BY r.session_id, r.key"

_CHANGES: Final = (
    "SELECT seq, project_id, session_id, event_type, payload, created_at FROM change_log"
    " WHERE project_id = ? AND session_id = ? ORDER BY seq DESC LIMIT ?"
)
_OUTBOX_COLUMNS: Final = ", ".join(c.name for c in t.outbox.columns)
_OUTBOX: Final = f"SELECT {_OUTBOX_COLUMNS} FROM outbox"  # noqa: S608
_NUDGES: Final = _OUTBOX + " WHERE session_id = ? ORDER BY id DESC LIMIT ?"
_UNREAD: Final = "SELECT count(*) FROM notifications WHERE read = 0 AND resolved = 0"


@asynccontextmanager
async def open_sqlite_board_reads(
    path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000
) -> AsyncIterator[SqliteBoardReads]:
    """A reader on its own read-only connection to the database at ``path`` (which the
    store has already created and migrated); closed on exit."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        connection.execute("PRAGMA query_only=ON")
        yield SqliteBoardReads(connection)
    finally:
        connection.close()


class SqliteBoardReads:
    """``BoardReads`` over one read-only sqlite3 connection (see the module doc)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    async def card_facts(self, project_id: ProjectId | None) -> list[CardFacts]:
        where, params = ("WHERE s.project_id = ?", (project_id,)) if project_id else ("", ())
        await trio.lowlevel.checkpoint()
        with _snapshot(self._db) as db:
            sessions = db.execute(f"{_SESSIONS} {where} ORDER BY s.project_id, s.num", params)
            records = [session_from_row(r) for r in sessions.fetchall()]
            prs = db.execute(f"{_PRS} {where}{_PR_ORDER}", params).fetchall()
            failing = db.execute(_FAILING.format(where=where), params).fetchall()
            trackers = db.execute(f"{_TRACKERS} {where}{_TRACKER_ORDER}", params).fetchall()
        return _assemble(records, prs, failing, trackers)

    async def card_facts_of(self, session_id: SessionId) -> CardFacts | None:
        where, params = "WHERE s.id = ?", (session_id,)
        await trio.lowlevel.checkpoint()
        with _snapshot(self._db) as db:
            rows = db.execute(f"{_SESSIONS} {where}", params).fetchall()
            if not rows:
                return None
            prs = db.execute(f"{_PRS} {where}{_PR_ORDER}", params).fetchall()
            failing = db.execute(_FAILING.format(where=where), params).fetchall()
            trackers = db.execute(f"{_TRACKERS} {where}{_TRACKER_ORDER}", params).fetchall()
        return _assemble([session_from_row(rows[0])], prs, failing, trackers)[0]

    async def session_changes(
        self, session_id: SessionId, project_id: ProjectId, limit: int
    ) -> list[ChangeEvent]:
        rows = await self._query(_CHANGES, (project_id, session_id, limit))
        return change_events_from_rows(rows)

    async def session_nudges(self, session_id: SessionId, limit: int) -> list[OutboxEntry]:
        return [outbox_from_row(r) for r in await self._query(_NUDGES, (session_id, limit))]

    async def unread_notifications(self, project_id: ProjectId | None) -> int:
        if project_id is None:
            rows = await self._query(_UNREAD, ())
        else:
            rows = await self._query(f"{_UNREAD} AND project_id = ?", (project_id,))
        return int(rows[0][0])

    async def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        await trio.lowlevel.checkpoint()
        with _snapshot(self._db) as db:
            return db.execute(sql, params).fetchall()


class _snapshot:
    """One deferred read transaction: every query inside sees the same snapshot."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN")
        return self._db

    def __exit__(self, *exc: object) -> None:
        self._db.execute("COMMIT")


def _assemble(
    records: Sequence[Any],
    prs: Iterable[Sequence[Any]],
    failing: Iterable[Sequence[Any]],
    trackers: Iterable[Sequence[Any]],
) -> list[CardFacts]:
    prs_of: defaultdict[str, list[PRFacts]] = defaultdict(list)
    for session_id, url, number, state, ci, review, mergeability, unresolved in prs:
        prs_of[session_id].append(
            PRFacts.of_pr(
                url=url,
                number=number,
                state=PRState(state),
                ci=CIState(ci),
                review=ReviewDecision(review),
                mergeability=Mergeability(mergeability),
                review_comments=bool(unresolved),
            )
        )
    failing_of: defaultdict[str, list[PRCheck]] = defaultdict(list)
    for row in failing:
        failing_of[row[0]].append(check_from_row(row))
    trackers_of: defaultdict[str, list[Tracker]] = defaultdict(list)
    for row in trackers:
        trackers_of[row[0]].append(tracker_from_row(row))
    cards = []
    for record in records:
        pr = select_pr_facts(prs_of.get(record.id, ()))
        cards.append(
            CardFacts(
                record=record,
                pr=pr,
                failing_checks=tuple(failing_of.get(pr.url, ())) if pr.exists else (),
                trackers=tuple(trackers_of.get(record.id, ())),
            )
        )
    return cards


__all__ = ["SqliteBoardReads", "open_sqlite_board_reads"]
