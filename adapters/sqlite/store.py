"""The SQLite store: SessionStore, PRWriter, OutboxStore and ChangeLog over SQLAlchemy Core.

Open it with ``open_sqlite_store``: it migrates the database, starts the group-commit
writer (``adapters/sqlite/writer.py``) and, on exit, flushes the writer and closes both
connections (``adapters/sqlite/database.py``).

- **Writes** (every one, ``create_session`` included) go through the writer as one op per
  call, applied in the writer's shared ``BEGIN IMMEDIATE`` transaction. Parameters are
  built in the caller before the op is queued (``adapters/sqlite/writes.py``); the
  statements were compiled once at import (``adapters/sqlite/statements.py``) and run on
  the driver cursor with ``execute``/``executemany``: the measured hot path
  (bench/store_bench.py). The writer merges a batch's consecutive ``commit`` units of
  distinct sessions into one ``executemany`` per statement, with no savepoints; only when
  that attempt fails does it roll back and apply the batch op by op, each in its own
  savepoint, so the failing op fails alone. The merged outbox insert is optimistic: a
  repeated dedup key makes it fail, and the op-by-op rerun's guarded insert skips the
  repeat without using up an id.
- **Reads** run SQLAlchemy Core selects on a second, ``query_only`` connection, each in its
  own short deferred transaction, inline on the trio thread: a read costs less than a hop
  to a worker thread. Rows are decoded by ``adapters/sqlite/rows.py``.
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

import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.resources.abc import Traversable
from typing import Any, TypeVar

import sqlalchemy as sa
import trio
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.base import Executable

from adapters.sqlite import tables as t
from adapters.sqlite.database import open_database
from adapters.sqlite.rows import (
    change_events_from_rows,
    check_from_row,
    comment_from_row,
    notification_from_row,
    outbox_from_row,
    pr_facts_from_row,
    project_from_row,
    session_from_row,
    tracker_from_row,
)
from adapters.sqlite.statements import (
    ARCHIVE_PROJECT,
    BEGIN_ATTEMPT,
    CHANGE_LOG_HEAD,
    CHANGES_AFTER,
    INSERT_NOTIFICATION,
    INSERT_SESSION,
    MARK_DELIVERED,
    MARK_FAILED,
    MAX_LOGGED_SEQ,
    MAX_SEQ,
    NEXT_NUM,
    PROJECT_CHANGES_AFTER,
    RECORD_ATTEMPT,
    TRIM_UPTO,
    UPSERT_PROJECT,
)
from adapters.sqlite.tables import encode_opt_ts, encode_ts
from adapters.sqlite.writer import DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_MAX_BATCH, GroupWriter
from adapters.sqlite.writes import (
    Execute,
    PRWrite,
    UnitWrite,
    notification_row,
    session_row,
)
from orchestrator.domain.errors import StoreError
from orchestrator.domain.model import (
    AgentHarness,
    CheckStatus,
    Lifecycle,
    NotificationEvent,
    PRCheck,
    PRComment,
    PRFacts,
    PRObservation,
    ProjectId,
    SessionId,
    SessionKind,
    SessionRecord,
)
from orchestrator.domain.prs import select_pr_facts
from orchestrator.domain.records import (
    ChangeEvent,
    CommitUnit,
    Notification,
    OutboxEntry,
    Project,
    Tracker,
)
from orchestrator.ports import ATTEMPT_UNDER_WAY

_T = TypeVar("_T")


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
    ``inline=False`` runs the writer's batches in a worker thread.
    """
    async with open_database(
        path,
        synchronous=synchronous,
        busy_timeout_ms=busy_timeout_ms,
        max_batch=max_batch,
        inline=inline,
        migrations=migrations,
        on_commit=on_commit,
        close_timeout=close_timeout,
    ) as (writer, reader):
        yield SqliteStore(writer, reader)


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
            stored: tuple[Any, ...] = cur.execute(UPSERT_PROJECT, row).fetchone()
            return stored

        return project_from_row(await self._submit(op, f"upsert of project {project.id!r}"))

    async def get_project(self, project_id: ProjectId) -> Project | None:
        rows = await self._read(sa.select(t.projects).where(t.projects.c.id == project_id))
        return project_from_row(rows[0]) if rows else None

    async def list_projects(self, *, include_archived: bool = False) -> list[Project]:
        stmt = sa.select(t.projects).order_by(t.projects.c.id)
        if not include_archived:
            stmt = stmt.where(t.projects.c.archived_at.is_(None))
        return [project_from_row(r) for r in await self._read(stmt)]

    async def archive_project(self, project_id: ProjectId, at: datetime | None) -> None:
        """Set ``archived_at`` (None un-archives). An unknown id is a no-op."""
        params = (encode_opt_ts(at), project_id)
        await self._submit(Execute(ARCHIVE_PROJECT, params), f"archive of project {project_id!r}")

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

        def op(cur: sqlite3.Cursor) -> SessionRecord:
            known, num = cur.execute(NEXT_NUM, (project_id, project_id)).fetchone()
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
            cur.execute(INSERT_SESSION, session_row(record))
            return record

        return await self._submit(op, f"create of a session in project {project_id!r}")

    async def get_session(self, session_id: SessionId) -> SessionRecord | None:
        rows = await self._read(sa.select(t.sessions).where(t.sessions.c.id == session_id))
        return session_from_row(rows[0]) if rows else None

    async def list_sessions(self, project_id: ProjectId | None = None) -> list[SessionRecord]:
        stmt = sa.select(t.sessions).order_by(t.sessions.c.project_id, t.sessions.c.num)
        if project_id is not None:
            stmt = stmt.where(t.sessions.c.project_id == project_id)
        return [session_from_row(r) for r in await self._read(stmt)]

    async def commit(self, unit: CommitUnit) -> None:
        """Apply ``unit`` all-or-nothing (see ``UnitWrite`` for the order). Raises
        ``StoreError`` naming the session on any refusal; nothing of the unit is kept."""
        if unit.is_empty:
            await trio.lowlevel.checkpoint()
            return
        try:
            write = UnitWrite(unit)
        except ValueError as exc:
            raise StoreError(f"invalid unit for session {unit.session_id!r}: {exc}") from exc
        try:  # _submit inlined: this is the engine's hot path
            await self._writer.submit(write)
        except StoreError as exc:
            raise StoreError(f"commit for session {unit.session_id!r} refused: {exc}") from exc

    async def list_trackers(self, session_id: SessionId) -> list[Tracker]:
        rt = t.reaction_trackers
        stmt = sa.select(rt).where(rt.c.session_id == session_id).order_by(rt.c.key)
        return [tracker_from_row(r) for r in await self._read(stmt)]

    # -- PRs

    async def write_pr_observation(
        self, session_id: SessionId, observation: PRObservation, now: datetime
    ) -> None:
        """The unit's PR write on its own. A failed fetch (``fetched=False``) changes nothing."""
        if not observation.fetched:
            await trio.lowlevel.checkpoint()
            return
        try:
            write = PRWrite(session_id, observation, encode_ts(now))
        except ValueError as exc:
            raise StoreError(f"invalid PR observation {observation.url!r}: {exc}") from exc
        await self._submit(write, f"PR observation {observation.url!r} for {session_id!r}")

    async def pr_facts_for_session(self, session_id: SessionId) -> PRFacts:
        """The PR that speaks for the session: the newest open or draft PR, else the newest
        PR, else none (``select_pr_facts``)."""
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
        return [pr_facts_from_row(r) for r in await self._read(stmt)]

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
        return [check_from_row(r) for r in await self._read(stmt)]

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
        return [check_from_row(r) for r in await self._read(stmt)]

    async def list_pr_comments(self, pr_url: str) -> list[PRComment]:
        """The PR's current comment set by (created_at, comment id)."""
        pc = t.pr_comment
        stmt = sa.select(pc).where(pc.c.pr_url == pr_url).order_by(pc.c.created_at, pc.c.comment_id)
        return [comment_from_row(r) for r in await self._read(stmt)]

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
        return [outbox_from_row(r) for r in await self._read(stmt)]

    async def get_outbox_entry(self, entry_id: int) -> OutboxEntry | None:
        rows = await self._read(sa.select(t.outbox).where(t.outbox.c.id == entry_id))
        return outbox_from_row(rows[0]) if rows else None

    async def list_outbox(self) -> list[OutboxEntry]:
        rows = await self._read(sa.select(t.outbox).order_by(t.outbox.c.id))
        return [outbox_from_row(r) for r in rows]

    async def begin_attempt(self, entry_id: int) -> None:
        """next_attempt_at = ATTEMPT_UNDER_WAY. Unknown ids are a no-op."""
        params = (encode_ts(ATTEMPT_UNDER_WAY), entry_id)
        await self._submit(Execute(BEGIN_ATTEMPT, params), f"begin_attempt of row {entry_id}")

    async def record_attempt(
        self, entry_id: int, *, error: str, next_attempt_at: datetime | None
    ) -> None:
        """attempts += 1, last_error and next_attempt_at set. Unknown ids are a no-op."""
        params = (encode_opt_ts(next_attempt_at), error, entry_id)
        await self._submit(Execute(RECORD_ATTEMPT, params), f"record_attempt of row {entry_id}")

    async def mark_delivered(
        self, entry_id: int, *, at: datetime, notification: NotificationEvent | None
    ) -> None:
        """delivered_at set (and attempts += 1); the notification, if any, is recorded in
        the same transaction. Unknown ids are a no-op."""
        stamp = encode_ts(at)
        note = notification_row(notification, stamp)

        def op(cur: sqlite3.Cursor) -> None:
            cur.execute(MARK_DELIVERED, (stamp, entry_id))
            if cur.rowcount and note is not None:
                cur.execute(INSERT_NOTIFICATION, note)

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
        note = notification_row(notification, stamp)

        def op(cur: sqlite3.Cursor) -> None:
            cur.execute(MARK_FAILED, params)
            if cur.rowcount and note is not None:
                cur.execute(INSERT_NOTIFICATION, note)

        await self._submit(op, f"mark_failed of outbox row {entry_id}")

    async def list_notifications(
        self, *, project_id: ProjectId | None = None, limit: int = 100
    ) -> list[Notification]:
        """Newest first (by id), optionally for one project."""
        n = t.notifications
        stmt = sa.select(n).order_by(n.c.id.desc()).limit(limit)
        if project_id is not None:
            stmt = stmt.where(n.c.project_id == project_id)
        return [notification_from_row(r) for r in await self._read(stmt)]

    # -- change log

    async def changes_after(
        self, seq: int, *, limit: int, project_id: ProjectId | None = None
    ) -> list[ChangeEvent]:
        # The change feed runs this after every commit: plain SQL on the driver, no
        # statement building (~140 -> ~40 us a call).
        if project_id is None:
            rows = await self._read_driver(CHANGES_AFTER, (seq, limit))
        else:
            rows = await self._read_driver(PROJECT_CHANGES_AFTER, (seq, project_id, limit))
        return change_events_from_rows(rows)

    async def max_change_seq(self) -> int:
        """The highest seq ever assigned (0 if none); trimming never lowers it."""
        await trio.lowlevel.checkpoint()
        conn = self._reader
        with conn.begin():
            return int(conn.exec_driver_sql(MAX_SEQ).scalar_one())

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

    # -- plumbing

    async def _submit(self, op: Callable[[sqlite3.Cursor], _T], what: str) -> _T:
        try:
            return await self._writer.submit(op)
        except StoreError as exc:
            raise StoreError(f"{what} refused: {exc}") from exc
