"""The group-commit writer on its own: batching, caps, per-op isolation, error mapping,
storage faults and its health."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio

from adapters.sqlite.writer import GroupWriter
from orchestrator.domain.errors import NotFoundError, StorageUnavailableError, StoreError


@pytest.fixture
def connection(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY NOT NULL, v INTEGER NOT NULL CHECK (v >= 0))")
    return conn


@pytest.fixture(params=[True, False], ids=["inline", "to_thread"])
async def writer(
    request: pytest.FixtureRequest, connection: sqlite3.Connection
) -> AsyncIterator[GroupWriter]:
    writer = GroupWriter(connection, max_batch=3, inline=request.param)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        yield writer
        await writer.aclose()
    connection.close()


def insert(k: str, v: int) -> Callable[[sqlite3.Cursor], str]:
    def op(cur: sqlite3.Cursor) -> str:
        cur.execute("INSERT INTO t VALUES (?, ?)", (k, v))
        return k

    return op


def rows(connection: sqlite3.Connection) -> dict[str, int]:
    return dict(connection.execute("SELECT k, v FROM t").fetchall())


async def gather(
    writer: GroupWriter, ops: list[Callable[[sqlite3.Cursor], object]]
) -> list[object]:
    """Submit every op concurrently (all queued before the writer runs); results or errors."""
    results: list[object] = [None] * len(ops)

    async def one(i: int) -> None:
        try:
            results[i] = await writer.submit(ops[i])
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
            results[i] = exc

    async with trio.open_nursery() as nursery:
        for i in range(len(ops)):
            nursery.start_soon(one, i)
    return results


async def test_ops_are_batched_up_to_the_cap_and_return_their_results(
    writer: GroupWriter, connection: sqlite3.Connection
) -> None:
    batches = writer.batches
    results = await gather(writer, [insert(f"k{i}", i) for i in range(7)])
    assert sorted(str(r) for r in results) == [f"k{i}" for i in range(7)]
    assert writer.batches - batches == 3  # 3 + 3 + 1
    assert rows(connection) == {f"k{i}": i for i in range(7)}


async def test_each_op_fails_alone(writer: GroupWriter, connection: sqlite3.Connection) -> None:
    await writer.submit(insert("old", 0))

    def domain_error(cur: sqlite3.Cursor) -> None:
        cur.execute("INSERT INTO t VALUES ('half', 1)")
        raise NotFoundError("no such thing")

    def bug(cur: sqlite3.Cursor) -> None:
        cur.execute("INSERT INTO t VALUES ('half2', 1)")
        raise KeyError("oops")

    results = await gather(
        writer, [insert("ok", 1), insert("b", -1), domain_error, bug, insert("old", 2)]
    )
    assert results[0] == "ok"
    assert isinstance(results[1], StoreError)
    assert "CHECK constraint failed" in str(results[1])
    assert isinstance(results[2], NotFoundError)  # domain errors pass through unchanged
    assert isinstance(results[3], KeyError)  # so do bugs, to their own caller only
    assert isinstance(results[4], StoreError)
    assert "UNIQUE constraint failed" in str(results[4])
    assert rows(connection) == {"old": 0, "ok": 1}


async def test_an_aborted_transaction_fails_its_whole_batch(
    writer: GroupWriter, connection: sqlite3.Connection
) -> None:
    def abort(cur: sqlite3.Cursor) -> None:
        cur.execute("ROLLBACK")  # as SQLite itself does on some I/O errors
        raise sqlite3.OperationalError("disk I/O error")

    results = await gather(writer, [insert("x", 1), abort, insert("y", 1)])
    assert all(isinstance(r, StoreError) for r in results), results
    assert rows(connection) == {}
    assert await writer.submit(insert("z", 1)) == "z"  # the writer carries on
    assert rows(connection) == {"z": 1}


async def test_flush_and_close(writer: GroupWriter, connection: sqlite3.Connection) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.submit, insert("q", 1))
        await trio.lowlevel.checkpoint()
        await writer.flush()
        assert rows(connection) == {"q": 1}
    await writer.aclose()
    assert writer.closed
    with pytest.raises(StoreError, match="closed"):
        await writer.submit(insert("r", 1))


def test_the_connection_must_not_begin_implicitly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="isolation_level"):
        GroupWriter(sqlite3.connect(tmp_path / "x.db"))


async def test_a_full_disk_fails_the_batch_as_storage_unavailable_and_heals(
    writer: GroupWriter, connection: sqlite3.Connection
) -> None:
    def cap(room: int | None) -> Callable[[sqlite3.Cursor], None]:
        def op(cur: sqlite3.Cursor) -> None:
            (pages,) = cur.execute("PRAGMA page_count").fetchone()
            cur.execute(f"PRAGMA max_page_count = {1073741823 if room is None else pages + room}")

        return op

    def big(k: str) -> Callable[[sqlite3.Cursor], str]:
        def op(cur: sqlite3.Cursor) -> str:
            cur.execute("INSERT INTO blobs VALUES (?, zeroblob(3000))", (k,))
            return k

        return op

    await writer.submit(lambda cur: cur.execute("CREATE TABLE blobs (k TEXT PRIMARY KEY, b BLOB)"))
    await writer.submit(cap(4))
    results = await gather(writer, [big(f"b{i}") for i in range(12)])
    full = [r for r in results if isinstance(r, StorageUnavailableError)]
    assert full, results
    assert all(isinstance(r, StoreError) for r in full)  # still a refused write to callers
    assert writer.health.degraded
    assert "SQLITE_FULL" in writer.health.report().reason
    written = {k for (k,) in connection.execute("SELECT k FROM blobs")}
    assert written == {r for r in results if isinstance(r, str)}  # a failed write left nothing

    await writer.submit(cap(None))
    assert await writer.submit(big("after")) == "after"
    assert not writer.health.degraded
