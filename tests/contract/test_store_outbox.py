"""The transactional outbox and the notifications it leaves, the same from every store."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio
import trio.testing

from adapters.memory import ManualClock, RecordingMessenger
from orchestrator.domain.errors import StoreError, TransientError
from orchestrator.domain.model import (
    NotificationEvent,
    Priority,
    ReactionAction,
    ReactionKey,
    SessionRecord,
    SessionState,
)
from orchestrator.domain.records import CommitUnit, Notification, OutboxEntry, OutboxItem
from orchestrator.outbox import DeliveryPolicy, OutboxDispatcher
from tests.contract.support import (
    ContractStore,
    at,
    changes,
    moved,
    outbox_item,
    session,
    unit_for,
)


async def test_outbox_rows_commit_with_their_cause(store: ContractStore) -> None:
    record = await session(store)
    working, changed = moved(record, at(1), state=SessionState.WORKING)
    item = outbox_item(record, "mer-1:ci:abc")
    await store.commit(unit_for(working, changed, outbox=(item,)))
    assert await store.pending_outbox(now=at(1), limit=10) == [
        OutboxEntry(id=1, item=item, created_at=at(1))
    ]
    assert await store.get_outbox_entry(1) == OutboxEntry(id=1, item=item, created_at=at(1))
    assert await store.get_outbox_entry(2) is None


async def test_a_repeated_dedup_key_is_ignored(store: ContractStore) -> None:
    record = await session(store)
    first = outbox_item(record, "k", message="first")
    await store.commit(CommitUnit(session_id=record.id, at=at(1), outbox=(first,)))
    working, changed = moved(record, at(2), state=SessionState.WORKING)
    again = outbox_item(record, "k", message="second")
    await store.commit(unit_for(working, changed, outbox=(again, outbox_item(record, "k2"))))
    assert [(e.id, e.item.dedup_key, e.item.message) for e in await store.list_outbox()] == [
        (1, "k", "first"),
        (2, "k2", "CI failed"),  # the skipped row took no id
    ]
    stored = await store.get_session(record.id)
    assert stored is not None
    assert stored.lifecycle.state is SessionState.WORKING  # the rest of the unit committed


async def test_an_outbox_row_with_a_bad_priority_fails_its_unit(store: ContractStore) -> None:
    record = await session(store)
    bad = outbox_item(record, "k", priority="panic")  # type: ignore[arg-type]
    working, changed = moved(record, at(1), state=SessionState.WORKING)
    with pytest.raises(StoreError):
        await store.commit(unit_for(working, changed, outbox=(bad,)))
    assert await store.list_outbox() == []
    assert await store.get_session(record.id) == record


async def test_pending_outbox_is_due_undelivered_unfailed_oldest_first(
    store: ContractStore,
) -> None:
    record = await session(store)
    items = tuple(outbox_item(record, f"k{n}") for n in range(1, 6))
    await store.commit(CommitUnit(session_id=record.id, at=at(1), outbox=items))
    assert [e.id for e in await store.pending_outbox(now=at(1), limit=10)] == [1, 2, 3, 4, 5]
    assert [e.id for e in await store.pending_outbox(now=at(1), limit=2)] == [1, 2]

    other = await session(store)
    await store.commit(
        CommitUnit(session_id=other.id, at=at(1), outbox=(outbox_item(other, "o1"),))
    )

    await store.record_attempt(1, error="timeout", next_attempt_at=at(30))
    await store.mark_delivered(2, at=at(2), notification=None)
    await store.mark_failed(3, at=at(3), error="gone")
    # Row 1 waits for its retry, and its session's later rows wait behind it (a session's
    # reactions go in order, even after a restart); the other session is not held up.
    assert [e.id for e in await store.pending_outbox(now=at(29), limit=10)] == [6]
    assert [e.id for e in await store.pending_outbox(now=at(30), limit=10)] == [1, 4, 5, 6]
    assert [e.id for e in await store.pending_outbox(now=at(30), limit=2)] == [1, 4]

    retried = await store.get_outbox_entry(1)
    assert retried is not None
    assert (retried.attempts, retried.last_error, retried.next_attempt_at) == (
        1,
        "timeout",
        at(30),
    )
    await store.record_attempt(1, error="timeout again", next_attempt_at=None)
    retried = await store.get_outbox_entry(1)
    assert retried is not None
    assert (retried.attempts, retried.last_error, retried.next_attempt_at) == (
        2,
        "timeout again",
        None,
    )
    delivered = await store.get_outbox_entry(2)
    assert delivered is not None
    assert (delivered.delivered_at, delivered.attempts) == (at(2), 1)
    failed = await store.get_outbox_entry(3)
    assert failed is not None
    assert (failed.failed_at, failed.last_error) == (at(3), "gone")


async def test_unknown_outbox_ids_are_no_ops(store: ContractStore) -> None:
    record = await session(store)
    event = NotificationEvent(
        type="reaction.agent-stuck",
        priority=Priority.URGENT,
        session_id=record.id,
        project_id=record.project_id,
        message="stuck",
    )
    await store.record_attempt(99, error="x", next_attempt_at=None)
    await store.mark_delivered(99, at=at(1), notification=event)
    await store.mark_failed(99, at=at(1), error="x", notification=event)
    assert await store.list_notifications() == []
    assert len(await changes(store)) == 1


async def test_delivery_and_failure_record_notifications(store: ContractStore) -> None:
    mer = await session(store, "mer")
    ao = await session(store, "ao")
    notify = OutboxItem(
        dedup_key="ao-1:stuck",
        session_id=ao.id,
        project_id=ao.project_id,
        action=ReactionAction.NOTIFY,
        reaction=None,
        event_type="reaction.escalated",
        priority=Priority.URGENT,
        message="escalated",
    )
    await store.commit(CommitUnit(session_id=mer.id, at=at(1), outbox=(outbox_item(mer, "a"),)))
    await store.commit(CommitUnit(session_id=ao.id, at=at(1), outbox=(notify,)))
    await store.mark_delivered(2, at=at(2), notification=notify.event())
    fallback = NotificationEvent(
        type=ReactionKey.CI_FAILED.event_type,
        priority=Priority.ACTION,
        session_id=mer.id,
        project_id=mer.project_id,
        message="could not reach the agent",
    )
    await store.mark_failed(1, at=at(3), error="agent gone", notification=fallback)

    assert await store.list_notifications() == [
        Notification(
            id=2,
            session_id="mer-1",
            project_id="mer",
            type="reaction.ci-failed",
            priority=Priority.ACTION,
            message="could not reach the agent",
            created_at=at(3),
        ),
        Notification(
            id=1,
            session_id="ao-1",
            project_id="ao",
            type="reaction.escalated",
            priority=Priority.URGENT,
            message="escalated",
            created_at=at(2),
        ),
    ]
    assert [n.id for n in await store.list_notifications(project_id="ao")] == [1]
    assert [n.id for n in await store.list_notifications(limit=1)] == [2]
    assert await store.pending_outbox(now=at(10), limit=10) == []


# --- delivery order per session, through the dispatcher ------------------------------------


class FlakyNotifier:
    """Records what it delivered; fails each event type as often as ``failures`` says,
    and waits at ``gate`` (when set) before answering."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.failures: dict[str, int] = {}
        self.gate: trio.Event | None = None
        self.calls: list[str] = []

    async def notify(self, event: NotificationEvent) -> None:
        self.calls.append(event.type)
        if self.gate is not None:
            await self.gate.wait()
        if self.failures.get(event.type, 0) > 0:
            self.failures[event.type] -= 1
            raise TransientError(f"{event.type} refused")
        self.delivered.append(event.type)


