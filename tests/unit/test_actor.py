"""The session actor's turn queue: one turn at a time, handed on in FIFO order, and
cancellation of a waiter at any moment neither loses the turn nor breaks the order.

Modelled on trio's own ParkingLot tests: tasks queue up one at a time (each blocked before
the next starts, so arrival order is known), then the test cancels and releases from the
outside and checks who ran, in which order, and that the actor ends idle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from orchestrator.domain.errors import OverloadedError
from orchestrator.lifecycle.actor import SessionActor

LIMIT = 100
DEADLOCK_GUARD = 10.0  # seconds: a lost turn fails the test instead of hanging it


class Turns:
    """Callers of one actor: each takes a turn, records it and hands it on (in a
    ``finally``, as the lifecycle manager does). Each caller has its own cancel scope."""

    def __init__(self, actor: SessionActor, nursery: trio.Nursery) -> None:
        self.actor = actor
        self.nursery = nursery
        self.ran: list[str] = []
        self.cancelled: list[str] = []
        self.scopes: dict[str, trio.CancelScope] = {}
        self.in_turn: dict[str, Callable[[], Awaitable[None]]] = {}

    async def queue(self, *names: str, limit: int = LIMIT, overload_wait: float = 1.0) -> None:
        """Start one caller per name, each queued (blocked) before the next starts."""
        for name in names:
            self.scopes[name] = trio.CancelScope()
            self.nursery.start_soon(self._caller, name, limit, overload_wait)
            await trio.testing.wait_all_tasks_blocked()

    async def _caller(self, name: str, limit: int, overload_wait: float) -> None:
        with self.scopes[name]:
            try:
                if not self.actor.try_acquire():
                    await self.actor.acquire(limit=limit, overload_wait=overload_wait)
            except trio.Cancelled:
                self.cancelled.append(name)
                raise
            try:
                self.ran.append(name)
                work = self.in_turn.get(name)
                if work is not None:
                    await work()
            finally:
                self.actor.release()

    def assert_idle(self) -> None:
        assert not self.actor.busy
        assert self.actor.waiting == 0


@asynccontextmanager
async def callers(actor: SessionActor) -> AsyncIterator[Turns]:
    """Callers of ``actor``; leaving waits for every one to finish (or fails on deadlock)."""
    with trio.fail_after(DEADLOCK_GUARD):
        async with trio.open_nursery() as nursery:
            yield Turns(actor, nursery)


def held_actor() -> SessionActor:
    """An actor whose turn the test itself holds, so callers queue behind it."""
    actor = SessionActor("app-1")
    assert actor.try_acquire()
    return actor


async def test_an_idle_actor_gives_the_turn_at_once_and_goes_idle_after() -> None:
    actor = SessionActor("app-1")
    await actor.acquire(limit=LIMIT, overload_wait=1.0)
    assert not actor.try_acquire()  # busy
    actor.release()
    assert actor.try_acquire()  # idle again


async def test_waiters_get_the_turn_in_arrival_order() -> None:
    actor = held_actor()
    async with callers(actor) as turns:
        await turns.queue("a", "b", "c", "d")
        assert actor.waiting == 4
        assert turns.ran == []
        actor.release()
    assert turns.ran == ["a", "b", "c", "d"]
    turns.assert_idle()


async def test_only_one_turn_at_a_time() -> None:
    actor = held_actor()
    inside = 0
    most = 0

    async def work() -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await trio.lowlevel.checkpoint()
        await trio.lowlevel.checkpoint()
        inside -= 1

    async with callers(actor) as turns:
        turns.in_turn = dict.fromkeys("abcde", work)
        await turns.queue(*"abcde")
        actor.release()
    assert (most, turns.ran) == (1, list("abcde"))
    turns.assert_idle()


async def test_a_waiter_cancelled_mid_queue_leaves_it_and_the_rest_keep_order() -> None:
    actor = held_actor()
    async with callers(actor) as turns:
        await turns.queue("a", "b", "c", "d")
        turns.scopes["b"].cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert turns.cancelled == ["b"]
        assert actor.waiting == 3
        turns.scopes["d"].cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert actor.waiting == 2
        actor.release()
    assert turns.ran == ["a", "c"]
    assert turns.cancelled == ["b", "d"]
    turns.assert_idle()


async def test_the_only_waiter_cancelled_leaves_the_holder_in_charge() -> None:
    actor = held_actor()
    async with callers(actor) as turns:
        await turns.queue("a")
        turns.scopes["a"].cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert actor.busy  # still the test's turn
        assert actor.waiting == 0
        actor.release()
    assert turns.ran == []
    turns.assert_idle()
    assert actor.try_acquire()


async def test_a_waiter_cancelled_after_the_turn_was_granted_passes_it_on() -> None:
    actor = held_actor()
    async with callers(actor) as turns:
        await turns.queue("a", "b", "c")
        # Cancel "a" and hand it the turn in the same step: it wakes up cancelled while
        # already owning the turn, and must pass it on rather than drop it.
        turns.scopes["a"].cancel()
        actor.release()
        assert actor.waiting == 2  # "a" was handed the turn before it could leave
    assert turns.cancelled == ["a"]
    assert turns.ran == ["b", "c"]
    turns.assert_idle()


async def test_the_last_waiter_cancelled_after_the_grant_leaves_the_actor_idle() -> None:
    actor = held_actor()
    async with callers(actor) as turns:
        await turns.queue("a")
        turns.scopes["a"].cancel()
        actor.release()
    assert (turns.ran, turns.cancelled) == ([], ["a"])
    turns.assert_idle()
    assert actor.try_acquire()  # no lost turn: the next caller gets it at once


async def test_a_caller_cancelled_during_its_turn_still_hands_it_on() -> None:
    actor = held_actor()
    started = trio.Event()

    async def work() -> None:
        started.set()
        await trio.sleep_forever()

    async with callers(actor) as turns:
        turns.in_turn = {"a": work}
        await turns.queue("a", "b")
        actor.release()
        await started.wait()
        turns.scopes["a"].cancel()
    assert turns.ran == ["a", "b"]
    turns.assert_idle()


async def test_cancelling_every_other_waiter_keeps_fifo_for_the_rest() -> None:
    actor = held_actor()
    names = [f"w{n}" for n in range(10)]
    async with callers(actor) as turns:
        await turns.queue(*names)
        for name in names[::2]:
            turns.scopes[name].cancel()
        # One more cancelled in the same step as the grant it would receive.
        turns.scopes["w1"].cancel()
        actor.release()
    assert turns.ran == names[3::2]
    assert sorted(turns.cancelled) == sorted([*names[::2], "w1"])
    turns.assert_idle()


async def test_a_full_queue_refuses_after_the_overload_wait(autojump_clock: object) -> None:
    actor = held_actor()
    async with callers(actor) as turns:
        await turns.queue("a", "b", limit=2)
        with pytest.raises(OverloadedError, match="2 messages waiting"):
            await actor.acquire(limit=2, overload_wait=5.0)
        assert actor.waiting == 2
        actor.release()
    assert turns.ran == ["a", "b"]
    turns.assert_idle()


async def test_a_cancelled_waiter_makes_room_in_a_full_queue() -> None:
    actor = held_actor()
    async with callers(actor) as turns:
        await turns.queue("a", "b", limit=2)
        await turns.queue("c", limit=2, overload_wait=60.0)  # waits for room
        assert actor.waiting == 2
        turns.scopes["a"].cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert actor.waiting == 2  # "c" took the room "a" left
        actor.release()
    assert turns.ran == ["b", "c"]
    assert turns.cancelled == ["a"]
    turns.assert_idle()


async def test_a_caller_cancelled_while_waiting_for_room_leaves_no_trace() -> None:
    actor = held_actor()
    async with callers(actor) as turns:
        await turns.queue("a", limit=1)
        await turns.queue("b", limit=1, overload_wait=60.0)
        turns.scopes["b"].cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert actor.waiting == 1
        actor.release()
    assert (turns.ran, turns.cancelled) == (["a"], ["b"])
    turns.assert_idle()
