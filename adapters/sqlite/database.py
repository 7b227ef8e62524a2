"""Opening the database: check the file, migrate it, open the write and read connections,
run the group-commit writer and a WAL checkpoint thread beside it, and close it all
cleanly."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from importlib.resources.abc import Traversable
from typing import Final

import trio
from sqlalchemy.engine import Connection

from adapters.sqlite.faults import StorageHealth
from adapters.sqlite.integrity import check_database_file, open_failure
from adapters.sqlite.migrate import migrate
from adapters.sqlite.writer import (
    DEFAULT_BUSY_TIMEOUT_MS,
    DEFAULT_MAX_BATCH,
    GroupWriter,
    make_engine,
)
from adapters.sqlite.writes import UnitWrite

log = logging.getLogger(__name__)

WAL_CHECKPOINT_INTERVAL: Final = 0.1
# Under steady writes the checkpoint thread never copies the last frames (more arrive while
# it copies), so the WAL restarts only when the writer's backstop checkpoint stalls the loop
# (tens of ms, mostly fsync). 40k pages (~160 MB) makes that ~every 3 s at 25k signals/s
# instead of every ~0.8 s: p99 at 128 producers 14 -> 10 ms (bench/engine_bench.py).
WAL_BACKSTOP_PAGES: Final = 40_000


@asynccontextmanager
async def open_database(
    path: str | os.PathLike[str],
    *,
    synchronous: str = "NORMAL",
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    max_batch: int = DEFAULT_MAX_BATCH,
    inline: bool = True,
    migrations: Traversable | None = None,
    on_commit: Callable[[], None] | None = None,
    close_timeout: float = 10.0,
) -> AsyncIterator[tuple[GroupWriter, Connection]]:
    """Open (creating and migrating as needed) the database at ``path``; yield the running
    writer and the read connection.

    First the file is checked (``integrity.py``): a damaged one raises
    ``DatabaseDamagedError``, one that cannot be opened or written
    ``StorageUnavailableError``, each with a one-line message naming the file.

    On exit, flushes every queued write (within ``close_timeout`` seconds) and closes both
    connections. An exception from the body comes out as itself, not wrapped in an
    ExceptionGroup. The options are ``open_sqlite_store``'s.
    """
    check_database_file(path)
    write_engine = make_engine(path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
    read_engine = make_engine(path, busy_timeout_ms=busy_timeout_ms, read_only=True)
    try:
        with ExitStack() as closing:
            with _one_line_open_errors(path):
                migrate(write_engine, migrations)
                raw = write_engine.raw_connection()
                closing.callback(raw.close)
                reader = read_engine.connect()
                closing.callback(reader.close)
            driver = raw.driver_connection
            if not isinstance(driver, sqlite3.Connection):
                raise TypeError(f"expected a sqlite3 connection, got {type(driver)!r}")
            # Checkpoints run in a thread beside the writer (below); the writer's own
            # automatic checkpoint is the backstop (see WAL_BACKSTOP_PAGES).
            driver.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
            writer = GroupWriter(
                driver,
                max_batch=max_batch,
                inline=inline,
                on_commit=on_commit,
                mergeable=(UnitWrite,),
                health=StorageHealth(),
            )
            async with _collapse_single(), trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                checkpoints = trio.CancelScope()
                nursery.start_soon(_checkpoint_wal, path, writer, checkpoints)
                try:
                    yield writer, reader
                finally:
                    checkpoints.cancel()
                    with trio.move_on_after(close_timeout, shield=True) as scope:
                        await writer.aclose()
                    if scope.cancelled_caught:
                        nursery.cancel_scope.cancel()
    finally:
        read_engine.dispose()
        write_engine.dispose()


@contextmanager
def _one_line_open_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """A storage fault while opening or migrating comes out as the one-line error of
    ``integrity.open_failure``; anything else as itself."""
    try:
        yield
    except Exception as exc:
        failure = open_failure(path, exc)
        if failure is None:
            raise
        raise failure from exc


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
            failing = False
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
                    if not failing:  # once per episode: a full disk fails every attempt
                        log.warning(
                            "WAL checkpoint failed (the writer's backstop remains): %s", exc
                        )
                    failing = True
                else:
                    failing = False
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
