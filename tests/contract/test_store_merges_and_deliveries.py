"""Auto-merge outbox rows and the GitHub webhook delivery log, the same from every store."""

from __future__ import annotations

import pytest

from orchestrator.domain.errors import StoreError
from orchestrator.domain.model import Priority, ReactionAction, ReactionKey
from orchestrator.domain.records import CommitUnit, OutboxItem
from tests.contract.support import PR1, ContractStore, at, session


async def test_an_auto_merge_row_keeps_the_pr_and_head_commit_it_merges(
    store: ContractStore,
) -> None:
    record = await session(store)
    item = OutboxItem(
        dedup_key=f"merge/{PR1}@abc",
        session_id=record.id,
        project_id=record.project_id,
        action=ReactionAction.AUTO_MERGE,
        reaction=ReactionKey.APPROVED_AND_GREEN,
        event_type=ReactionKey.APPROVED_AND_GREEN.event_type,
        priority=Priority.ACTION,
        message="Merging",
        pr_url=PR1,
        head_sha="abc",
    )
    await store.commit(CommitUnit(session_id=record.id, at=at(1), outbox=(item,)))
    await store.commit(CommitUnit(session_id=record.id, at=at(2), outbox=(item,)))  # once
    [entry] = await store.pending_outbox(now=at(3), limit=10)
    assert entry.item == item
    assert entry.created_at == at(1)


async def test_an_unknown_action_is_refused(store: ContractStore) -> None:
    record = await session(store)
    item = OutboxItem(
        dedup_key="k",
        session_id=record.id,
        project_id=record.project_id,
        action="rebase",  # type: ignore[arg-type]
        reaction=None,
        event_type="x",
        priority=Priority.INFO,
        message="m",
    )
    with pytest.raises(StoreError):
        await store.commit(CommitUnit(session_id=record.id, at=at(1), outbox=(item,)))


async def test_a_delivery_id_is_new_once(store: ContractStore) -> None:
    assert await store.record_webhook_delivery("d-1", at=at(1)) is True
    assert await store.record_webhook_delivery("d-2", at=at(2)) is True
    assert await store.record_webhook_delivery("d-1", at=at(3)) is False


async def test_only_the_newest_delivery_ids_are_kept(store: ContractStore) -> None:
    for n in range(5):
        assert await store.record_webhook_delivery(f"d-{n}", at=at(n), keep=3) is True
    assert [await store.record_webhook_delivery(f"d-{n}", at=at(9), keep=3) for n in (4, 3, 2)] == [
        False,
        False,
        False,
    ]
    assert await store.record_webhook_delivery("d-0", at=at(9), keep=3) is True  # forgotten
