"""The SQLite store: SessionStore, PRWriter, OutboxStore and ChangeLog over SQLAlchemy Core.

Open it with ``open_sqlite_store``: it migrates the database, starts the group-commit
writer (``adapters/sqlite/writer.py``) and, on exit, flushes the writer and closes both
connections.

- **Writes** (every one, ``create_session`` included) go through the writer, one op per
  call, each in its own SAVEPOINT of the writer's shared ``BEGIN IMMEDIATE`` transaction.
  Parameters are built in the caller before the op is queued; the statements were built
  with SQLAlchemy Core and compiled once at import (``_compile``), and run on the driver
  cursor with ``execute``/``executemany`` — the measured hot path (bench/store_bench.py).
  A session UPDATE sets only the columns of the fields named in ``CommitUnit.changed``
  (plus ``updated_at``), never the key.
- **Reads** run SQLAlchemy Core selects on a second, ``query_only`` connection, each in its
  own short deferred transaction, inline on the trio thread (stack-notes §0: a read is
  cheaper than a thread hop).
- **A unit** applies, in order: the session UPDATE (a missing row is a ``StoreError``), the
  PR write (reference §6.6), tracker deletes, tracker upserts (so delete + upsert of one key
  keeps the new tracker), outbox inserts (``ON CONFLICT (dedup_key) DO NOTHING``).
- **Orderings**, all deterministic: sessions by (project, num); projects by id; PRs of a
  session by ``updated_at`` newest first, ties: the PR written last first (``write_seq``,
  as ``orchestrator.domain.prs.with_observation`` assumes); check runs by first-seen
  ``created_at`` newest first, ties: the run first recorded later first (rowid); PR
  comments by (created_at, comment id); trackers by key; outbox oldest first (id);
  notifications newest first (id); the change log by seq.
- **Errors**: constraint violations (CHECK, FOREIGN KEY, STRICT types) and missing rows
  become ``StoreError`` naming the write, for that caller only; unknown ids in the outbox
  bookkeeping calls and ``archive_project`` are no-ops; naive datetimes are refused.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.resources.abc import Traversable
from typing import Any, Final, TypeVar

import msgspec
import sqlalchemy as sa
import trio
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.expression import ClauseElement

from adapters.sqlite import tables as t
from adapters.sqlite.migrate import migrate
from adapters.sqlite.tables import decode_opt_ts, decode_ts, encode_opt_ts, encode_ts
from adapters.sqlite.writer import (
    DEFAULT_BUSY_TIMEOUT_MS,
    DEFAULT_MAX_BATCH,
    GroupWriter,
    make_engine,
)
from orchestrator.domain.errors import StoreError
from orchestrator.domain.model import (
    Activity,
    ActivitySource,
    ActivityState,
    AgentHarness,
    CheckStatus,
    CIState,
    DetectingState,
    Lifecycle,
    Mergeability,
    NotificationEvent,
    PRCheck,
    PRComment,
    PRFacts,
    Priority,
    PRObservation,
    ProjectId,
    PRState,
    ReactionAction,
    ReactionKey,
    ReviewDecision,
    SessionId,
    SessionKind,
    SessionMetadata,
    SessionRecord,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.prs import select_pr_facts
from orchestrator.domain.records import (
    ChangeEvent,
    ChangeType,
    CommitUnit,
    Notification,
    OutboxEntry,
    OutboxItem,
    Project,
    Tracker,
)

_T = TypeVar("_T")


log = logging.getLogger(__name__)

# --- statements, built with SQLAlchemy Core and compiled once ---------------------------------

_DIALECT: Final = sqlite_dialect.dialect(paramstyle="qmark")


def _compile(stmt: ClauseElement, *params: str) -> str:
    """``stmt`` as driver SQL with ``?`` placeholders in exactly the order ``params``."""
    compiled: Compiled = stmt.compile(dialect=_DIALECT)
    order = tuple(getattr(compiled, "positiontup", None) or ())
    if order != params:
        raise AssertionError(f"parameter order {order} != {params} for {compiled}")
    return str(compiled)


def _bind(*names: str) -> dict[str, Any]:
    return {name: sa.bindparam(name) for name in names}


_SESSION_COLS: Final = tuple(c.name for c in t.sessions.c)
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


_NEXT_NUM: Final = _compile(
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
_INSERT_SESSION: Final = _compile(
    sa.insert(t.sessions).values(_bind(*_SESSION_COLS)), *_SESSION_COLS
)

_UPSERT_PROJECT: Final = _compile(
    _upsert(
        t.projects,
        _PROJECT_COLS,
        ["id"],
        ["path", "repo_origin_url", "display_name", "archived_at"],
    ).returning(*t.projects.c),
    *_PROJECT_COLS,
)
_ARCHIVE_PROJECT: Final = _compile(
    sa.update(t.projects)
    .where(t.projects.c.id == sa.bindparam("b_id"))
    .values(archived_at=sa.bindparam("archived_at")),
    "archived_at",
    "b_id",
)

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


_UPSERT_PR: Final = _compile(_pr_upsert(), *_PR_WRITE_COLS)
# created_at is the first-seen time: never updated.
_UPSERT_CHECK: Final = _compile(
    _upsert(
        t.pr_checks, _CHECK_COLS, ["pr_url", "name", "commit_hash"], ["status", "url", "log_tail"]
    ),
    *_CHECK_COLS,
)
_DELETE_COMMENTS: Final = _compile(
    sa.delete(t.pr_comment).where(t.pr_comment.c.pr_url == sa.bindparam("pr_url")), "pr_url"
)
_UPSERT_COMMENT: Final = _compile(
    _upsert(
        t.pr_comment,
        _COMMENT_COLS,
        ["pr_url", "comment_id"],
        ["author", "file", "line", "body", "resolved", "created_at"],
    ),
    *_COMMENT_COLS,
)

_UPSERT_TRACKER: Final = _compile(
    _upsert(
        t.reaction_trackers,
        _TRACKER_COLS,
        ["session_id", "key"],
        ["reaction", "attempts", "first_at", "escalated", "seen"],
    ),
    *_TRACKER_COLS,
)
_DELETE_TRACKER: Final = _compile(
    sa.delete(t.reaction_trackers).where(
        t.reaction_trackers.c.session_id == sa.bindparam("session_id"),
        t.reaction_trackers.c.key == sa.bindparam("key"),
    ),
    "session_id",
    "key",
)

# A repeated dedup_key is skipped by the NOT EXISTS guard, so it consumes no AUTOINCREMENT id
# (ids stay gap-free in insertion order); ON CONFLICT (dedup_key) DO NOTHING is the safety
# net. Not INSERT OR IGNORE: that would also swallow NOT NULL and CHECK violations.
_INSERT_OUTBOX: Final = _compile(
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
# The merged path looks up a batch's dedup keys once and inserts only new ones (see
# _unseen_outbox_rows); the guard above reads the table it inserts into, which makes SQLite
# copy every row through a temporary table first.
_INSERT_OUTBOX_UNSEEN: Final = _compile(
    sqlite_dialect.insert(t.outbox)
    .values(_bind(*_OUTBOX_INSERT_COLS))
    .on_conflict_do_nothing(index_elements=[t.outbox.c.dedup_key]),
    *_OUTBOX_INSERT_COLS,
)
_RECORD_ATTEMPT: Final = _compile(
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
_MARK_DELIVERED: Final = _compile(
    sa.update(t.outbox)
    .where(t.outbox.c.id == sa.bindparam("b_id"))
    .values(
        attempts=t.outbox.c.attempts + sa.literal_column("1"),
        delivered_at=sa.bindparam("delivered_at"),
    ),
    "delivered_at",
    "b_id",
)
_MARK_FAILED: Final = _compile(
    sa.update(t.outbox)
    .where(t.outbox.c.id == sa.bindparam("b_id"))
    .values(failed_at=sa.bindparam("failed_at"), last_error=sa.bindparam("last_error")),
    "failed_at",
    "last_error",
    "b_id",
)
_INSERT_NOTIFICATION: Final = _compile(
    sa.insert(t.notifications).values(_bind(*_NOTIFICATION_INSERT_COLS)),
    *_NOTIFICATION_INSERT_COLS,
)

# (A Core select with .limit(bindparam) also renders an OFFSET parameter; text() keeps it plain.)
_CHANGE_LOG_HEAD: Final = _compile(
    sa.text("SELECT seq, created_at FROM change_log ORDER BY seq LIMIT :batch"), "batch"
)
_CHANGES_AFTER: Final = (
    "SELECT seq, project_id, session_id, event_type, payload, created_at FROM change_log"
    " WHERE seq > ? ORDER BY seq LIMIT ?"
)
_PROJECT_CHANGES_AFTER: Final = (
    "SELECT seq, project_id, session_id, event_type, payload, created_at FROM change_log"
    " WHERE seq > ? AND project_id = ? ORDER BY seq LIMIT ?"
)
_CHANGE_TYPES: Final = {str(kind): kind for kind in ChangeType}
_MAX_SEQ_SQL: Final = (
    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'change_log'), 0)"
)
_TRIM_UPTO: Final = _compile(
    sa.delete(t.change_log).where(t.change_log.c.seq <= sa.bindparam("upto")), "upto"
)

# --- the session UPDATE: only the columns of the changed fields ---------------------------------

_Getter = Callable[[SessionRecord], tuple[Any, ...]]


def _get_state(r: SessionRecord) -> tuple[Any, ...]:
    return (str(r.lifecycle.state),)


def _get_reason(r: SessionRecord) -> tuple[Any, ...]:
    return (str(r.lifecycle.termination_reason),)


def _get_alive(r: SessionRecord) -> tuple[Any, ...]:
    return (int(r.lifecycle.is_alive),)


def _get_activity(r: SessionRecord) -> tuple[Any, ...]:
    a = r.lifecycle.activity
    if a is None:
        return ("", "", "")
    return (str(a.state), encode_ts(a.last_activity_at), str(a.source))


def _get_detecting(r: SessionRecord) -> tuple[Any, ...]:
    d = r.lifecycle.detecting
    if d is None:
        return (None, None, None)
    return (d.attempts, encode_ts(d.started_at), d.evidence_hash)


def _get_harness(r: SessionRecord) -> tuple[Any, ...]:
    return (str(r.lifecycle.harness),)


def _get_metadata(r: SessionRecord) -> tuple[Any, ...]:
    m = r.metadata
    return (
        m.branch,
        m.workspace_path,
        m.runtime_handle_id,
        m.runtime_name,
        m.agent_session_id,
        m.prompt,
        m.agent,
    )


# CommitUnit.changed name -> (columns, values); the SET clause follows this order.
_CHANGED_FIELDS: Final[dict[str, tuple[tuple[str, ...], _Getter]]] = {
    "state": (("session_state",), _get_state),
    "termination_reason": (("termination_reason",), _get_reason),
    "is_alive": (("is_alive",), _get_alive),
    "activity": (("activity_state", "activity_last_at", "activity_source"), _get_activity),
    "detecting": (
        ("detecting_attempts", "detecting_started_at", "detecting_evidence_hash"),
        _get_detecting,
    ),
    "harness": (("harness",), _get_harness),
    "metadata": (
        (
            "branch",
            "workspace_path",
            "runtime_handle_id",
            "runtime_name",
            "agent_session_id",
            "prompt",
            "agent",
        ),
        _get_metadata,
    ),
}
CHANGEABLE_FIELDS: Final = frozenset(_CHANGED_FIELDS)

_update_plans: dict[frozenset[str], tuple[str, tuple[_Getter, ...]]] = {}


def _set_value(column: str, merged: set[str]) -> Any:
    """``?`` for most columns; metadata merges: ``COALESCE(NULLIF(?, ''), column)`` keeps
    the stored value when the incoming one is empty (CommitUnit, SessionMetadata)."""
    value: Any = sa.bindparam(column)
    if column in merged:
        return sa.func.coalesce(
            sa.func.nullif(value, sa.literal_column("''")), t.sessions.c[column]
        )
    return value


def _update_plan(changed: frozenset[str]) -> tuple[str, tuple[_Getter, ...]]:
    """The UPDATE for exactly these changed fields (cached per set)."""
    plan = _update_plans.get(changed)
    if plan is not None:
        return plan
    unknown = changed - CHANGEABLE_FIELDS
    if unknown:
        raise ValueError(
            f"unknown changed field(s) {sorted(unknown)}; expected some of {sorted(CHANGEABLE_FIELDS)}"
        )
    fields = [name for name in _CHANGED_FIELDS if name in changed]
    columns = [col for name in fields for col in _CHANGED_FIELDS[name][0]] + ["updated_at"]
    merged = set(_CHANGED_FIELDS["metadata"][0])
    stmt = (
        sa.update(t.sessions)
        .where(t.sessions.c.id == sa.bindparam("b_id"))
        .ordered_values(*[(t.sessions.c[col], _set_value(col, merged)) for col in columns])
    )
    plan = (_compile(stmt, *columns, "b_id"), tuple(_CHANGED_FIELDS[n][1] for n in fields))
    _update_plans[changed] = plan
    return plan


# --- write ops (run by the writer, inside the unit's savepoint) --------------------------------


class _PRWrite:
    """Reference §6.6 WritePRObservation: PR upsert, check upserts, comment replacement."""

    __slots__ = ("checks", "comments", "pr_row", "url")

    def __init__(self, session_id: SessionId, obs: PRObservation, at: str) -> None:
        url = obs.url
        self.url = url
        self.pr_row = (
            url,
            session_id,
            obs.number,
            str(obs.state),
            str(obs.review),
            str(obs.ci),
            str(obs.mergeability),
            at,
        )
        self.checks = [
            (
                url,
                c.name,
                c.commit,
                str(c.status),
                c.url,
                c.log_tail,
                at if c.created_at is None else encode_ts(c.created_at),
            )
            for c in obs.checks
        ]
        self.comments = [
            (
                url,
                c.id,
                c.author,
                c.file,
                c.line,
                c.body,
                int(c.resolved),
                at if c.created_at is None else encode_ts(c.created_at),
            )
            for c in obs.comments
        ]

    def __call__(self, cur: sqlite3.Cursor) -> None:
        cur.execute(_UPSERT_PR, self.pr_row)
        if self.checks:
            cur.executemany(_UPSERT_CHECK, self.checks)
        cur.execute(_DELETE_COMMENTS, (self.url,))
        if self.comments:
            cur.executemany(_UPSERT_COMMENT, self.comments)


class _UnitWrite:
    """A CommitUnit as parameters, in the order the unit is applied: session UPDATE, PR
    write, tracker deletes, tracker upserts, outbox inserts. Built in the caller's task, so
    a malformed unit fails before it reaches the writer."""

    __slots__ = (
        "merge_key",
        "outbox",
        "pr",
        "session_id",
        "session_params",
        "session_sql",
        "tracker_deletes",
        "tracker_upserts",
    )

    def __init__(self, unit: CommitUnit) -> None:
        sid = unit.session_id
        # Units of different sessions may be merged; two of one session never are.
        self.session_id = self.merge_key = sid
        record = unit.session
        if record is not None:
            if record.id != sid:
                raise ValueError(f"unit.session.id {record.id!r} != unit.session_id {sid!r}")
            sql, getters = _update_plans.get(unit.changed) or _update_plan(unit.changed)
            params: list[Any] = []
            for get in getters:
                params += get(record)
            params.append(encode_ts(record.updated_at))
            params.append(sid)
            self.session_sql: str | None = sql
            self.session_params: list[Any] = params
        elif unit.changed:
            raise ValueError("unit.changed names fields but unit.session is None")
        else:
            self.session_sql = None
            self.session_params = []
        self.pr: _PRWrite | None = None
        self.tracker_deletes: list[tuple[Any, ...]] | None = None
        self.tracker_upserts: list[tuple[Any, ...]] | None = None
        self.outbox: list[tuple[Any, ...]] | None = None
        pr = unit.pr
        if pr is None and not (unit.trackers_upsert or unit.trackers_delete or unit.outbox):
            return  # the common case: a session row only
        at = encode_ts(unit.at)
        if pr is not None and pr.fetched:
            self.pr = _PRWrite(sid, pr, at)
        if unit.trackers_delete:
            self.tracker_deletes = [(sid, key) for key in unit.trackers_delete]
        if unit.trackers_upsert:
            self.tracker_upserts = [_tracker_row(sid, tr) for tr in unit.trackers_upsert]
        if unit.outbox:
            self.outbox = [
                (
                    item.dedup_key,
                    item.session_id,
                    item.project_id,
                    str(item.action),
                    None if item.reaction is None else str(item.reaction),
                    item.event_type,
                    str(item.priority),
                    item.message,
                    at,
                )
                for item in unit.outbox
            ]

    def __call__(self, cur: sqlite3.Cursor) -> None:
        if self.session_sql is not None:
            cur.execute(self.session_sql, self.session_params)
            if cur.rowcount != 1:
                raise StoreError(f"session {self.session_id!r} does not exist")
        if self.pr is not None:
            self.pr(cur)
        if self.tracker_deletes is not None:
            cur.executemany(_DELETE_TRACKER, self.tracker_deletes)
        if self.tracker_upserts is not None:
            cur.executemany(_UPSERT_TRACKER, self.tracker_upserts)
        if self.outbox is not None:
            cur.executemany(_INSERT_OUTBOX, [(*row, row[0]) for row in self.outbox])

    @staticmethod
    def apply_merged(writes: Sequence[_UnitWrite], cur: sqlite3.Cursor) -> None:
        """Apply units of distinct sessions with one ``executemany`` per statement: the
        same rows as applying them one by one, at a fraction of the per-call cost. Any
        error fails the whole merge (the writer then retries unit by unit)."""
        updates: dict[str, list[list[Any]]] = {}
        for w in writes:
            if w.session_sql is not None:
                updates.setdefault(w.session_sql, []).append(w.session_params)
        for sql, rows in updates.items():
            cur.executemany(sql, rows)
            if cur.rowcount != len(rows):
                raise StoreError("a session of the batch does not exist")
        for w in writes:
            if w.pr is not None:
                w.pr(cur)
        for sql, attr in (
            (_DELETE_TRACKER, "tracker_deletes"),
            (_UPSERT_TRACKER, "tracker_upserts"),
        ):
            rows = [row for w in writes for row in (getattr(w, attr) or ())]
            if rows:
                cur.executemany(sql, rows)
        outbox = [row for w in writes if w.outbox is not None for row in w.outbox]
        if outbox:
            # Optimistic: the engine never emits a dedup key twice, so a repeat is rare. A
            # skipped row would still have used up an AUTOINCREMENT id, so on any repeat the
            # whole merge is undone and the writer applies the units one by one, whose
            # guarded insert skips a known key without using an id.
            cur.executemany(_INSERT_OUTBOX_UNSEEN, outbox)
            if cur.rowcount != len(outbox):
                raise StoreError("a dedup key of the batch is already queued")


class _Execute:
    """One statement as a writer op."""

    __slots__ = ("params", "sql")

    def __init__(self, sql: str, params: Sequence[Any]) -> None:
        self.sql = sql
        self.params = params

    def __call__(self, cur: sqlite3.Cursor) -> None:
        cur.execute(self.sql, self.params)


def _notification_row(event: NotificationEvent | None, stamp: str) -> tuple[Any, ...] | None:
    if event is None:
        return None
    return (
        event.session_id,
        event.project_id,
        event.type,
        str(event.priority),
        event.message,
        stamp,
    )


def _tracker_row(session_id: SessionId, tr: Tracker) -> tuple[Any, ...]:
    return (
        session_id,
        tr.key,
        str(tr.reaction),
        tr.attempts,
        encode_opt_ts(tr.first_at),
        int(tr.escalated),
        msgspec.json.encode(tr.seen).decode() if tr.seen else "[]",
    )


# --- the store --------------------------------------------------------------------------------


class SqliteStore:
    """SessionStore, PRWriter, OutboxStore and ChangeLog on SQLite (see the module doc)."""

    def __init__(self, writer: GroupWriter, reader: Connection) -> None:
        self._writer = writer
        self._reader = reader

    @property
    def writer(self) -> GroupWriter:
        return self._writer

    @property
    def on_commit(self) -> Callable[[], None] | None:
        """Called on the trio thread after every committed batch (the change feed's hook)."""
        return self._writer.on_commit

    @on_commit.setter
    def on_commit(self, callback: Callable[[], None] | None) -> None:
        self._writer.on_commit = callback

    async def flush(self) -> None:
        """Return once every write submitted before this call has committed."""
        await self._writer.flush()

    # -- reads

    async def _read(self, stmt: Executable, params: dict[str, Any] | None = None) -> list[Row[Any]]:
        await trio.lowlevel.checkpoint()
        conn = self._reader
        with conn.begin():
            return list(conn.execute(stmt, params or {}).all())

    async def _read_driver(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """``sql`` on the reader's driver connection, in a read transaction."""
        await trio.lowlevel.checkpoint()
        conn = self._reader
        with conn.begin():
            driver = conn.connection.dbapi_connection
            if driver is None:  # only after the connection was invalidated
                raise StoreError("the read connection is closed")
            cursor = driver.cursor()
            try:
                rows: list[tuple[Any, ...]] = cursor.execute(sql, params).fetchall()
            finally:
                cursor.close()
            return rows

    # -- projects

    async def upsert_project(self, project: Project) -> Project:
        """Insert, or update path, origin, display name and archived_at (None un-archives);
        ``registered_at`` never changes. Returns the stored project."""
        row = (
            project.id,
            project.path,
            project.repo_origin_url,
            project.display_name,
            encode_ts(project.registered_at),
            encode_opt_ts(project.archived_at),
        )

        def op(cur: sqlite3.Cursor) -> tuple[Any, ...]:
            stored: tuple[Any, ...] = cur.execute(_UPSERT_PROJECT, row).fetchone()
            return stored

        return _project_from_row(await self._submit(op, f"upsert of project {project.id!r}"))

    async def get_project(self, project_id: ProjectId) -> Project | None:
        rows = await self._read(sa.select(t.projects).where(t.projects.c.id == project_id))
        return _project_from_row(rows[0]) if rows else None

    async def list_projects(self, *, include_archived: bool = False) -> list[Project]:
        stmt = sa.select(t.projects).order_by(t.projects.c.id)
        if not include_archived:
            stmt = stmt.where(t.projects.c.archived_at.is_(None))
        return [_project_from_row(r) for r in await self._read(stmt)]

    async def archive_project(self, project_id: ProjectId, at: datetime | None) -> None:
        """Set ``archived_at`` (None un-archives). An unknown id is a no-op."""
        params = (encode_opt_ts(at), project_id)
        await self._submit(_Execute(_ARCHIVE_PROJECT, params), f"archive of project {project_id!r}")

    # -- sessions

    async def create_session(
        self,
        project_id: ProjectId,
        *,
        now: datetime,
        issue_id: str = "",
        kind: SessionKind = SessionKind.WORKER,
        harness: AgentHarness = AgentHarness.NONE,
    ) -> SessionRecord:
        """A ``not_started`` row with id ``{project}-{n}``, n = max(num) + 1 for the project.
        Numbers are gap-free: the writer runs creates one after another."""
        stamp = encode_ts(now)

        def op(cur: sqlite3.Cursor) -> SessionRecord:
            known, num = cur.execute(_NEXT_NUM, (project_id, project_id)).fetchone()
            if known is None:
                raise StoreError(f"unknown project {project_id!r}")
            record = SessionRecord(
                id=f"{project_id}-{num}",
                project_id=project_id,
                num=num,
                issue_id=issue_id,
                kind=kind,
                lifecycle=Lifecycle(harness=harness),
                created_at=now,
                updated_at=now,
            )
            cur.execute(
                _INSERT_SESSION,
                (
                    record.id,
                    project_id,
                    num,
                    issue_id,
                    kind,
                    harness,
                    SessionState.NOT_STARTED,
                    TerminationReason.NONE,
                    0,
                    "",
                    "",
                    "",
                    None,
                    None,
                    None,
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    stamp,
                    stamp,
                    "",  # agent: recorded when the spawn completes
                ),
            )
            return record

        return await self._submit(op, f"create of a session in project {project_id!r}")

    async def get_session(self, session_id: SessionId) -> SessionRecord | None:
        rows = await self._read(sa.select(t.sessions).where(t.sessions.c.id == session_id))
        return _session_from_row(rows[0]) if rows else None

    async def list_sessions(self, project_id: ProjectId | None = None) -> list[SessionRecord]:
        stmt = sa.select(t.sessions).order_by(t.sessions.c.project_id, t.sessions.c.num)
        if project_id is not None:
            stmt = stmt.where(t.sessions.c.project_id == project_id)
        return [_session_from_row(r) for r in await self._read(stmt)]

    async def commit(self, unit: CommitUnit) -> None:
        """Apply ``unit`` all-or-nothing (see ``_UnitWrite`` for the order). Raises
        ``StoreError`` naming the session on any refusal; nothing of the unit is kept."""
        if unit.is_empty:
            await trio.lowlevel.checkpoint()
            return
        try:
            write = _UnitWrite(unit)
        except ValueError as exc:
            raise StoreError(f"invalid unit for session {unit.session_id!r}: {exc}") from exc
        try:  # _submit inlined: this is the engine's hot path
            await self._writer.submit(write)
        except StoreError as exc:
            raise StoreError(f"commit for session {unit.session_id!r} refused: {exc}") from exc

    async def list_trackers(self, session_id: SessionId) -> list[Tracker]:
        rt = t.reaction_trackers
        stmt = sa.select(rt).where(rt.c.session_id == session_id).order_by(rt.c.key)
        return [_tracker_from_row(r) for r in await self._read(stmt)]

    # -- PRs

    async def write_pr_observation(
        self, session_id: SessionId, observation: PRObservation, now: datetime
    ) -> None:
        """The unit's PR write on its own. A failed fetch (``fetched=False``) changes nothing."""
        if not observation.fetched:
            await trio.lowlevel.checkpoint()
            return
        try:
            write = _PRWrite(session_id, observation, encode_ts(now))
        except ValueError as exc:
            raise StoreError(f"invalid PR observation {observation.url!r}: {exc}") from exc
        await self._submit(write, f"PR observation {observation.url!r} for {session_id!r}")

    async def pr_facts_for_session(self, session_id: SessionId) -> PRFacts:
        """Reference §6.7: the newest open or draft PR, else the newest PR, else none."""
        return select_pr_facts(await self.list_pr_facts(session_id))

    async def list_pr_facts(self, session_id: SessionId) -> list[PRFacts]:
        """Every PR of the session, newest ``updated_at`` first; among equal times the one
        written last first. ``review_comments`` = the PR has an unresolved comment."""
        p, c = t.pr, t.pr_comment
        unresolved = sa.exists().where(c.c.pr_url == p.c.url, c.c.resolved == 0).label("unresolved")
        stmt = (
            sa.select(
                p.c.url,
                p.c.number,
                p.c.pr_state,
                p.c.ci_state,
                p.c.review_decision,
                p.c.mergeability,
                unresolved,
            )
            .where(p.c.session_id == session_id)
            .order_by(p.c.updated_at.desc(), p.c.write_seq.desc())
        )
        facts = []
        for r in await self._read(stmt):
            state = PRState(r.pr_state)
            facts.append(
                PRFacts(
                    exists=True,
                    url=r.url,
                    number=r.number,
                    draft=state is PRState.DRAFT,
                    merged=state is PRState.MERGED,
                    closed=state is PRState.CLOSED,
                    ci=CIState(r.ci_state),
                    review=ReviewDecision(r.review_decision),
                    mergeability=Mergeability(r.mergeability),
                    review_comments=bool(r.unresolved),
                )
            )
        return facts

    async def recent_check_runs(self, pr_url: str, check_name: str, limit: int) -> list[PRCheck]:
        """The last ``limit`` runs of a check on a PR, newest first by first-seen time
        (``created_at``); equal times: the run first recorded later comes first."""
        pc = t.pr_checks
        stmt = (
            sa.select(pc)
            .where(pc.c.pr_url == pr_url, pc.c.name == check_name)
            .order_by(pc.c.created_at.desc(), sa.literal_column("pr_checks.rowid").desc())
            .limit(limit)
        )
        return [_check_from_row(r) for r in await self._read(stmt)]

    async def recent_check_statuses(
        self, pr_url: str, check_name: str, limit: int
    ) -> list[CheckStatus]:
        """The CI brake query: the statuses of ``recent_check_runs``."""
        return [run.status for run in await self.recent_check_runs(pr_url, check_name, limit)]

    async def list_checks(self, pr_url: str) -> list[PRCheck]:
        """Every check run of a PR by (name, first-seen time, insertion)."""
        pc = t.pr_checks
        stmt = (
            sa.select(pc)
            .where(pc.c.pr_url == pr_url)
            .order_by(pc.c.name, pc.c.created_at, sa.literal_column("pr_checks.rowid"))
        )
        return [_check_from_row(r) for r in await self._read(stmt)]

    async def list_pr_comments(self, pr_url: str) -> list[PRComment]:
        """The PR's current comment set by (created_at, comment id)."""
        pc = t.pr_comment
        stmt = sa.select(pc).where(pc.c.pr_url == pr_url).order_by(pc.c.created_at, pc.c.comment_id)
        return [
            PRComment(
                id=r.comment_id,
                author=r.author,
                file=r.file,
                line=r.line,
                body=r.body,
                resolved=bool(r.resolved),
                created_at=decode_ts(r.created_at),
            )
            for r in await self._read(stmt)
        ]

    # -- outbox and notifications

    async def pending_outbox(self, *, now: datetime, limit: int) -> list[OutboxEntry]:
        """Undelivered, unfailed rows whose next attempt is due (or unset), oldest first."""
        o = t.outbox
        stmt = (
            sa.select(o)
            .where(
                o.c.delivered_at.is_(None),
                o.c.failed_at.is_(None),
                sa.or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= encode_ts(now)),
            )
            .order_by(o.c.id)
            .limit(limit)
        )
        return [_outbox_from_row(r) for r in await self._read(stmt)]

    async def get_outbox_entry(self, entry_id: int) -> OutboxEntry | None:
        rows = await self._read(sa.select(t.outbox).where(t.outbox.c.id == entry_id))
        return _outbox_from_row(rows[0]) if rows else None

    async def list_outbox(self) -> list[OutboxEntry]:
        rows = await self._read(sa.select(t.outbox).order_by(t.outbox.c.id))
        return [_outbox_from_row(r) for r in rows]

    async def record_attempt(
        self, entry_id: int, *, error: str, next_attempt_at: datetime | None
    ) -> None:
        """attempts += 1, last_error and next_attempt_at set. Unknown ids are a no-op."""
        params = (encode_opt_ts(next_attempt_at), error, entry_id)
        await self._submit(_Execute(_RECORD_ATTEMPT, params), f"record_attempt of row {entry_id}")

    async def mark_delivered(
        self, entry_id: int, *, at: datetime, notification: NotificationEvent | None
    ) -> None:
        """delivered_at set (and attempts += 1); the notification, if any, is recorded in
        the same transaction. Unknown ids are a no-op."""
        stamp = encode_ts(at)
        note = _notification_row(notification, stamp)

        def op(cur: sqlite3.Cursor) -> None:
            cur.execute(_MARK_DELIVERED, (stamp, entry_id))
            if cur.rowcount and note is not None:
                cur.execute(_INSERT_NOTIFICATION, note)

        await self._submit(op, f"mark_delivered of outbox row {entry_id}")

    async def mark_failed(
        self,
        entry_id: int,
        *,
        at: datetime,
        error: str,
        notification: NotificationEvent | None = None,
    ) -> None:
        """failed_at and last_error set; a fallback notification, when given, is recorded in
        the same transaction. Unknown ids are a no-op."""
        stamp = encode_ts(at)
        params = (stamp, error, entry_id)
        note = _notification_row(notification, stamp)

        def op(cur: sqlite3.Cursor) -> None:
            cur.execute(_MARK_FAILED, params)
            if cur.rowcount and note is not None:
                cur.execute(_INSERT_NOTIFICATION, note)

        await self._submit(op, f"mark_failed of outbox row {entry_id}")

    async def list_notifications(
        self, *, project_id: ProjectId | None = None, limit: int = 100
    ) -> list[Notification]:
        """Newest first (by id), optionally for one project."""
        n = t.notifications
        stmt = sa.select(n).order_by(n.c.id.desc()).limit(limit)
        if project_id is not None:
            stmt = stmt.where(n.c.project_id == project_id)
        return [
            Notification(
                id=r.id,
                session_id=r.session_id,
                project_id=r.project_id,
                type=r.type,
                priority=Priority(r.priority),
                message=r.message,
                created_at=decode_ts(r.created_at),
                read=bool(r.read),
                resolved=bool(r.resolved),
            )
            for r in await self._read(stmt)
        ]

    # -- change log

    async def changes_after(
        self, seq: int, *, limit: int, project_id: ProjectId | None = None
    ) -> list[ChangeEvent]:
        # The change feed runs this after every commit: plain SQL on the driver, no
        # statement building (~140 -> ~40 us a call).
        if project_id is None:
            rows = await self._read_driver(_CHANGES_AFTER, (seq, limit))
        else:
            rows = await self._read_driver(_PROJECT_CHANGES_AFTER, (seq, project_id, limit))
        return [
            ChangeEvent(
                seq=seq_,
                project_id=project,
                session_id=session or "",
                type=_CHANGE_TYPES[event_type],
                payload=payload,
                created_at=decode_ts(created_at),
            )
            for seq_, project, session, event_type, payload, created_at in rows
        ]

    async def max_change_seq(self) -> int:
        """The highest seq ever assigned (0 if none); trimming never lowers it."""
        await trio.lowlevel.checkpoint()
        conn = self._reader
        with conn.begin():
            return int(conn.exec_driver_sql(_MAX_SEQ_SQL).scalar_one())

    async def trim_change_log(
        self, *, older_than: datetime, keep_max_rows: int, batch_size: int = 500
    ) -> int:
        """Retention janitor: delete the oldest change-log rows, ``batch_size`` per writer
        op so other writes interleave, and return how many went.

        A row goes when it is beyond the newest ``keep_max_rows`` rows, or when it and every
        row before it are older than ``older_than``. Only a prefix of the log is ever
        deleted (a check-status row stamped with its old first-seen time survives while
        newer rows precede it), so a reader's cursor never skips a surviving row.
        """
        if keep_max_rows < 0 or batch_size < 1:
            raise ValueError("keep_max_rows must be >= 0 and batch_size >= 1")
        cutoff_time = encode_ts(older_than)

        def op(cur: sqlite3.Cursor) -> int:
            head = cur.execute(_CHANGE_LOG_HEAD, (batch_size,)).fetchall()
            if not head:
                return 0
            (max_seq,) = cur.execute("SELECT MAX(seq) FROM change_log").fetchone()
            over_cap = max_seq - keep_max_rows
            upto = None
            for seq, created_at in head:
                if seq <= over_cap or created_at < cutoff_time:
                    upto = seq
                else:
                    break
            if upto is None:
                return 0
            return cur.execute(_TRIM_UPTO, (upto,)).rowcount

        total = 0
        while True:
            deleted = await self._submit(op, "trim of the change log")
            total += deleted
            if deleted < batch_size:
                return total

    # -- plumbing

    async def _submit(self, op: Callable[[sqlite3.Cursor], _T], what: str) -> _T:
        try:
            return await self._writer.submit(op)
        except StoreError as exc:
            raise StoreError(f"{what} refused: {exc}") from exc


# --- row decoding -------------------------------------------------------------------------------


def _project_from_row(r: Sequence[Any]) -> Project:
    id_, path, origin, display, registered, archived = r
    return Project(
        id=id_,
        path=path,
        repo_origin_url=origin,
        display_name=display,
        registered_at=decode_ts(registered),
        archived_at=decode_opt_ts(archived),
    )


def _session_from_row(r: Sequence[Any]) -> SessionRecord:
    (
        id_,
        project_id,
        num,
        issue_id,
        kind,
        harness,
        state,
        reason,
        is_alive,
        activity_state,
        activity_last_at,
        activity_source,
        detecting_attempts,
        detecting_started_at,
        detecting_hash,
        branch,
        workspace_path,
        runtime_handle_id,
        runtime_name,
        agent_session_id,
        prompt,
        created_at,
        updated_at,
        agent,
    ) = r
    activity = (
        None
        if activity_state == ""
        else Activity(
            state=ActivityState(activity_state),
            last_activity_at=decode_ts(activity_last_at),
            source=ActivitySource(activity_source),
        )
    )
    detecting = (
        None
        if detecting_attempts is None
        else DetectingState(
            attempts=detecting_attempts,
            started_at=decode_ts(detecting_started_at),
            evidence_hash=detecting_hash,
        )
    )
    return SessionRecord(
        id=id_,
        project_id=project_id,
        num=num,
        issue_id=issue_id,
        kind=SessionKind(kind),
        lifecycle=Lifecycle(
            state=SessionState(state),
            termination_reason=TerminationReason(reason),
            is_alive=bool(is_alive),
            activity=activity,
            harness=AgentHarness(harness),
            detecting=detecting,
        ),
        metadata=SessionMetadata(
            branch=branch,
            workspace_path=workspace_path,
            runtime_handle_id=runtime_handle_id,
            runtime_name=runtime_name,
            agent_session_id=agent_session_id,
            prompt=prompt,
            agent=agent,
        ),
        created_at=decode_ts(created_at),
        updated_at=decode_ts(updated_at),
    )


def _check_from_row(r: Sequence[Any]) -> PRCheck:
    _pr_url, name, commit_hash, status, url, log_tail, created_at = r
    return PRCheck(
        name=name,
        commit=commit_hash,
        status=CheckStatus(status),
        url=url,
        log_tail=log_tail,
        created_at=decode_ts(created_at),
    )


def _tracker_from_row(r: Sequence[Any]) -> Tracker:
    _sid, key, reaction, attempts, first_at, escalated, seen = r
    return Tracker(
        key=key,
        reaction=ReactionKey(reaction),
        attempts=attempts,
        first_at=decode_opt_ts(first_at),
        escalated=bool(escalated),
        seen=msgspec.json.decode(seen, type=tuple[str, ...]),
    )


def _outbox_from_row(r: Sequence[Any]) -> OutboxEntry:
    (
        id_,
        dedup_key,
        session_id,
        project_id,
        action,
        reaction,
        event_type,
        priority,
        message,
        attempts,
        next_attempt_at,
        delivered_at,
        failed_at,
        last_error,
        created_at,
    ) = r
    return OutboxEntry(
        id=id_,
        item=OutboxItem(
            dedup_key=dedup_key,
            session_id=session_id,
            project_id=project_id,
            action=ReactionAction(action),
            reaction=None if reaction is None else ReactionKey(reaction),
            event_type=event_type,
            priority=Priority(priority),
            message=message,
        ),
        attempts=attempts,
        next_attempt_at=decode_opt_ts(next_attempt_at),
        delivered_at=decode_opt_ts(delivered_at),
        failed_at=decode_opt_ts(failed_at),
        last_error=last_error,
        created_at=decode_ts(created_at),
    )


# --- opening ------------------------------------------------------------------------------------


@asynccontextmanager
async def open_sqlite_store(
    path: str | os.PathLike[str],
    *,
    synchronous: str = "NORMAL",
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    max_batch: int = DEFAULT_MAX_BATCH,
    inline: bool = True,
    migrations: Traversable | None = None,
    on_commit: Callable[[], None] | None = None,
    close_timeout: float = 10.0,
) -> AsyncIterator[SqliteStore]:
    """Open (creating and migrating as needed) the database at ``path``.

    Runs the migrations, starts the writer task, yields the store; on exit flushes every
    queued write (within ``close_timeout`` seconds) and closes both connections. An
    exception from the body comes out as itself, not wrapped in an ExceptionGroup.
    """
    write_engine = make_engine(path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
    read_engine = make_engine(path, busy_timeout_ms=busy_timeout_ms, read_only=True)
    try:
        migrate(write_engine, migrations)
        raw = write_engine.raw_connection()
        reader = read_engine.connect()
        try:
            driver = raw.driver_connection
            if not isinstance(driver, sqlite3.Connection):
                raise TypeError(f"expected a sqlite3 connection, got {type(driver)!r}")
            # Checkpoints run in a thread beside the writer (below); the writer's own
            # automatic checkpoint is the backstop (see WAL_BACKSTOP_PAGES).
            driver.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
            writer = GroupWriter(driver, max_batch=max_batch, inline=inline, on_commit=on_commit)
            store = SqliteStore(writer, reader)
            async with _collapse_single(), trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                checkpoints = trio.CancelScope()
                nursery.start_soon(_checkpoint_wal, path, writer, checkpoints)
                try:
                    yield store
                finally:
                    checkpoints.cancel()
                    with trio.move_on_after(close_timeout, shield=True) as scope:
                        await writer.aclose()
                    if scope.cancelled_caught:
                        nursery.cancel_scope.cancel()
        finally:
            reader.close()
            raw.close()
    finally:
        read_engine.dispose()
        write_engine.dispose()


WAL_CHECKPOINT_INTERVAL: Final = 0.1
# Under steady writes the checkpoint thread never copies the last frames (more arrive while
# it copies), so the WAL restarts only when the writer's backstop checkpoint stalls the loop
# (tens of ms, mostly fsync). 40k pages (~160 MB) makes that ~every 3 s at 25k signals/s
# instead of every ~0.8 s: p99 at 128 producers 14 -> 10 ms (bench/engine_bench.py).
WAL_BACKSTOP_PAGES: Final = 40_000


async def _checkpoint_wal(
    path: str | os.PathLike[str], writer: GroupWriter, scope: trio.CancelScope
) -> None:
    """Copy the WAL back into the database from a worker thread, on its own connection.

    Left to the writer, SQLite checkpoints inside the COMMIT that crosses the threshold,
    stalling the event loop for milliseconds while every caller waits. A PASSIVE checkpoint
    never blocks the writer, and the sqlite3 module releases the GIL while SQLite copies
    pages, so this work moves to the other core."""
    with scope:
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            seen = writer.batches
            while True:
                await trio.sleep(WAL_CHECKPOINT_INTERVAL)
                if writer.batches == seen:
                    continue
                seen = writer.batches
                try:
                    await trio.to_thread.run_sync(
                        connection.execute, "PRAGMA wal_checkpoint(PASSIVE)"
                    )
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed (the writer's backstop remains): %s", exc)
        finally:
            connection.close()


@asynccontextmanager
async def _collapse_single() -> AsyncIterator[None]:
    """Re-raise a lone exception out of the nursery's ExceptionGroup as itself."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from group.exceptions[0].__cause__
        raise
