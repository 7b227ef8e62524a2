"""The SQLite store: every store port (``orchestrator.ports.Store``) over SQLAlchemy Core.

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
  to a worker thread (``adapters/sqlite/reader.py``). Rows are decoded by
  ``adapters/sqlite/rows.py``; a page of sessions is read by ``adapters/sqlite/pages.py``.
- **Orderings**, all deterministic: sessions by (project, num); projects by id; PRs of a
  session by ``updated_at`` newest first, ties: the PR written last first (``write_seq``,
  as ``orchestrator.domain.prs.with_observation`` assumes); check runs by first-seen
  ``created_at`` newest first, ties: the run first recorded later first (rowid); PR
  comments by (created_at, comment id); trackers by key; outbox oldest first (id);
  notifications newest first (id); the change log by seq.
- **Errors**: constraint violations (CHECK, FOREIGN KEY, STRICT types) and missing rows
  become ``StoreError`` naming the write, for that caller only; unknown ids in the outbox
  bookkeeping calls and ``archive_project`` are no-ops; naive datetimes are refused.
  Storage faults (disk full, I/O errors, a damaged or read-only file) become
  ``StorageUnavailableError`` on reads and writes alike and degrade ``health()`` until the
  next commit that writes (``adapters/sqlite/faults.py``).
- **Retention**: ``apply_retention`` runs the janitor's rules in short batches
  (``adapters/sqlite/retention.py``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import trio
from sqlalchemy.engine import Connection

from adapters.sqlite import tables as t
from adapters.sqlite.database import open_database
from adapters.sqlite.imports import LIST_PROVENANCE, ImportWrite, provenance_from_row
from adapters.sqlite.outbox_reads import due_outbox_query
from adapters.sqlite.pages import pr_facts_query, read_session_page
from adapters.sqlite.reader import Reader
from adapters.sqlite.retention import SqliteJanitor
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
    CHANGES_AFTER,
    CLAIM_PR,
    DELETE_SESSION,
    DELETE_SESSION_NOTIFICATIONS,
    DELETE_SESSION_OUTBOX,
    INSERT_CLAIMED_PR,
    INSERT_DELIVERY,
    INSERT_NOTIFICATION,
    INSERT_SESSION,
    MARK_DELIVERED,
    MARK_FAILED,
    MARK_NOTIFICATION_READ,
    MAX_SEQ,
    PENDING_OUTBOX_OF_SESSION,
    PR_OWNER,
    PROJECT_CHANGES_AFTER,
    RECORD_ATTEMPT,
    RESOLVE_NOTIFICATION,
    SESSION_STATE,
    STAMP_SESSION,
    TAKE_SESSION_NUMBER,
    TRIM_DELIVERIES,
    UPSERT_PROJECT,
    mark_all_read,
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
from orchestrator.domain.errors import (
    ConflictError,
    NotFoundError,
    StorageUnavailableError,
    StoreError,
)
from orchestrator.domain.health import StoreHealth
from orchestrator.domain.legacy import ImportBatch, ProvenanceRow
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
    SessionState,
)
from orchestrator.domain.pages import SessionPage, check_page_limit, decode_cursor
from orchestrator.domain.prs import select_pr_facts
from orchestrator.domain.records import (
    ChangeEvent,
    CommitUnit,
    Notification,
    OutboxEntry,
    Project,
    Tracker,
)
from orchestrator.domain.retention import RetentionPolicy, RetentionReport
from orchestrator.ports import ATTEMPT_UNDER_WAY, WEBHOOK_DELIVERIES_KEPT

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
    backups_dir: Path | None = None,
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
        backups_dir=backups_dir,
    ) as (writer, reader):
        yield SqliteStore(writer, reader)


class SqliteStore:
    """Every store port on SQLite (see the module doc)."""

    def __init__(self, writer: GroupWriter, reader: Connection) -> None:
        self._writer = writer
        self._reader = reader
        reads = Reader(reader, writer.health)
        self._read = reads.rows
        self._read_driver = reads.driver_rows
        self._read_with = reads.run
        self._janitor = SqliteJanitor(self._submit, self._read_driver)

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

    def health(self) -> StoreHealth:
        """``degraded`` (with the fault) from a storage fault until a commit writes again."""
        return self._writer.health.report()

    # -- reads

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
        """A ``not_started`` row with id ``{project}-{n}``: n is one more than any number
        the project ever gave out, so the id of a removed session is never reused. The
        writer runs creates one after another."""

        def op(cur: sqlite3.Cursor) -> SessionRecord:
            taken = cur.execute(TAKE_SESSION_NUMBER, (project_id, project_id)).fetchone()
            if taken is None:
                raise StoreError(f"unknown project {project_id!r}")
            (num,) = taken
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

    async def delete_session(self, session_id: SessionId, *, at: datetime) -> bool:
        """Remove the session's row with its PRs, checks, comments, trackers, outbox rows
        and notifications. Its change-log rows stay, and one ``session_deleted`` row
        stamped ``at`` is added. False for an unknown id; ``ConflictError`` (nothing
        removed) while one of its reactions is still to be delivered."""
        stamp = encode_ts(at)

        def op(cur: sqlite3.Cursor) -> bool:
            (pending,) = cur.execute(PENDING_OUTBOX_OF_SESSION, (session_id,)).fetchone()
            if pending:
                raise ConflictError(
                    f"session {session_id} has {pending} reaction(s) still being delivered; "
                    "try again once they are"
                )
            if not cur.execute(STAMP_SESSION, (stamp, session_id)).rowcount:
                return False
            cur.execute(DELETE_SESSION_OUTBOX, (session_id,))
            cur.execute(DELETE_SESSION_NOTIFICATIONS, (session_id,))
            cur.execute(DELETE_SESSION, (session_id,))
            return True

        return await self._submit(op, f"removal of session {session_id!r}")

    async def get_session(self, session_id: SessionId) -> SessionRecord | None:
        rows = await self._read(sa.select(t.sessions).where(t.sessions.c.id == session_id))
        return session_from_row(rows[0]) if rows else None

    async def list_sessions(self, project_id: ProjectId | None = None) -> list[SessionRecord]:
        stmt = sa.select(t.sessions).order_by(t.sessions.c.project_id, t.sessions.c.num)
        if project_id is not None:
            stmt = stmt.where(t.sessions.c.project_id == project_id)
        return [session_from_row(r) for r in await self._read(stmt)]

    async def list_session_page(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        project_id: ProjectId | None = None,
    ) -> SessionPage:
        """Up to ``limit`` sessions after ``cursor`` by (project, num), each with the PR that
        speaks for it, in two queries (``adapters/sqlite/pages.py``). Raises
        ``InvalidInputError`` for a bad cursor or limit."""
        check_page_limit(limit)
        after = None if cursor is None else decode_cursor(cursor)
        return await self._read_with(
            lambda conn: read_session_page(conn, limit=limit, after=after, project_id=project_id)
        )

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
            raise _named(f"commit for session {unit.session_id!r}", exc) from exc

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
        p = t.pr
        stmt = (
            pr_facts_query()
            .where(p.c.session_id == session_id)
            .order_by(p.c.updated_at.desc(), p.c.write_seq.desc())
        )
        return [pr_facts_from_row(r) for r in await self._read(stmt)]

    async def claim_pr(
        self, session_id: SessionId, url: str, *, number: int, now: datetime
    ) -> SessionId | None:
        """Make ``session_id`` the PR's owner; returns the owner it had before (None when
        the PR is new here or was the session's already). A PR not seen yet is recorded with
        nothing known but its number until it is observed. Raises ``NotFoundError`` for an
        unknown session and ``ConflictError`` for one that has ended."""
        stamp = encode_ts(now)

        def op(cur: sqlite3.Cursor) -> SessionId | None:
            state = cur.execute(SESSION_STATE, (session_id,)).fetchone()
            if state is None:
                raise NotFoundError(f"session {session_id!r} not found")
            if SessionState(state[0]).is_terminal:
                raise ConflictError(f"session {session_id} has ended: it cannot take a PR")
            owner = cur.execute(PR_OWNER, (url,)).fetchone()
            if owner is None:
                cur.execute(INSERT_CLAIMED_PR, (url, session_id, number, stamp))
                return None
            if owner[0] == session_id:
                return None
            cur.execute(CLAIM_PR, (session_id, stamp, url))
            previous: SessionId = owner[0]
            return previous

        return await self._submit(op, f"claim of PR {url!r} for {session_id!r}")

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
        """What is due, oldest first; a session's rows behind one that waits for a retry
        wait too (``adapters/sqlite/outbox_reads.py``)."""
        return [outbox_from_row(r) for r in await self._read(due_outbox_query(now, limit))]

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
        self, *, project_id: ProjectId | None = None, limit: int = 100, unread: bool = False
    ) -> list[Notification]:
        """Newest first (by id), optionally for one project, optionally only the unread."""
        n = t.notifications
        stmt = sa.select(n).order_by(n.c.id.desc()).limit(limit)
        if project_id is not None:
            stmt = stmt.where(n.c.project_id == project_id)
        if unread:
            stmt = stmt.where(n.c.read == 0)
        return [notification_from_row(r) for r in await self._read(stmt)]

    async def mark_notification_read(self, notification_id: int, at: datetime) -> bool:
        """Mark read (the first read time is kept); whether the notification exists."""
        return await self._mark_notification(MARK_NOTIFICATION_READ, notification_id, at, "read")

    async def resolve_notification(self, notification_id: int, at: datetime) -> bool:
        """Mark resolved (the first resolution time is kept); whether it exists."""
        return await self._mark_notification(RESOLVE_NOTIFICATION, notification_id, at, "resolve")

    async def mark_all_notifications_read(
        self, at: datetime, *, project_id: ProjectId | None = None
    ) -> int:
        """Every unread notification (of ``project_id``) read at ``at``; how many."""
        sql, params = mark_all_read(encode_ts(at), project_id)
        return await self._submit(
            lambda cur: cur.execute(sql, params).rowcount, "read of every unread notification"
        )

    async def _mark_notification(
        self, sql: str, notification_id: int, at: datetime, what: str
    ) -> bool:
        params = (encode_ts(at), notification_id)

        def op(cur: sqlite3.Cursor) -> bool:
            return cur.execute(sql, params).rowcount == 1

        return await self._submit(op, f"{what} of notification {notification_id}")

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
        ((seq,),) = await self._read_driver(MAX_SEQ, ())
        return int(seq)

    async def trim_change_log(
        self, *, older_than: datetime, keep_max_rows: int, batch_size: int = 500
    ) -> int:
        """Delete the oldest change-log rows in batches; how many went (the change-log rule
        of ``apply_retention`` on its own, see ``SqliteJanitor.trim_change_log``)."""
        return await self._janitor.trim_change_log(
            older_than=older_than, keep_max_rows=keep_max_rows, batch_size=batch_size
        )

    # -- retention

    async def apply_retention(self, policy: RetentionPolicy, *, now: datetime) -> RetentionReport:
        """One janitor pass: every table trimmed by ``policy``, in batches of
        ``policy.batch_size`` rows, each its own writer op (live writes interleave).
        Never deletes an open outbox row or a live session's trackers."""
        return await self._janitor.apply(policy, now)

    # -- webhook deliveries

    async def record_webhook_delivery(
        self, delivery_id: str, *, at: datetime, keep: int = WEBHOOK_DELIVERIES_KEPT
    ) -> bool:
        """Remember a delivery id; False when it was remembered already (a replay). Only the
        newest ``keep`` ids are kept."""
        row = (delivery_id, encode_ts(at))

        def op(cur: sqlite3.Cursor) -> bool:
            cur.execute(INSERT_DELIVERY, row)
            if cur.rowcount == 0:
                return False
            newest = cur.lastrowid
            if newest is not None and newest > keep:
                cur.execute(TRIM_DELIVERIES, (newest - keep,))
            return True

        return await self._submit(op, "record of a webhook delivery")

    # -- plumbing

    # -- imports (adapters/sqlite/imports.py)

    async def import_batch(self, batch: ImportBatch) -> tuple[SessionId, ...]:
        """Write one project's import in one transaction; existing rows are never touched.
        Returns the ids of the sessions inserted."""
        write = ImportWrite(batch)
        return await self._submit(write, f"import of project {batch.project.id!r}")

    async def list_provenance(self) -> list[ProvenanceRow]:
        return [provenance_from_row(r) for r in await self._read_driver(LIST_PROVENANCE, ())]

    async def _submit(self, op: Callable[[sqlite3.Cursor], _T], what: str) -> _T:
        try:
            return await self._writer.submit(op)
        except StoreError as exc:
            raise _named(what, exc) from exc


def _named(what: str, exc: StoreError) -> StoreError:
    """``exc`` of the same kind, its message naming the write."""
    if isinstance(exc, StorageUnavailableError):
        return StorageUnavailableError(f"{what} not made: {exc}")
    return StoreError(f"{what} refused: {exc}")
