"""Connections and the group-commit writer (docs/design.md, "Group commit").

``make_engine`` builds the SQLAlchemy engines: every connection gets WAL, the configured
``synchronous``, ``foreign_keys=ON`` and ``busy_timeout``; the driver's implicit BEGIN is
disabled (pysqlite's own transaction handling would BEGIN behind our back) and
SQLAlchemy's ``begin`` emits ``BEGIN IMMEDIATE`` (writer) or ``BEGIN`` with
``query_only=ON`` (reader).

``GroupWriter`` owns the only write connection. Callers ``await writer.submit(op)`` where
``op`` is a function of a sqlite3 cursor. One task drains every waiting op (up to
``max_batch``) into one ``BEGIN IMMEDIATE`` transaction, commits once, wakes every waiter
through one shared ``trio.Event``, then calls ``on_commit``. A batch first runs with no
savepoints, each run of consecutive ops of one ``MergeableOp`` type (with distinct merge
keys) applied together by that type's ``apply_merged``: one ``executemany`` per statement.
Only if that attempt raises is the transaction rolled back and the batch run again op by
op, each in its own ``SAVEPOINT``, so the failing op rolls back alone and fails only its
caller. An op may also raise on purpose to get that rerun (the store's optimistic outbox
insert does, on a repeated dedup key).

Measured (bench/store_bench.py): a ``trio.to_thread`` hop costs more than a batch's SQLite
work and buys no overlap under the GIL, so batches run inline on the trio thread by default
(a batch of 256 blocks the loop for a few ms); ``inline=False`` runs them in a worker
thread instead.

Storage faults (disk full, I/O errors, a damaged or read-only file: ``faults.py``) fail
their callers with ``StorageUnavailableError`` instead of ``StoreError`` and mark the
writer's ``health`` degraded; the next batch that commits marks it healthy again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections import deque
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any, Final, Protocol, Self, TypeVar

import sqlalchemy as sa
import trio
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry

from adapters.sqlite.faults import StorageHealth, is_storage_fault, storage_unavailable
from orchestrator.domain.errors import OrchestratorError, StorageUnavailableError, StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
DEFAULT_MAX_BATCH: Final = 256

_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def make_engine(
    path: str | os.PathLike[str],
    *,
    synchronous: str = "NORMAL",
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    read_only: bool = False,
) -> Engine:
    """An engine on the database file at ``path`` with the project's pragmas.

    Write engines begin every transaction with ``BEGIN IMMEDIATE`` so a second writer waits
    at BEGIN (up to ``busy_timeout``) instead of failing a lock upgrade with ``database is
    locked``. Read-only engines use a plain deferred ``BEGIN`` and ``query_only=ON``.
    """
    mode = synchronous.upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
    if busy_timeout_ms < 0:
        raise ValueError("busy_timeout_ms must be >= 0")
    pragmas = [f"busy_timeout={int(busy_timeout_ms)}"]
    if read_only:
        pragmas += ["foreign_keys=ON", "query_only=ON"]
    else:
        pragmas += ["journal_mode=WAL", f"synchronous={mode}", "foreign_keys=ON"]
    begin_sql = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    engine = sa.create_engine(
        f"sqlite+pysqlite:///{os.fspath(path)}",
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy (or the writer), not pysqlite, BEGINs
        for pragma in pragmas:
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin_sql)

    return engine


class MergeableOp(Protocol):
    """An op the writer may apply together with the ops of its own type queued right
    after it, when the writer was told its type (``GroupWriter(mergeable=...)``)."""

    @property
    def merge_key(self) -> Hashable:
        """Ops with equal keys are never merged: their order could matter."""
        ...

    def __call__(self, cursor: sqlite3.Cursor, /) -> object:
        """Apply this op alone (the rerun after a failed merge, or a batch of one)."""
        ...

    @classmethod
    def apply_merged(cls, ops: Sequence[Self], cursor: sqlite3.Cursor, /) -> None:
        """Apply ``ops`` (distinct keys, submission order) leaving the same rows as
        calling each in order; raise on any error, and the writer reruns them one by one.
        Their callers get None as the result."""
        ...


def to_store_error(exc: BaseException) -> BaseException:
    """The error a caller should see for ``exc`` raised while applying its op."""
    if isinstance(exc, OrchestratorError):
        return exc
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreError(f"constraint violated: {exc}")
    if isinstance(exc, sqlite3.Error):
        if is_storage_fault(exc):
            return storage_unavailable(exc)
        return StoreError(f"database error: {exc}")
    return exc  # a bug in the op itself: its caller gets it unchanged


def _batch_error(what: str, exc: BaseException) -> StoreError:
    """The error every caller of a batch gets when the batch's transaction failed."""
    if is_storage_fault(exc):
        return storage_unavailable(exc)
    return StoreError(f"{what}: {exc}")


_GATHER_ROUNDS: Final = 4


