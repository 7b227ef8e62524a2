"""SQLite-only behaviour of the store: group commit, isolation of a failing unit, the write
lock, the worker-thread mode, flushing on close, the commit hook and the change-log janitor."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import msgspec
import pytest
import sqlalchemy.exc
import trio

from adapters.sqlite.statements import SESSION_COLUMNS
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from adapters.sqlite.writes import UnitWrite, session_row
from orchestrator.domain.errors import StoreError
from orchestrator.domain.model import SessionRecord, SessionState
from orchestrator.domain.records import CommitUnit, Project
from orchestrator.ports import Store
from tests.contract.support import T0, at, moved, outbox_item, unit_for


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite_store(tmp_path / "store.db") as store:
        yield store


async def sessions(store: SqliteStore, n: int) -> list[SessionRecord]:
    await store.upsert_project(Project(id="mer", path="/repos/mer", registered_at=T0))
    return [await store.create_session("mer", now=T0) for _ in range(n)]


def test_sqlite_store_implements_the_store_port() -> None:
    def check(store: SqliteStore) -> Store:
        return store  # mypy verifies the structural match

    assert check.__name__ == "check"


def test_a_new_session_row_binds_every_column_by_name() -> None:
    record = SessionRecord(id="mer-1", project_id="mer", num=1, created_at=T0, updated_at=T0)
    assert set(session_row(record)) == set(SESSION_COLUMNS)


async def test_concurrent_units_share_one_transaction_merged(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = await sessions(store, 50)
    batches = store.writer.batches
    merged: list[list[str]] = []
    apply_merged = UnitWrite.apply_merged

    def spy(cls: type[UnitWrite], writes: Sequence[UnitWrite], cur: sqlite3.Cursor) -> None:
        merged.append([w.session_id for w in writes])
        apply_merged(writes, cur)

    monkeypatch.setattr(UnitWrite, "apply_merged", classmethod(spy))

    async def work(record: SessionRecord) -> None:
        new, changed = moved(record, at(1), state=SessionState.WORKING)
        await store.commit(unit_for(new, changed))

    async with trio.open_nursery() as nursery:
        for record in records:
            nursery.start_soon(work, record)
    assert store.writer.batches == batches + 1
    # one executemany per statement for the whole batch, not one op per unit
    assert [sorted(ids) for ids in merged] == [sorted(r.id for r in records)]
    assert {s.lifecycle.state for s in await store.list_sessions()} == {SessionState.WORKING}


async def test_a_failing_unit_fails_alone_inside_a_group_commit(store: SqliteStore) -> None:
    records = await sessions(store, 10)
    batches = store.writer.batches
    bad_record = records[4]
    outcomes: dict[str, str] = {}

    async def work(record: SessionRecord) -> None:
        new, changed = moved(record, at(1), state=SessionState.WORKING)
        if record is bad_record:
            lc = msgspec.structs.replace(new.lifecycle, state="exploded")
            new = msgspec.structs.replace(new, lifecycle=lc)
        unit = unit_for(new, changed, outbox=(outbox_item(record, f"k-{record.id}"),))
        try:
            await store.commit(unit)
        except StoreError as exc:
            outcomes[record.id] = str(exc)
        else:
            outcomes[record.id] = "ok"

    async with trio.open_nursery() as nursery:
        for record in records:
            nursery.start_soon(work, record)

    assert store.writer.batches == batches + 1  # all ten in one transaction
    assert "CHECK constraint failed" in outcomes.pop(bad_record.id)
    assert set(outcomes.values()) == {"ok"}
    stored = {s.id: s.lifecycle.state for s in await store.list_sessions()}
    assert stored.pop(bad_record.id) is SessionState.NOT_STARTED
    assert set(stored.values()) == {SessionState.WORKING}
    keys = {e.item.dedup_key for e in await store.list_outbox()}
    assert keys == {f"k-{r.id}" for r in records if r is not bad_record}
    updates = [e for e in await store.changes_after(0, limit=100) if e.type == "session_updated"]
    assert len(updates) == 9


async def test_a_group_commit_skips_repeated_dedup_keys_without_using_ids(
    store: SqliteStore,
) -> None:
    """The merged path inserts a batch's outbox rows optimistically and, on a repeated key,
    has the writer rerun the units one by one: the result must be what applying the units
    one by one gives (first key wins, a skipped row takes no id)."""
    records = await sessions(store, 6)
    await store.commit(
        CommitUnit(session_id=records[0].id, at=at(1), outbox=(outbox_item(records[0], "stored"),))
    )
    batches = store.writer.batches
    order: list[int] = []

    async def work(index: int, record: SessionRecord) -> None:
        items = (
            outbox_item(record, "stored"),
            outbox_item(record, "shared", message=f"from {index}"),
            outbox_item(record, f"own-{index}"),
            outbox_item(record, f"own-{index}"),
        )
        new, changed = moved(record, at(2), state=SessionState.WORKING)
        order.append(index)  # the unit joins the batch before commit first yields
        await store.commit(unit_for(new, changed, outbox=items))

    async with trio.open_nursery() as nursery:
        for index, record in enumerate(records[1:], start=1):
            nursery.start_soon(work, index, record)

    assert store.writer.batches == batches + 1
    first, *rest = order
    rows = [(e.id, e.item.dedup_key, e.item.message) for e in await store.list_outbox()]
    assert rows == [
        (1, "stored", "CI failed"),
        (2, "shared", f"from {first}"),
        (3, f"own-{first}", "CI failed"),
        *[(4 + n, f"own-{index}", "CI failed") for n, index in enumerate(rest)],
    ]


async def test_database_is_locked_never_reaches_a_caller(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    # busy_timeout 0: the writer's own retry (not SQLite's busy handler) waits the lock out.
    async with open_sqlite_store(db, busy_timeout_ms=0) as store:
        (record,) = await sessions(store, 1)
        locked, release = threading.Event(), threading.Event()

        def hold_the_write_lock() -> None:
            other = sqlite3.connect(db, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            release.wait(5)
            other.execute("ROLLBACK")
            other.close()

        thread = threading.Thread(target=hold_the_write_lock)
        thread.start()
        try:
            await trio.to_thread.run_sync(locked.wait)
            new, changed = moved(record, at(1), state=SessionState.WORKING)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.commit, unit_for(new, changed))
                await trio.sleep(0.2)
                assert (await store.get_session(record.id)) == record  # still waiting
                release.set()
        finally:
            release.set()
            await trio.to_thread.run_sync(thread.join)
        stored = await store.get_session(record.id)
        assert stored is not None
        assert stored.lifecycle.state is SessionState.WORKING


async def test_batches_may_run_in_a_worker_thread(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "store.db", inline=False, max_batch=4) as store:
        records = await sessions(store, 10)
        async with trio.open_nursery() as nursery:
            for record in records:
                new, changed = moved(record, at(1), state=SessionState.IDLE)
                nursery.start_soon(store.commit, unit_for(new, changed))
        assert {s.lifecycle.state for s in await store.list_sessions()} == {SessionState.IDLE}
        bad = msgspec.structs.replace(records[0], id="mer-99")
        with pytest.raises(StoreError, match="mer-99"):
            await store.commit(unit_for(bad, frozenset({"state"})))


async def test_closing_flushes_queued_writes_and_reopening_finds_them(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    committed: list[str] = []
    async with open_sqlite_store(db) as store:
        records = await sessions(store, 20)

        async def work(record: SessionRecord) -> None:
            new, changed = moved(record, at(1), state=SessionState.WORKING)
            await store.commit(unit_for(new, changed))
            committed.append(record.id)

        async with trio.open_nursery() as nursery:
            for record in records:
                nursery.start_soon(work, record)
    assert len(committed) == 20
    async with open_sqlite_store(db) as reopened:
        states = {s.lifecycle.state for s in await reopened.list_sessions()}
        assert states == {SessionState.WORKING}
    with pytest.raises(StoreError, match="closed"):
        await store.commit(
            CommitUnit(session_id="mer-1", at=at(2), outbox=(outbox_item(records[0], "x"),))
        )


async def test_on_commit_runs_after_each_committed_batch(store: SqliteStore) -> None:
    seen: list[int] = []

    def hook() -> None:
        seen.append(store.writer.batches)

    store.on_commit = hook
    (record,) = await sessions(store, 1)
    assert seen  # the project and session writes
    before = len(seen)
    new, changed = moved(record, at(1), state=SessionState.WORKING)
    await store.commit(unit_for(new, changed))
    assert len(seen) == before + 1
    assert store.on_commit is hook


async def test_a_raising_commit_hook_does_not_break_the_writer(store: SqliteStore) -> None:
    def boom() -> None:
        raise RuntimeError("subscriber bug")

    store.on_commit = boom
    (record,) = await sessions(store, 1)
    new, changed = moved(record, at(1), state=SessionState.WORKING)
    await store.commit(unit_for(new, changed))
    stored = await store.get_session(record.id)
    assert stored is not None
    assert stored.lifecycle.state is SessionState.WORKING


async def test_the_reader_connection_is_read_only(store: SqliteStore) -> None:
    await sessions(store, 1)
    reader = store._reader
    with pytest.raises(sqlalchemy.exc.OperationalError, match="readonly"):
        reader.exec_driver_sql("DELETE FROM sessions")
    reader.rollback()


async def test_naive_datetimes_are_refused(store: SqliteStore) -> None:
    (record,) = await sessions(store, 1)
    naive = msgspec.structs.replace(record, updated_at=at(1).replace(tzinfo=None))
    with pytest.raises(StoreError, match="naive"):
        await store.commit(unit_for(naive, frozenset()))


# --- the change-log janitor -------------------------------------------------------------------


async def churn(store: SqliteStore, record: SessionRecord, n: int, start: float) -> SessionRecord:
    """``n`` state flips, one second apart from ``start``: one change-log row each."""
    current = record
    for i in range(n):
        state = (
            SessionState.IDLE
            if current.lifecycle.state is SessionState.WORKING
            else SessionState.WORKING
        )
        current, changed = moved(current, at(start + i), state=state)
        await store.commit(unit_for(current, changed))
    return current


async def test_trim_by_row_cap_deletes_the_oldest_in_batches(store: SqliteStore) -> None:
    (record,) = await sessions(store, 1)
    record = await churn(store, record, 99, start=1)  # 100 rows with session_created
    batches = store.writer.batches
    deleted = await store.trim_change_log(older_than=T0, keep_max_rows=30, batch_size=25)
    assert deleted == 70
    assert store.writer.batches - batches == 3  # 25 + 25 + 20, each its own write
    remaining = await store.changes_after(0, limit=1000)
    assert [e.seq for e in remaining] == list(range(71, 101))
    assert await store.max_change_seq() == 100
    await churn(store, record, 1, start=500)
    assert [e.seq for e in await store.changes_after(100, limit=10)] == [101]


async def test_trim_by_age_deletes_only_an_old_prefix(store: SqliteStore) -> None:
    (record,) = await sessions(store, 1)  # seq 1 at T0
    await churn(store, record, 9, start=100)  # seq 2..10 at T0+100s ..
    deleted = await store.trim_change_log(older_than=at(105), keep_max_rows=1000)
    assert deleted == 6  # seq 1..6 (T0, +100..+104)
    assert [e.seq for e in await store.changes_after(0, limit=100)] == list(range(7, 11))
    # A row stamped in the past behind a newer row is never skipped over.
    assert await store.trim_change_log(older_than=at(105), keep_max_rows=1000) == 0


async def test_trim_everything_keeps_the_sequence_monotonic(store: SqliteStore) -> None:
    (record,) = await sessions(store, 1)
    record = await churn(store, record, 4, start=1)
    assert await store.trim_change_log(older_than=at(1000), keep_max_rows=0) == 5
    assert await store.changes_after(0, limit=10) == []
    assert await store.max_change_seq() == 5
    await churn(store, record, 1, start=2000)
    assert [e.seq for e in await store.changes_after(0, limit=10)] == [6]


async def test_wal_and_pragmas_are_in_force(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "store.db", synchronous="FULL") as store:
        await sessions(store, 1)
        reader = store._reader
        assert reader.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert reader.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert reader.exec_driver_sql("PRAGMA query_only").scalar_one() == 1
        reader.rollback()
        writer = store.writer._conn
        assert writer.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert writer.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert writer.execute("PRAGMA busy_timeout").fetchone() == (5000,)


async def test_a_cancelled_caller_does_not_withdraw_its_unit(store: SqliteStore) -> None:
    first, second = await sessions(store, 2)
    working, changed = moved(first, at(1), state=SessionState.WORKING)
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.commit(unit_for(working, changed))
    assert scope.cancelled_caught
    idle, changed = moved(second, at(1), state=SessionState.IDLE)
    await store.commit(unit_for(idle, changed))  # the writer carries on
    await store.flush()
    states = [s.lifecycle.state for s in await store.list_sessions()]
    assert states == [SessionState.WORKING, SessionState.IDLE]
