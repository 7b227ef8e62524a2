"""The database gauges ``/metrics`` reads at scrape time move with what the store holds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from adapters.sqlite.gauges import database_gauges, read_gauges
from adapters.sqlite.store import open_sqlite_store
from orchestrator.domain.records import CommitUnit, Project
from tests.contract.support import T0, at, outbox_item


async def test_outbox_backlog_age_and_change_log_gauges(tmp_path: Path) -> None:
    database = tmp_path / "orchestrator.db"
    async with open_sqlite_store(database) as store:
        empty = await database_gauges(database)
        assert (empty.outbox_backlog, empty.change_log_rows, empty.change_log_oldest_seq) == (
            0,
            0,
            0,
        )
        await store.upsert_project(Project(id="mer", path="/repos/mer", registered_at=T0))
        record = await store.create_session("mer", now=T0)
        await store.commit(
            CommitUnit(session_id=record.id, at=at(1), outbox=(outbox_item(record, "k"),))
        )
        queued = read_gauges(database, now=at(1) + timedelta(seconds=90))
        assert queued.outbox_backlog == 1
        assert 80 <= queued.outbox_oldest_age_seconds <= 100
        assert queued.change_log_rows >= 1
        assert queued.change_log_oldest_seq >= 1
        assert queued.database_bytes > 0
        [entry] = await store.list_outbox()
        await store.mark_delivered(entry.id, at=at(2), notification=None)
        assert (await database_gauges(database)).outbox_backlog == 0
