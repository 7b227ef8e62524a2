"""The dispatcher when the store fails its bookkeeping (a full disk during delivery): it
backs off and records again, never sends a delivered message twice, keeps the other
sessions going, and neither it nor the daemon comes down."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing

from adapters.memory import ManualClock, MemoryStore, RecordingMessenger, RecordingNotifier
from orchestrator.domain.errors import DeliveryError, StorageUnavailableError
from orchestrator.domain.model import Priority, ReactionAction, ReactionKey, SessionRecord
from orchestrator.domain.records import CommitUnit, OutboxEntry, OutboxItem, Project
from orchestrator.outbox import DeliveryPolicy, OutboxDispatcher

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = DeliveryPolicy(attempts=2, initial_backoff=0, max_backoff=0, idle_poll=1.0)


class FaultyStore(MemoryStore):
    """Fails each named store call as often as ``failures`` says (``None``: for ever),
    with the error a full disk gives; ``stuck`` fails ``mark_delivered`` of those rows
    for ever."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: dict[str, int | None] = {}
        self.stuck: set[int] = set()
        self.refused: list[str] = []

    def _fault(self, name: str, entry_id: int | None = None) -> None:
        left = self.failures.get(name, 0)
        if entry_id in self.stuck or left is None or left > 0:
            if left:
                self.failures[name] = left - 1
            self.refused.append(name)
            raise StorageUnavailableError("database or disk is full")

    async def pending_outbox(self, *, now: datetime, limit: int) -> list[OutboxEntry]:
        self._fault("pending_outbox")
        return await super().pending_outbox(now=now, limit=limit)

    async def record_attempt(self, entry_id: int, **kwargs: Any) -> None:
        self._fault("record_attempt")
        await super().record_attempt(entry_id, **kwargs)

    async def mark_delivered(self, entry_id: int, **kwargs: Any) -> None:
        self._fault("mark_delivered", entry_id)
        await super().mark_delivered(entry_id, **kwargs)

    async def mark_failed(self, entry_id: int, **kwargs: Any) -> None:
        self._fault("mark_failed")
        await super().mark_failed(entry_id, **kwargs)


async def session_with(store: MemoryStore, *actions: ReactionAction) -> SessionRecord:
    """A session of project ``mer`` with one outbox row per action, in that order."""
    if await store.get_project("mer") is None:
        await store.upsert_project(Project(id="mer", path="/repos/mer", registered_at=T0))
    record = await store.create_session("mer", now=T0)
    items = tuple(
        OutboxItem(
            dedup_key=f"{record.id}/{n}",
            session_id=record.id,
            project_id=record.project_id,
            action=action,
            reaction=ReactionKey.AGENT_STUCK,
            event_type=ReactionKey.AGENT_STUCK.event_type,
            priority=Priority.URGENT,
            message=f"{record.id} #{n}",
        )
        for n, action in enumerate(actions, start=1)
    )
    await store.commit(CommitUnit(session_id=record.id, at=T0, outbox=items))
    return record


class Delivery:
    def __init__(self, store: FaultyStore) -> None:
        self.store = store
        self.messenger = RecordingMessenger()
        self.notifier = RecordingNotifier()
        self.clock = ManualClock(T0)
        self.dispatcher = OutboxDispatcher(
            store,
            messenger=self.messenger,
            notifier=self.notifier,
            clock=self.clock,
            policy=POLICY,
        )

    async def entry(self, entry_id: int) -> OutboxEntry:
        entry = await self.store.get_outbox_entry(entry_id)
        assert entry is not None
        return entry