def page(record: SessionRecord, key: str) -> OutboxItem:
    return OutboxItem(
        dedup_key=key,
        session_id=record.id,
        project_id=record.project_id,
        action=ReactionAction.NOTIFY,
        reaction=None,
        event_type=key,
        priority=Priority.URGENT,
        message=key,
    )


def dispatcher(
    store: ContractStore, notifier: FlakyNotifier, clock: ManualClock
) -> OutboxDispatcher:
    return OutboxDispatcher(
        store,
        messenger=RecordingMessenger(),
        notifier=notifier,
        clock=clock,
        policy=DeliveryPolicy(attempts=2, initial_backoff=0, max_backoff=0),
    )


async def test_a_later_row_waits_while_the_sessions_earlier_row_is_requeued(
    store: ContractStore,
) -> None:
    a = await session(store)
    b = await session(store)
    await store.commit(CommitUnit(session_id=a.id, at=at(0), outbox=(page(a, "a1"), page(a, "a2"))))
    await store.commit(CommitUnit(session_id=b.id, at=at(0), outbox=(page(b, "b1"),)))
    clock = ManualClock(at(0))
    notifier = FlakyNotifier()
    notifier.failures = {"a1": 2}
    outbox = dispatcher(store, notifier, clock)

    await outbox.drain()  # a1 fails both attempts and is requeued for later
    assert notifier.delivered == ["b1"]  # other sessions are not held up
    assert "a2" not in notifier.calls
    clock.advance(timedelta(seconds=29))
    await outbox.drain()
    assert notifier.delivered == ["b1"]  # a2 still waits behind a1

    clock.advance(timedelta(seconds=1))  # a1's retry is due
    await outbox.drain()
    assert notifier.delivered == ["b1", "a1", "a2"]
    assert await store.pending_outbox(now=clock.now(), limit=10) == []


async def test_a_row_committed_during_a_retry_waits_for_it(store: ContractStore) -> None:
    a = await session(store)
    await store.commit(CommitUnit(session_id=a.id, at=at(0), outbox=(page(a, "a1"),)))
    notifier = FlakyNotifier()
    notifier.failures = {"a1": 1}  # the first attempt fails, the retry succeeds
    notifier.gate = trio.Event()
    outbox = dispatcher(store, notifier, ManualClock(at(0)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.drain)
        await trio.testing.wait_all_tasks_blocked()
        assert notifier.calls == ["a1"]  # first attempt, in flight
        await store.commit(CommitUnit(session_id=a.id, at=at(0), outbox=(page(a, "a2"),)))
        outbox.wake()
        await trio.testing.wait_all_tasks_blocked()
        assert notifier.calls == ["a1"]
        notifier.gate.set()
    assert notifier.delivered == ["a1", "a2"]
    assert notifier.calls == ["a1", "a1", "a2"]


async def test_after_a_restart_a_later_row_still_waits_for_the_requeued_one(
    store: ContractStore,
) -> None:
    a = await session(store)
    await store.commit(CommitUnit(session_id=a.id, at=at(0), outbox=(page(a, "a1"), page(a, "a2"))))
    await store.record_attempt(1, error="refused", next_attempt_at=at(30))  # before the crash
    notifier = FlakyNotifier()
    await dispatcher(store, notifier, ManualClock(at(1))).drain()
    assert notifier.delivered == []
    await dispatcher(store, notifier, ManualClock(at(30))).drain()  # the retry is due
    assert notifier.delivered == ["a1", "a2"]
