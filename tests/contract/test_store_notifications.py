"""What the human did with each notification, as every store keeps it: the first read and
resolution times in the listing, the unread filter, and marking every unread one read."""

from __future__ import annotations

from orchestrator.domain.model import NotificationEvent, Priority, ReactionKey
from orchestrator.domain.records import CommitUnit
from tests.contract.support import ContractStore, at, changes, outbox_item, session


async def delivered(store: ContractStore, project_id: str, count: int) -> None:
    """``count`` notifications of a new session of ``project_id``, numbered on from the
    store's last."""
    record = await session(store, project_id)
    keys = [f"{record.id}/n{n}" for n in range(count)]
    items = tuple(outbox_item(record, key) for key in keys)
    await store.commit(CommitUnit(session_id=record.id, at=at(0), outbox=items))
    entries = [e for e in await store.list_outbox() if e.item.dedup_key in keys]
    for entry in entries:
        event = NotificationEvent(
            type=ReactionKey.AGENT_STUCK.event_type,
            priority=Priority.URGENT,
            session_id=record.id,
            project_id=record.project_id,
            message=entry.item.dedup_key,
        )
        await store.mark_delivered(entry.id, at=at(1), notification=event)


async def test_the_listing_says_when_each_was_first_read_and_resolved(
    store: ContractStore,
) -> None:
    await delivered(store, "mer", 3)
    await store.mark_notification_read(1, at(10))
    await store.mark_notification_read(1, at(20))  # the first read counts
    await store.resolve_notification(2, at(11))
    await store.resolve_notification(2, at(30))
    marks = [
        (n.id, n.read, n.read_at, n.resolved, n.resolved_at)
        for n in await store.list_notifications()
    ]
    assert marks == [
        (3, False, None, False, None),
        (2, False, None, True, at(11)),
        (1, True, at(10), False, None),
    ]


async def test_unread_lists_only_what_was_not_read_yet(store: ContractStore) -> None:
    await delivered(store, "mer", 3)
    await delivered(store, "ao", 1)
    await store.mark_notification_read(2, at(10))
    await store.resolve_notification(3, at(10))  # resolved, but not read
    assert [n.id for n in await store.list_notifications(unread=True)] == [4, 3, 1]
    assert [n.id for n in await store.list_notifications(unread=True, project_id="mer")] == [3, 1]
    assert [n.id for n in await store.list_notifications(unread=True, limit=1)] == [4]


async def test_marking_every_unread_one_read_keeps_earlier_reads(store: ContractStore) -> None:
    await delivered(store, "mer", 3)
    await delivered(store, "ao", 2)
    await store.mark_notification_read(1, at(5))
    before = len(await changes(store))
    assert await store.mark_all_notifications_read(at(10), project_id="mer") == 2
    assert [n.id for n in await store.list_notifications(unread=True)] == [5, 4]
    assert await store.mark_all_notifications_read(at(20)) == 2
    assert await store.mark_all_notifications_read(at(30)) == 0
    read_at = {n.id: n.read_at for n in await store.list_notifications()}
    assert read_at == {1: at(5), 2: at(10), 3: at(10), 4: at(20), 5: at(20)}
    assert len(await changes(store)) == before  # marks are not change-log events