class _Job:
    __slots__ = ("error", "op", "result")

    def __init__(self, op: Callable[[sqlite3.Cursor], Any]) -> None:
        self.op = op
        self.result: Any = None
        self.error: BaseException | None = None


class _Batch:
    __slots__ = ("done", "jobs")

    def __init__(self) -> None:
        self.jobs: list[_Job] = []
        self.done = trio.Event()


class GroupWriter:
    """One task, one write connection, one transaction per batch of waiting ops.

    ``submit`` returns once the op's transaction has committed (durable as far as the
    connection's ``synchronous`` setting goes). Ops run in submission order. A caller
    cancelled while waiting does not withdraw its op: it may still commit.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        inline: bool = True,
        on_commit: Callable[[], None] | None = None,
        mergeable: Collection[type[MergeableOp]] = (),
        health: StorageHealth | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if connection.isolation_level is not None:
            raise ValueError("the write connection must have isolation_level=None")
        self._conn = connection
        self._cursor = connection.cursor()
        self._max_batch = max_batch
        self._inline = inline
        self.on_commit = on_commit
        self._mergeable: dict[type, type[MergeableOp]] = {kind: kind for kind in mergeable}
        self._queue: deque[_Batch] = deque()
        self._wake: trio.Event | None = None
        self._closing = False
        self._closed = False
        self._stopped = trio.Event()
        self.batches = 0
        self.ops = 0
        self.health = health or StorageHealth()
        # Set while a batch runs (possibly in a worker thread), read after it on the trio
        # thread: whether it committed, and the storage fault one of its ops met; and the
        # connection's row-change count before it.
        self._committed = False
        self._fault: StorageUnavailableError | None = None
        self._changes_before = 0

    # -- callers

    async def submit(self, op: Callable[[sqlite3.Cursor], T]) -> T:
        """Run ``op(cursor)`` in the next batch; return its result once committed.

        Database errors raised by ``op`` come back as ``StoreError`` (its writes rolled
        back, the rest of the batch unaffected); domain errors it raises pass through. An
        op of a ``mergeable`` type may run merged with its neighbours (its result is then
        None).
        """
        if self._closing:
            raise StoreError("the store is closed")
        job = _Job(op)
        queue = self._queue
        if queue and len(queue[-1].jobs) < self._max_batch:
            batch = queue[-1]
        else:
            batch = _Batch()
            queue.append(batch)
        batch.jobs.append(job)
        wake = self._wake
        if wake is not None:
            wake.set()
        await batch.done.wait()
        if job.error is not None:
            raise job.error
        result: T = job.result  # not typing.cast: that is a call per op
        return result

    async def flush(self) -> None:
        """Return once everything submitted before this call has committed."""
        await self.submit(_noop)

    async def aclose(self) -> None:
        """Refuse new ops, commit the queued ones, and wait for the writer task to end."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        await self._stopped.wait()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the writer task

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer loop; start it with ``nursery.start(writer.run)``."""
        task_status.started()
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wake = trio.Event()
                    await self._wake.wait()
                    self._wake = None
                    continue
                batch = self._queue.popleft()
                self._committed = False
                self._changes_before = self._conn.total_changes
                try:
                    await self._begin()
                except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                    error = _batch_error("could not start a write transaction", exc)
                    self._note_fault(error)
                    _fail(batch, error)
                    self._report_health()
                    continue
                except BaseException:
                    _fail(batch, StoreError("the store closed before this write was applied"))
                    raise
                try:
                    if not await self._run_sync(self._apply, batch):
                        await self._begin()
                        await self._run_sync(self._apply_isolated, batch)
                except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                    error = _batch_error("could not restart a write transaction", exc)
                    self._note_fault(error)
                    _fail(batch, error)
                finally:
                    batch.done.set()
                self._report_health()
                self.batches += 1
                self.ops += len(batch.jobs)
                self._notify()
                await self._let_callers_queue()
        finally:
            self._closing = True
            self._closed = True
            self._fail_queued()
            self._stopped.set()

    async def _run_sync(self, fn: Callable[[_Batch], T], batch: _Batch) -> T:
        if self._inline:
            return fn(batch)
        # abandon_on_cancel=False (the default): a cancel waits for the batch, so a
        # transaction is never left half-done.
        return await trio.to_thread.run_sync(fn, batch)

    async def _let_callers_queue(self) -> None:
        """Yield until the callers just acked have queued their next ops (each round of
        trio's scheduler runs some of them), so the next batch is full rather than the
        first few: fewer, larger transactions. Bounded, so a steady trickle cannot stall."""
        for _ in range(_GATHER_ROUNDS):
            queued = self._queued()
            await trio.lowlevel.checkpoint()
            if self._queued() == queued:
                return

    def _note_fault(self, error: BaseException) -> None:
        if isinstance(error, StorageUnavailableError):
            self._fault = error

    def _report_health(self) -> None:
        """After a batch: a storage fault degrades the store; a commit that wrote rows, with
        no fault, heals it (committing nothing, a flush say, proves nothing on a full disk)."""
        fault = self._fault
        if fault is not None:
            self._fault = None
            self.health.fault(fault)
        elif (
            self._committed
            and self.health.degraded
            and self._conn.total_changes > self._changes_before
        ):
            self.health.committed()

    def _queued(self) -> int:
        return sum(len(batch.jobs) for batch in self._queue)

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE; a lock held by another process is waited out, never raised."""
        if self._conn.in_transaction:  # a ROLLBACK after a storage fault failed too
            self._cursor.execute("ROLLBACK")
        delay = 0.005
        while True:
            try:
                self._cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode not in _BUSY_CODES:
                    raise
                log.warning("write lock busy (%s); retrying in %.3fs", exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 0.25)
            else:
                return

    def _apply(self, batch: _Batch) -> bool:
        """Apply the batch in the open transaction and COMMIT. Never raises for a job's
        error; a failed COMMIT fails every job of the batch.

        Several jobs run together (``_apply_merged``) with no savepoints: inside a savepoint
        SQLite copies every page it changes to a statement journal, which tripled the cost
        of a session update. If the merged attempt fails, the transaction is rolled back
        and False returned: the caller begins again and runs ``_apply_isolated``."""
        cur = self._cursor
        jobs = batch.jobs
        try:
            if len(jobs) == 1:
                job = jobs[0]
                try:
                    job.result = job.op(cur)
                except Exception as exc:  # noqa: BLE001 - handed to this job's caller
                    job.error = error = to_store_error(exc)
                    self._note_fault(error)
                    if self._conn.in_transaction:
                        cur.execute("ROLLBACK")
                    return True
            else:
                try:
                    _apply_merged(jobs, cur, self._mergeable)
                except Exception:
                    if not self._conn.in_transaction:
                        raise  # SQLite aborted the whole transaction (I/O error, full)
                    cur.execute("ROLLBACK")  # someone's unit failed: isolate them all
                    for job in jobs:
                        job.result = None
                    return False
            cur.execute("COMMIT")
            self._committed = True
        except BaseException as exc:
            self._fail_transaction(jobs, exc)
            if not isinstance(exc, Exception):
                raise
        return True

    def _apply_isolated(self, batch: _Batch) -> None:
        """Each job in its own savepoint, then COMMIT: a failing job fails only its caller."""
        cur = self._cursor
        jobs = batch.jobs
        try:
            for job in jobs:
                cur.execute("SAVEPOINT unit")
                try:
                    job.result = job.op(cur)
                except Exception as exc:
                    job.error = error = to_store_error(exc)
                    self._note_fault(error)
                    if not self._conn.in_transaction:
                        raise  # SQLite aborted the whole transaction (I/O error, full)
                    cur.execute("ROLLBACK TO unit")
                cur.execute("RELEASE unit")
            cur.execute("COMMIT")
            self._committed = True
        except BaseException as exc:
            self._fail_transaction(jobs, exc)
            if not isinstance(exc, Exception):
                raise

    def _fail_transaction(self, jobs: list[_Job], exc: BaseException) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error as rollback_error:  # the storage that failed the batch
                log.debug("rollback after a failed batch failed too: %s", rollback_error)
        error = _batch_error("transaction rolled back", exc)
        self._note_fault(error)
        for job in jobs:
            job.result = None
            job.error = error

    def _notify(self) -> None:
        callback = self.on_commit
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("on_commit callback failed")

    def _fail_queued(self) -> None:
        error = StoreError("the store closed before this write was applied")
        while self._queue:
            _fail(self._queue.popleft(), error)


def _apply_merged(
    jobs: list[_Job], cur: sqlite3.Cursor, mergeable: dict[type, type[MergeableOp]]
) -> None:
    """Run the batch, merging each run of consecutive ops of one ``mergeable`` type with
    distinct merge keys into one ``apply_merged`` call; other ops run one by one. Raises
    on any error; the caller then isolates the jobs."""
    index, count = 0, len(jobs)
    while index < count:
        op = jobs[index].op
        kind = mergeable.get(type(op))
        if kind is None:
            jobs[index].result = op(cur)
            index += 1
            continue
        run: list[MergeableOp] = []
        keys: set[Hashable] = set()
        end = index
        while end < count:
            candidate = jobs[end].op
            if not isinstance(candidate, kind):
                break
            key = candidate.merge_key
            if key in keys:
                break
            keys.add(key)
            run.append(candidate)
            end += 1
        kind.apply_merged(run, cur)
        index = end


def _fail(batch: _Batch, error: StoreError) -> None:
    for job in batch.jobs:
        job.result = None
        job.error = error
    batch.done.set()


def _noop(_cursor: sqlite3.Cursor) -> None:
    return None
