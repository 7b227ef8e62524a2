"""What ``/metrics`` reads of the database at scrape time: outbox backlog and the age of
its oldest undelivered row, change-log rows and oldest retained seq, file sizes.

On a read-only connection of its own in a worker thread, so a scrape never waits on (or
delays) the writer; the queries use the partial outbox index and the seq primary key.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import trio

from adapters.sqlite.tables import decode_ts


@dataclass(frozen=True, slots=True)
class DatabaseGauges:
    outbox_backlog: int
    outbox_oldest_age_seconds: float
    change_log_rows: int
    change_log_oldest_seq: int
    database_bytes: int
    wal_bytes: int


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def read_gauges(database: Path, now: datetime | None = None) -> DatabaseGauges:
    """The gauges of the database at ``database`` (blocking)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None)
    try:
        backlog, oldest = connection.execute(
            "SELECT count(*), min(created_at) FROM outbox "
            "WHERE delivered_at IS NULL AND failed_at IS NULL"
        ).fetchone()
        rows, first_seq = connection.execute("SELECT count(*), min(seq) FROM change_log").fetchone()
    finally:
        connection.close()
    moment = now or datetime.now(UTC)
    age = (moment - decode_ts(oldest)).total_seconds() if oldest else 0.0
    return DatabaseGauges(
        outbox_backlog=int(backlog),
        outbox_oldest_age_seconds=max(age, 0.0),
        change_log_rows=int(rows),
        change_log_oldest_seq=int(first_seq or 0),
        database_bytes=_size(database),
        wal_bytes=_size(database.with_name(database.name + "-wal")),
    )


async def database_gauges(database: Path) -> DatabaseGauges:
    return await trio.to_thread.run_sync(read_gauges, database)


__all__ = ["DatabaseGauges", "database_gauges", "read_gauges"]
