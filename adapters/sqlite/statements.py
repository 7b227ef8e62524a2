"""The store's SQL: built with SQLAlchemy Core from the ``tables`` mirror, compiled once at
import to driver SQL, and run on the sqlite3 cursor with ``execute``/``executemany``.

Statements take ``?`` placeholders in an order ``compile_sql`` checks against the names
it is given, so a parameter tuple can be built without a dict per row: the hot write path
(bench/store_bench.py). The session INSERT, off the hot path, binds its columns by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.expression import ClauseElement

from adapters.sqlite import tables as t
from orchestrator.domain.model import TERMINAL_STATES

_POSITIONAL: Final = sqlite_dialect.dialect(paramstyle="qmark")
_NAMED: Final = sqlite_dialect.dialect(paramstyle="named")


def compile_sql(stmt: ClauseElement, *params: str) -> str:
    """``stmt`` as driver SQL with ``?`` placeholders in exactly the order ``params``."""
    compiled: Compiled = stmt.compile(dialect=_POSITIONAL)
    order = tuple(getattr(compiled, "positiontup", None) or ())
    if order != params:
        raise AssertionError(f"parameter order {order} != {params} for {compiled}")
    return str(compiled)


def compile_named_sql(stmt: ClauseElement, *params: str) -> str:
    """``stmt`` as driver SQL with ``:name`` placeholders for exactly the names ``params``."""
    compiled: Compiled = stmt.compile(dialect=_NAMED)
    if set(compiled.params) != set(params):
        raise AssertionError(f"parameters {sorted(compiled.params)} != {sorted(params)}")
    return str(compiled)


def _bind(*names: str) -> dict[str, Any]:
    return {name: sa.bindparam(name) for name in names}


SESSION_COLUMNS: Final = tuple(c.name for c in t.sessions.c)
_PROJECT_COLS: Final = tuple(c.name for c in t.projects.c)
_PR_COLS: Final = tuple(c.name for c in t.pr.c)
_CHECK_COLS: Final = tuple(c.name for c in t.pr_checks.c)
_COMMENT_COLS: Final = tuple(c.name for c in t.pr_comment.c)
_TRACKER_COLS: Final = tuple(c.name for c in t.reaction_trackers.c)
_OUTBOX_INSERT_COLS: Final = (
    "dedup_key",
    "session_id",
    "project_id",
    "action",
    "reaction",
    "event_type",
    "priority",
    "message",
    "created_at",
    "pr_url",
    "head_sha",
)
_NOTIFICATION_INSERT_COLS: Final = (
    "session_id",
    "project_id",
    "type",
    "priority",
    "message",
    "created_at",
)


def _upsert(
    table: sa.Table, cols: Sequence[str], keys: Sequence[str], update: Sequence[str]
) -> Any:
    stmt = sqlite_dialect.insert(table).values(_bind(*cols))
    return stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={name: stmt.excluded[name] for name in update},
    )


# --- projects and sessions ----------------------------------------------------------------------

# The next number of a project's sessions, taken for good: numbers of removed sessions are
# never handed out again. No row for an unknown project (the caller refuses it). Existing
# rows count too, so a session written by other means can never be given a taken number.
TAKE_SESSION_NUMBER: Final = (
    "INSERT INTO session_numbers (project_id, last_num)"
    " SELECT id, 1 + (SELECT COALESCE(MAX(num), 0) FROM sessions WHERE project_id = ?)"
    " FROM projects WHERE id = ?"
    " ON CONFLICT (project_id) DO UPDATE SET last_num = 1 + MAX(last_num,"
    " (SELECT COALESCE(MAX(num), 0) FROM sessions WHERE project_id = excluded.project_id))"
    " RETURNING last_num"
)
# Removing a session (``SqliteStore.delete_session``): its PRs (with their checks and
# comments) and trackers go by cascade; outbox rows and notifications reference it without
# one, so they are deleted first. The stamp gives the trigger's session_deleted row its time.
PENDING_OUTBOX_OF_SESSION: Final = (
    "SELECT COUNT(*) FROM outbox"
    " WHERE session_id = ? AND delivered_at IS NULL AND failed_at IS NULL"
)
STAMP_SESSION: Final = "UPDATE sessions SET updated_at = ? WHERE id = ?"
DELETE_SESSION_OUTBOX: Final = "DELETE FROM outbox WHERE session_id = ?"
DELETE_SESSION_NOTIFICATIONS: Final = "DELETE FROM notifications WHERE session_id = ?"
DELETE_SESSION: Final = "DELETE FROM sessions WHERE id = ?"
# By name: a column added to the table needs a value here, or the insert fails loudly.
INSERT_SESSION: Final = compile_named_sql(
    sa.insert(t.sessions).values(_bind(*SESSION_COLUMNS)), *SESSION_COLUMNS
)

UPSERT_PROJECT: Final = compile_sql(
    _upsert(
        t.projects,
        _PROJECT_COLS,
        ["id"],
        ["path", "repo_origin_url", "display_name", "archived_at"],
    ).returning(*t.projects.c),
    *_PROJECT_COLS,
)
ARCHIVE_PROJECT: Final = compile_sql(
    sa.update(t.projects)
    .where(t.projects.c.id == sa.bindparam("b_id"))
    .values(archived_at=sa.bindparam("archived_at")),
    "archived_at",
    "b_id",
)

# --- PRs ----------------------------------------------------------------------------------------

# write_seq is computed by the upsert; changed_at is the triggers' (migration 0006).
_PR_WRITE_COLS: Final = tuple(c for c in _PR_COLS if c not in ("write_seq", "changed_at"))


def _next_write_seq() -> Any:
    return sa.select(
        sa.func.coalesce(sa.func.max(t.pr.c.write_seq), sa.literal_column("0"))
        + sa.literal_column("1")
    ).scalar_subquery()


def _owner_is_live() -> Any:
    """Whether the session that owns the (existing) ``pr`` row has not ended."""
    s = t.sessions
    owner: Any = sa.literal_column("pr.session_id")  # the conflicting row, not a second pr
    ended = sorted(TERMINAL_STATES)
    return sa.exists().where(
        s.c.id == owner, *(s.c.session_state != sa.literal_column(f"'{e}'") for e in ended)
    )


def _pr_upsert() -> Any:
    stmt = sqlite_dialect.insert(t.pr).values(
        {**_bind(*_PR_WRITE_COLS), "write_seq": _next_write_seq()}
    )
    return stmt.on_conflict_do_update(
        index_elements=[t.pr.c.url],
        set_={
            name: stmt.excluded[name]
            for name in (
                "session_id",
                "number",
                "pr_state",
                "review_decision",
                "ci_state",
                "mergeability",
                "updated_at",
                "write_seq",
                "head_sha",
            )
        },
        # A PR belongs to one session: the write of another session's observation only
        # lands once the owner has ended. Otherwise nothing changes and the row count is 0.
        where=sa.or_(t.pr.c.session_id == stmt.excluded.session_id, ~_owner_is_live()),
    )


UPSERT_PR: Final = compile_sql(_pr_upsert(), *_PR_WRITE_COLS)
PR_OWNER: Final = compile_sql(
    sa.select(t.pr.c.session_id).where(t.pr.c.url == sa.bindparam("url")), "url"
)
# A claim: the PR moves to the claiming session and becomes its newest (pr_cdc_claim logs it).
CLAIM_PR: Final = compile_sql(
    sa.update(t.pr)
    .where(t.pr.c.url == sa.bindparam("b_url"))
    .values(
        session_id=sa.bindparam("session_id"),
        updated_at=sa.bindparam("updated_at"),
        write_seq=_next_write_seq(),
    ),
    "session_id",
    "updated_at",
    "b_url",
)
# A claim of a PR not seen yet: a row with nothing known but its number, until observed.
INSERT_CLAIMED_PR: Final = compile_sql(
    sa.insert(t.pr).values(
        {**_bind("url", "session_id", "number", "updated_at"), "write_seq": _next_write_seq()}
    ),
    "url",
    "session_id",
    "number",
    "updated_at",
)
SESSION_STATE: Final = compile_sql(
    sa.select(t.sessions.c.session_state).where(t.sessions.c.id == sa.bindparam("b_id")), "b_id"
)
# created_at is the first-seen time: never updated.
UPSERT_CHECK: Final = compile_sql(
    _upsert(
        t.pr_checks, _CHECK_COLS, ["pr_url", "name", "commit_hash"], ["status", "url", "log_tail"]
    ),
    *_CHECK_COLS,
)
DELETE_COMMENTS: Final = compile_sql(
    sa.delete(t.pr_comment).where(t.pr_comment.c.pr_url == sa.bindparam("pr_url")), "pr_url"
)
UPSERT_COMMENT: Final = compile_sql(
    _upsert(
        t.pr_comment,
        _COMMENT_COLS,
        ["pr_url", "comment_id"],
        ["author", "file", "line", "body", "resolved", "created_at"],
    ),
    *_COMMENT_COLS,
)

# --- trackers -----------------------------------------------------------------------------------

UPSERT_TRACKER: Final = compile_sql(
    _upsert(
        t.reaction_trackers,
        _TRACKER_COLS,
        ["session_id", "key"],
        ["reaction", "attempts", "first_at", "escalated", "seen"],
    ),
    *_TRACKER_COLS,
)
DELETE_TRACKER: Final = compile_sql(
    sa.delete(t.reaction_trackers).where(
        t.reaction_trackers.c.session_id == sa.bindparam("session_id"),
        t.reaction_trackers.c.key == sa.bindparam("key"),
    ),
    "session_id",
    "key",
)

# --- outbox and notifications -------------------------------------------------------------------

# A repeated dedup_key is skipped by the NOT EXISTS guard, so it consumes no AUTOINCREMENT id
# (ids stay gap-free in insertion order); ON CONFLICT (dedup_key) DO NOTHING is the safety
# net. Not INSERT OR IGNORE: that would also swallow NOT NULL and CHECK violations. Takes
# the outbox row followed by its dedup key again.
INSERT_OUTBOX: Final = compile_sql(
    sqlite_dialect.insert(t.outbox)
    .from_select(
        list(_OUTBOX_INSERT_COLS),
        sa.select(*[sa.bindparam(c) for c in _OUTBOX_INSERT_COLS]).where(
            ~sa.exists().where(t.outbox.c.dedup_key == sa.bindparam("dedup_again"))
        ),
    )
    .on_conflict_do_nothing(index_elements=[t.outbox.c.dedup_key]),
    *_OUTBOX_INSERT_COLS,
    "dedup_again",
)
# The merged path's optimistic insert, with no guard: the guard reads the table it inserts
# into, which makes SQLite copy every row through a temporary table first. A repeated key
# still uses up an id here, so the merged path checks the row count and, on a repeat, has
# the writer apply the units one by one with the guarded insert.
INSERT_OUTBOX_UNGUARDED: Final = compile_sql(
    sqlite_dialect.insert(t.outbox)
    .values(_bind(*_OUTBOX_INSERT_COLS))
    .on_conflict_do_nothing(index_elements=[t.outbox.c.dedup_key]),
    *_OUTBOX_INSERT_COLS,
)
# An attempt under way; see OutboxStore.begin_attempt.
BEGIN_ATTEMPT: Final = compile_sql(
    sa.update(t.outbox)
    .where(t.outbox.c.id == sa.bindparam("b_id"))
    .values(next_attempt_at=sa.bindparam("next_attempt_at")),
    "next_attempt_at",
    "b_id",
)
RECORD_ATTEMPT: Final = compile_sql(
    sa.update(t.outbox)
    .where(t.outbox.c.id == sa.bindparam("b_id"))
    .values(
        attempts=t.outbox.c.attempts + sa.literal_column("1"),
        last_error=sa.bindparam("last_error"),
        next_attempt_at=sa.bindparam("next_attempt_at"),
    ),
    "next_attempt_at",
    "last_error",
    "b_id",
)
# The successful attempt counts as an attempt too.
MARK_DELIVERED: Final = compile_sql(
    sa.update(t.outbox)
    .where(t.outbox.c.id == sa.bindparam("b_id"))
    .values(
        attempts=t.outbox.c.attempts + sa.literal_column("1"),
        delivered_at=sa.bindparam("delivered_at"),
    ),
    "delivered_at",
    "b_id",
)
MARK_FAILED: Final = compile_sql(
    sa.update(t.outbox)
    .where(t.outbox.c.id == sa.bindparam("b_id"))
    .values(failed_at=sa.bindparam("failed_at"), last_error=sa.bindparam("last_error")),
    "failed_at",
    "last_error",
    "b_id",
)
INSERT_NOTIFICATION: Final = compile_sql(
    sa.insert(t.notifications).values(_bind(*_NOTIFICATION_INSERT_COLS)),
    *_NOTIFICATION_INSERT_COLS,
)


def _mark_notification(flag: str, stamp: str) -> str:
    """Set ``flag`` and, the first time only, ``stamp``: marking twice changes nothing."""
    n = t.notifications
    return compile_sql(
        sa.update(n)
        .where(n.c.id == sa.bindparam("b_id"))
        .values(
            {flag: sa.literal_column("1"), stamp: sa.func.coalesce(n.c[stamp], sa.bindparam(stamp))}
        ),
        stamp,
        "b_id",
    )


MARK_NOTIFICATION_READ: Final = _mark_notification("read", "read_at")
RESOLVE_NOTIFICATION: Final = _mark_notification("resolved", "resolved_at")


def _mark_all_read(*, of_project: bool) -> str:
    """Every unread notification (of one project) read, stamped with the given time."""
    n = t.notifications
    stmt = sa.update(n).where(n.c.read == sa.literal_column("0"))
    if of_project:
        stmt = stmt.where(n.c.project_id == sa.bindparam("b_project_id"))
    stmt = stmt.values(
        {
            "read": sa.literal_column("1"),
            "read_at": sa.func.coalesce(n.c.read_at, sa.bindparam("read_at")),
        }
    )
    return compile_sql(stmt, "read_at", *(("b_project_id",) if of_project else ()))


_MARK_ALL_READ: Final = _mark_all_read(of_project=False)
_MARK_PROJECT_READ: Final = _mark_all_read(of_project=True)


def mark_all_read(stamp: str, project_id: str | None) -> tuple[str, tuple[str, ...]]:
    """The statement and parameters that mark every unread notification (of one project)
    read at ``stamp``."""
    if project_id is None:
        return _MARK_ALL_READ, (stamp,)
    return _MARK_PROJECT_READ, (stamp, project_id)


# --- change log ---------------------------------------------------------------------------------

# (A Core select with .limit(bindparam) also renders an OFFSET parameter; text() keeps it plain.)
CHANGE_LOG_HEAD: Final = compile_sql(
    sa.text("SELECT seq, created_at FROM change_log ORDER BY seq LIMIT :batch"), "batch"
)
MAX_LOGGED_SEQ: Final = "SELECT MAX(seq) FROM change_log"
# Plain SQL: the change feed reads after every commit, and building a statement per call
# cost more than the query.
CHANGES_AFTER: Final = (
    "SELECT seq, project_id, session_id, event_type, payload, created_at FROM change_log"
    " WHERE seq > ? ORDER BY seq LIMIT ?"
)
PROJECT_CHANGES_AFTER: Final = (
    "SELECT seq, project_id, session_id, event_type, payload, created_at FROM change_log"
    " WHERE seq > ? AND project_id = ? ORDER BY seq LIMIT ?"
)
# sqlite_sequence keeps the highest AUTOINCREMENT value even after the rows are trimmed.
MAX_SEQ: Final = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'change_log'), 0)"
TRIM_UPTO: Final = compile_sql(
    sa.delete(t.change_log).where(t.change_log.c.seq <= sa.bindparam("upto")), "upto"
)

# --- webhook deliveries -------------------------------------------------------------------------

INSERT_DELIVERY: Final = compile_sql(
    sqlite_dialect.insert(t.webhook_deliveries)
    .values(_bind("delivery_id", "received_at"))
    .on_conflict_do_nothing(index_elements=[t.webhook_deliveries.c.delivery_id]),
    "delivery_id",
    "received_at",
)
TRIM_DELIVERIES: Final = compile_sql(
    sa.delete(t.webhook_deliveries).where(t.webhook_deliveries.c.id <= sa.bindparam("upto")),
    "upto",
)
