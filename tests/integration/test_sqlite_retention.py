"""SQLite-only behaviour of retention and listing: the janitor's batches are separate
writer transactions that live writes interleave with, its lookups are served by indexes,
and a page of sessions costs two queries whatever its size."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trio

from adapters.sqlite import retention
from adapters.sqlite.pages import _facts_query, _page_query
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from orchestrator.domain.model import TERMINAL_STATES, SessionState
from orchestrator.domain.records import CommitUnit, Project
from orchestrator.domain.retention import RetentionPolicy
from tests.contract.support import T0, at, moved, observation, outbox_item, unit_for


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite_store(tmp_path / "store.db") as store:
        yield store


async def settled_rows(store: SqliteStore, count: int) -> None:
    await store.upsert_project(Project(id="mer", path="/repos/mer", registered_at=T0))
    record = await store.create_session("mer", now=T0)
    items = tuple(outbox_item(record, f"k{n}") for n in range(count))
    await store.commit(CommitUnit(session_id=record.id, at=at(1), outbox=items))
    for entry_id in range(1, count + 1):
        await store.mark_delivered(entry_id, at=at(2), notification=None)


SETTLED_AFTER_1S = RetentionPolicy(outbox_settled_max_age=timedelta(seconds=1), batch_size=10)


async def test_each_batch_is_its_own_writer_transaction(store: SqliteStore) -> None:
    await settled_rows(store, 35)
    batches = store.writer.batches
    report = await store.apply_retention(SETTLED_AFTER_1S, now=at(10))
    assert report.outbox == 35
    # 10 + 10 + 10 + 5 outbox rows; the change log and read notifications one empty
    # batch each; the notification cap, check runs and terminated sessions found nothing
    # to do on the reader, so no writer op at all.
    assert store.writer.batches - batches == 4 + 2
    assert await store.list_outbox() == []


async def test_live_writes_commit_between_the_janitors_batches(store: SqliteStore) -> None:
    await settled_rows(store, 200)
    record = await store.create_session("mer", now=T0)
    left_when_committed: list[int] = []

    async def live_write() -> None:
        await trio.lowlevel.checkpoint()  # let the trim start first
        working, changed = moved(record, at(11), state=SessionState.WORKING)
        await store.commit(unit_for(working, changed))
        left_when_committed.append(len(await store.list_outbox()))

    async def trim() -> None:
        await store.apply_retention(SETTLED_AFTER_1S, now=at(10))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trim)
        nursery.start_soon(live_write)
    # 20 batches of 10 to go: the write waited for one or two, not for the whole trim.
    (left,) = left_when_committed
    assert left >= 150
    assert await store.list_outbox() == []


@contextmanager
def counting_selects(store: SqliteStore) -> Iterator[list[str]]:
    engine = store._reader.engine
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


async def test_a_page_costs_two_queries_whatever_its_size(store: SqliteStore) -> None:
    await store.upsert_project(Project(id="mer", path="/repos/mer", registered_at=T0))
    for n in range(1, 121):
        record = await store.create_session("mer", now=T0)
        url = f"https://github.com/acme/mer/pull/{n}"
        await store.write_pr_observation(record.id, observation(url, number=n), at(1))
    for limit in (1, 50, 200):
        with counting_selects(store) as selects:
            page = await store.list_session_page(limit=limit)
        assert len(page.items) == min(limit, 120)
        assert len(selects) == 2, selects


def plan(store: SqliteStore, sql: str, params: tuple[Any, ...]) -> str:
    rows = store._reader.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
    store._reader.rollback()
    return " | ".join(str(row[-1]) for row in rows)


async def test_the_janitors_lookups_and_the_page_use_indexes(store: SqliteStore) -> None:
    stamp = "2026-01-01 00:00:00.000000+00:00"
    outbox = plan(store, retention.DELETE_SETTLED_OUTBOX, (stamp, 10))
    assert "USING INDEX idx_outbox_settled" in outbox
    notes = plan(store, retention.DELETE_READ_NOTIFICATIONS, (stamp, stamp, 10))
    assert "idx_notifications_read_at" in notes
    assert "idx_notifications_resolved_at" in notes
    runs = plan(store, retention.DELETE_OLD_RUNS, ("u", "ci", 10, 3))
    assert "idx_pr_checks_lookup" in runs
    compiled = _page_query(50, ("mer", 7), None).compile(
        dialect=store._reader.dialect, compile_kwargs={"literal_binds": True}
    )
    page = plan(store, str(compiled), ())
    assert re.search(
        r"SEARCH sessions USING INDEX sqlite_autoindex_sessions_\d \(\(project_id,num\)>", page
    ), page
    facts = _facts_query(["mer-1", "mer-2"]).compile(
        dialect=store._reader.dialect, compile_kwargs={"literal_binds": True}
    )
    assert "USING INDEX idx_pr_session (session_id=?)" in plan(store, str(facts), ())


def test_the_janitors_terminal_states_are_the_domains() -> None:
    for sql in (retention.LONG_TERMINATED_WITH_HISTORY, retention.IS_LONG_TERMINATED):
        named = set(re.findall(r"s\.session_state = '([a-z_]+)'", sql))
        assert named == {str(state) for state in TERMINAL_STATES}
