"""Agent messages sent again: what a restart leaves in the outbox lets the next dispatcher
mark a message that may have reached the agent already, and ask for a cleared input line
whenever an earlier attempt came before. The same from every store."""

from __future__ import annotations

import trio
import trio.testing

from adapters.memory import ManualClock, RecordingMessenger, RecordingNotifier
from orchestrator.domain.errors import TransientError
from orchestrator.domain.records import CommitUnit
from orchestrator.outbox import DeliveryPolicy, OutboxDispatcher, resent_text
from orchestrator.ports import ATTEMPT_UNDER_WAY
from tests.contract.support import ContractStore, at, outbox_item, session


def dispatcher(
    store: ContractStore, messenger: RecordingMessenger, clock: ManualClock | None = None
) -> OutboxDispatcher:
    """A dispatcher as a fresh daemon process starts one."""
    return OutboxDispatcher(
        store,
        messenger=messenger,
        notifier=RecordingNotifier(),
        clock=clock or ManualClock(at(0)),
        policy=DeliveryPolicy(attempts=2, initial_backoff=0, max_backoff=0),
    )


async def _one_message(store: ContractStore, text: str = "CI failed") -> tuple[str, int]:
    record = await session(store)
    item = outbox_item(record, f"k-{text}", message=text)
    await store.commit(CommitUnit(session_id=record.id, at=at(0), outbox=(item,)))
    (entry,) = await store.pending_outbox(now=at(0), limit=10)
    return record.id, entry.id


async def test_begin_attempt_marks_the_row_and_keeps_it_due(store: ContractStore) -> None:
    _, entry_id = await _one_message(store)
    await store.begin_attempt(entry_id)
    entry = await store.get_outbox_entry(entry_id)
    assert entry is not None
    assert (entry.attempts, entry.next_attempt_at, entry.last_error) == (0, ATTEMPT_UNDER_WAY, "")
    assert [e.id for e in await store.pending_outbox(now=at(0), limit=10)] == [entry_id]
    await store.begin_attempt(99)  # unknown ids are a no-op


async def test_a_message_never_tried_goes_out_as_written(store: ContractStore) -> None:
    sid, _ = await _one_message(store)
    messenger = RecordingMessenger()
    await dispatcher(store, messenger).drain()
    assert messenger.sent == [(sid, "CI failed")]
    assert messenger.resent == []


async def test_a_message_whose_attempt_a_crash_interrupted_is_marked_re_sent(
    store: ContractStore,
) -> None:
    sid, entry_id = await _one_message(store)
    hung = RecordingMessenger()
    hung.blocked[sid] = trio.Event()  # typed into the pane, never acknowledged
    async with trio.open_nursery() as nursery:
        nursery.start_soon(dispatcher(store, hung).drain)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()  # the daemon dies mid-attempt

    after_restart = RecordingMessenger()
    await dispatcher(store, after_restart).drain()
    expected = f"(re-sent after a restart) [msg {entry_id}] CI failed"
    assert resent_text(entry_id, "CI failed") == expected
    assert after_restart.sent == [(sid, expected)]
    assert after_restart.resent == [(sid, expected)]  # and the half-typed line is cleared
    assert await store.pending_outbox(now=at(0), limit=10) == []

    # Delivered: a later start sends nothing again.
    later = RecordingMessenger()
    await dispatcher(store, later).drain()
    assert later.sent == []


async def test_a_message_that_failed_before_the_restart_is_marked_re_sent(
    store: ContractStore,
) -> None:
    sid, entry_id = await _one_message(store)
    await store.record_attempt(entry_id, error="tmux timed out", next_attempt_at=None)
    messenger = RecordingMessenger()
    await dispatcher(store, messenger).drain()
    assert messenger.sent == [(sid, resent_text(entry_id, "CI failed"))]


async def test_a_retry_in_the_same_process_clears_the_line_but_is_not_marked(
    store: ContractStore,
) -> None:
    sid, _ = await _one_message(store)
    messenger = RecordingMessenger()
    messenger.fail_times = 1
    messenger.failure = lambda: TransientError("tmux paste failed")
    await dispatcher(store, messenger).drain()
    assert messenger.sent == [(sid, "CI failed")]
    assert messenger.resent == [(sid, "CI failed")]
    assert messenger.calls == 2


async def test_a_row_requeued_in_this_process_is_not_marked_when_retried(
    store: ContractStore,
) -> None:
    sid, _ = await _one_message(store)
    clock = ManualClock(at(0))
    messenger = RecordingMessenger()
    messenger.fail_times = 2
    messenger.failure = lambda: TransientError("tmux paste failed")
    notifier = RecordingNotifier()
    notifier.fail_times = 2
    outbox = OutboxDispatcher(
        store,
        messenger=messenger,
        notifier=notifier,
        clock=clock,
        policy=DeliveryPolicy(attempts=2, initial_backoff=0, max_backoff=0),
    )
    await outbox.drain()  # both sends fail, and so does the page to the human: requeued
    assert messenger.sent == []
    clock.advance(DeliveryPolicy().requeue_after)
    await outbox.drain()
    assert messenger.sent == [(sid, "CI failed")]
    assert messenger.resent == [(sid, "CI failed")]
