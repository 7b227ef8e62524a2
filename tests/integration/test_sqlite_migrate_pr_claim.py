"""Migration 0005 (PR claims, auto-merge rows, webhook deliveries) over a database that
already holds PRs and outbox rows."""

from __future__ import annotations

import shutil
from pathlib import Path

from adapters.sqlite.migrate import default_directory, discover, migrate
from adapters.sqlite.store import open_sqlite_store
from adapters.sqlite.writer import make_engine
from orchestrator.domain.records import CommitUnit
from tests.contract.support import PR1, T0, at, outbox_item

CLAIMS = next(m.name for m in discover() if m.name.endswith("_pr_claim.sql"))
STAMP = "2026-01-01 12:00:00.000000+00:00"
OUTBOX_ROW = (
    "INSERT INTO outbox (dedup_key, session_id, project_id, action, event_type, priority,"
    " message, created_at) VALUES (?, 'mer-1', 'mer', 'notify', 'reaction.agent-idle', 'info',"
    " 'm', ?)"
)


def database_before_pr_claims(tmp_path: Path) -> Path:
    """A database migrated up to the one before ``*_pr_claim.sql``: two sessions, mer-1
    owning PR1, outbox rows 1 (delivered) and 2, and row 3 deleted (the AUTOINCREMENT
    counter stays at 3)."""
    shipped = discover()
    before = shipped[: [m.name for m in shipped].index(CLAIMS)]
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for migration in before:
        shutil.copy(Path(str(default_directory() / migration.name)), migrations)
    db = tmp_path / "db.sqlite"
    engine = make_engine(db)
    assert migrate(engine, migrations) == [m.version for m in before]
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run(
            "INSERT INTO projects (id, path, registered_at) VALUES ('mer', '/repos/mer', ?)",
            (STAMP,),
        )
        for n in (1, 2):
            run(
                "INSERT INTO sessions (id, project_id, num, session_state, created_at,"
                " updated_at) VALUES (?, 'mer', ?, 'working', ?, ?)",
                (f"mer-{n}", n, STAMP, STAMP),
            )
        run("INSERT INTO pr (url, session_id, updated_at) VALUES (?, 'mer-1', ?)", (PR1, STAMP))
        for n in (1, 2, 3):
            run(OUTBOX_ROW, (f"k{n}", STAMP))
        run("DELETE FROM outbox WHERE id = 3")
        run("UPDATE outbox SET delivered_at = ? WHERE id = 1", (STAMP,))
    engine.dispose()
    return db


async def test_an_older_database_keeps_its_prs_and_outbox_ids(tmp_path: Path) -> None:
    db = database_before_pr_claims(tmp_path)
    async with open_sqlite_store(db) as store:  # migrates to the latest
        assert [(e.id, e.item.dedup_key) for e in await store.list_outbox()] == [
            (1, "k1"),
            (2, "k2"),
        ]
        assert [e.id for e in await store.pending_outbox(now=at(1), limit=10)] == [2]
        facts = await store.pr_facts_for_session("mer-1")
        assert (facts.url, facts.head_sha) == (PR1, "")
        assert await store.claim_pr("mer-2", PR1, number=1, now=T0) == "mer-1"
        record = await store.get_session("mer-2")
        assert record is not None
        await store.commit(
            CommitUnit(session_id=record.id, at=T0, outbox=(outbox_item(record, "k4"),))
        )
        assert [e.id for e in await store.list_outbox()] == [1, 2, 4]  # 3 is never reused


async def test_webhook_deliveries_outlive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    async with open_sqlite_store(db) as store:
        assert await store.record_webhook_delivery("d-1", at=T0) is True
    async with open_sqlite_store(db) as store:
        assert await store.record_webhook_delivery("d-1", at=T0) is False