@asynccontextmanager
async def running(store_or_delivery: FaultyStore | Delivery) -> AsyncIterator[Delivery]:
    delivery = (
        store_or_delivery
        if isinstance(store_or_delivery, Delivery)
        else Delivery(store_or_delivery)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(delivery.dispatcher.run)
        yield delivery
        nursery.cancel_scope.cancel()


async def test_a_delivery_the_store_cannot_record_is_recorded_later_and_sent_once(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = FaultyStore()
    await session_with(store, ReactionAction.NOTIFY, ReactionAction.NOTIFY)
    store.failures["mark_delivered"] = 3
    caplog.set_level(logging.INFO, logger="orchestrator.outbox")
    async with running(store) as delivery:
        await trio.sleep(60)
        assert [e.message for e in delivery.notifier.events] == ["mer-1 #1", "mer-1 #2"]
        assert (await delivery.entry(1)).delivered_at == T0
        assert (await delivery.entry(2)).delivered_at == T0
        assert delivery.dispatcher.store_faults == 3
        assert [n.message for n in await store.list_notifications()] == ["mer-1 #2", "mer-1 #1"]
    outbox_logs = [r for r in caplog.records if r.name == "orchestrator.outbox"]
    assert [r.levelname for r in outbox_logs] == ["WARNING", "INFO"]  # once, then recovered
    assert "database or disk is full" in outbox_logs[0].getMessage()


async def test_the_backoff_doubles_up_to_its_cap(autojump_clock: trio.testing.MockClock) -> None:
    store = FaultyStore()
    await session_with(store, ReactionAction.NOTIFY)
    store.failures["mark_delivered"] = 8
    tries: list[float] = []
    record = store.mark_delivered

    async def timed(entry_id: int, **kwargs: Any) -> None:
        tries.append(trio.current_time())
        await record(entry_id, **kwargs)

    store.mark_delivered = timed  # type: ignore[method-assign]
    async with running(store):
        await trio.sleep(300)
    waits = [round(b - a, 3) for a, b in itertools.pairwise(tries)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


async def test_attempts_and_a_give_up_are_recorded_despite_faults(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FaultyStore()
    await session_with(store, ReactionAction.SEND_TO_AGENT)
    store.failures.update(record_attempt=5, mark_failed=2)
    delivery = Delivery(store)
    delivery.messenger.fail_times = 10**6  # the agent is gone: the human is told instead
    delivery.messenger.failure = lambda: DeliveryError("pane gone")
    async with running(delivery):
        await trio.sleep(120)
        given_up = await delivery.entry(1)
        assert given_up.failed_at == T0
        assert (given_up.last_error, given_up.attempts) == ("pane gone", 1)  # not retried
        assert [e.priority for e in delivery.notifier.events] == [Priority.URGENT]
        assert delivery.dispatcher.failed == 1
        assert delivery.dispatcher.store_faults == 7
    assert set(store.refused) == {"record_attempt", "mark_failed"}


async def test_a_requeue_the_store_cannot_record_is_recorded_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FaultyStore()
    await session_with(store, ReactionAction.NOTIFY)
    store.failures["record_attempt"] = 3
    delivery = Delivery(store)
    delivery.notifier.fail_times = 10**6  # every attempt fails: the row is requeued
    async with running(delivery):
        await trio.sleep(10)
        entry = await delivery.entry(1)
        assert entry.next_attempt_at == T0 + POLICY.requeue_after
        assert entry.attempts == 3  # two attempts and the requeue, each recorded once
        assert entry.delivered_at is None
        assert delivery.dispatcher.store_faults == 3


async def test_one_sessions_stuck_bookkeeping_holds_back_only_that_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FaultyStore()
    await session_with(store, ReactionAction.NOTIFY, ReactionAction.NOTIFY)  # rows 1, 2
    await session_with(store, ReactionAction.NOTIFY)  # row 3
    store.stuck = {1}
    async with running(store) as delivery:
        await trio.sleep(600)
        assert sorted(e.message for e in delivery.notifier.events) == ["mer-1 #1", "mer-2 #1"]
        assert (await delivery.entry(3)).delivered_at == T0
        assert (await delivery.entry(2)).delivered_at is None  # waits, in order, behind row 1
        store.stuck = set()  # the disk has room again
        await trio.sleep(60)
        sent = [e.message for e in delivery.notifier.events]
        assert sorted(sent[:2]) == ["mer-1 #1", "mer-2 #1"]
        assert sent[2:] == ["mer-1 #2"]  # sent once the row before it was recorded


async def test_a_failed_read_of_what_is_due_is_tried_again_on_the_next_poll(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FaultyStore()
    await session_with(store, ReactionAction.NOTIFY)
    store.failures["pending_outbox"] = 3
    async with running(store) as delivery:
        await trio.sleep(10)
        assert (await delivery.entry(1)).delivered_at == T0
    assert store.refused == ["pending_outbox"] * 3


async def test_drain_stops_when_the_store_cannot_say_what_is_due() -> None:
    store = FaultyStore()
    await session_with(store, ReactionAction.NOTIFY)
    store.failures["pending_outbox"] = None
    delivery = Delivery(store)
    with trio.fail_after(5):
        await delivery.dispatcher.drain()  # returns: the row stays queued for the next start
    assert (await delivery.entry(1)).delivered_at is None


def test_the_default_bookkeeping_backoff() -> None:
    policy = DeliveryPolicy()
    assert (policy.bookkeeping_backoff, policy.max_bookkeeping_backoff) == (0.5, 30.0)
    assert timedelta(seconds=policy.max_bookkeeping_backoff) < policy.requeue_after * 2
