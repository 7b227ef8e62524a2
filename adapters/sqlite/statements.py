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

NEXT_NUM: Final = compile_sql(
    sa.select(
        sa.select(sa.literal_column("1"))
        .where(t.projects.c.id == sa.bindparam("project"))
        .scalar_subquery(),
        sa.func.coalesce(sa.func.max(t.sessions.c.num), sa.literal_column("0"))
        + sa.literal_column("1"),
    ).where(t.sessions.c.project_id == sa.bindparam("project_again")),
    "project",
    "project_again",
)
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

_PR_WRITE_COLS: Final = tuple(c for c in _PR_COLS if c != "write_seq")


def _pr_upsert() -> Any:
    next_write = sa.select(
        sa.func.coalesce(sa.func.max(t.pr.c.write_seq), sa.literal_column("0"))
        + sa.literal_column("1")
    ).scalar_subquery()
    stmt = sqlite_dialect.insert(t.pr).values({**_bind(*_PR_WRITE_COLS), "write_seq": next_write})
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
            )
        },
    )


UPSERT_PR: Final = compile_sql(_pr_upsert(), *_PR_WRITE_COLS)
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
