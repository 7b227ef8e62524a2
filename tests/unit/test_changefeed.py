"""The change feed: in order, exactly once per live subscriber, woken by commits, slow
subscribers dropped with a lagged mark, one subscriber's trouble isolated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
import trio

from adapters.memory import MemoryStore
from orchestrator.changefeed import ChangeFeed, Subscription
from orchestrator.domain.model import ProjectId
from orchestrator.domain.records import ChangeEvent, Project

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def store_with(*projects: str) -> MemoryStore:
    store = MemoryStore()
    for project_id in projects:
        await store.upsert_project(
            Project(id=project_id, path=f"/r/{project_id}", registered_at=NOW)
        )
    return store


async def commit(store: MemoryStore, project: ProjectId = "mer", n: int = 1) -> list[int]:
    """``n`` change-log rows, written without a checkpoint in between."""
    for _ in range(n):
        await store.create_session(project, now=NOW)
    head = await store.max_change_seq()
    return list(range(head - n + 1, head + 1))


@asynccontextmanager
async def running(feed: ChangeFeed) -> AsyncIterator[ChangeFeed]:
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        yield feed
        feed.close()


async def take(sub: Subscription, n: int) -> list[int]:
    with trio.fail_after(2):
        return [(await sub.receive()).seq for _ in range(n)]


async def drain(sub: Subscription) -> list[int]:
    with trio.fail_after(2):
        return [event.seq async for event in sub]


async def test_publishes_in_order_exactly_once_to_every_subscriber() -> None:
    store = await store_with("mer")
    feed = ChangeFeed(store, safety_poll=60)
    store.on_commit = feed.notify
    async with running(feed):
        a, b = feed.subscribe(), feed.subscribe()
        seqs = await commit(store, n=3)
        await trio.lowlevel.checkpoint()
        seqs += await commit(store, n=2)
        assert await take(a, 5) == seqs
        assert await take(b, 5) == seqs
        feed.close()
        assert await drain(a) == []
        assert not a.lagged
        assert feed.published == 5


async def test_starts_at_the_head_and_never_rebroadcasts_old_events() -> None:
    store = await store_with("mer")
    await commit(store, n=3)
    feed = ChangeFeed(store, safety_poll=60)
    store.on_commit = feed.notify
    async with running(feed):
        assert feed.cursor == 3
        with feed.subscribe() as sub:
            expected = await commit(store)
            assert await take(sub, 1) == expected


async def test_a_commit_wakes_the_feed_without_waiting_for_the_poll() -> None:
    store = await store_with("mer")
    feed = ChangeFeed(store, safety_poll=3600)
    store.on_commit = feed.notify
    async with running(feed):
        sub = feed.subscribe()
        with trio.fail_after(1):  # far less than the safety poll
            expected = await commit(store)
            assert await take(sub, 1) == expected


async def test_the_safety_poll_finds_commits_nobody_announced(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = await store_with("mer")  # no on_commit hook
    feed = ChangeFeed(store, safety_poll=1.0)
    async with running(feed):
        sub = feed.subscribe()
        seqs = await commit(store, n=2)
        start = trio.current_time()
        assert await take(sub, 2) == seqs
        assert 0 < trio.current_time() - start <= 1.0


async def test_a_backlog_larger_than_a_batch_is_drained() -> None:
    store = await store_with("mer")
    feed = ChangeFeed(store, batch=2, safety_poll=60)
    store.on_commit = feed.notify
    async with running(feed):
        sub = feed.subscribe()
        seqs = await commit(store, n=7)
        assert await take(sub, 7) == seqs


async def test_project_filter() -> None:
    store = await store_with("mer", "web")
    feed = ChangeFeed(store, safety_poll=60)
    store.on_commit = feed.notify
    async with running(feed):
        web, everything = feed.subscribe("web"), feed.subscribe()
        mer1 = await commit(store, "mer")
        web1 = await commit(store, "web")
        mer2 = await commit(store, "mer")
        assert await take(everything, 3) == mer1 + web1 + mer2
        feed.close()
        assert await drain(web) == web1


async def test_a_full_subscriber_is_dropped_with_a_lagged_mark_others_unaffected() -> None:
    store = await store_with("mer")
    feed = ChangeFeed(store, safety_poll=60, subscriber_buffer=2)
    store.on_commit = feed.notify
    async with running(feed):
        slow = feed.subscribe()
        fast = feed.subscribe(buffer=100)
        seqs = await commit(store, n=5)  # one batch: the third overflows ``slow``
        assert await take(fast, 5) == seqs
        assert await drain(slow) == seqs[:2]  # what it held, then the end
        assert slow.lagged
        assert slow.closed
        assert feed.dropped == 1
        assert feed.subscriber_count == 1
        more = await commit(store)
        assert await take(fast, 1) == more  # the feed carries on


async def test_an_exception_in_one_subscriber_never_reaches_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = await store_with("mer")
    feed = ChangeFeed(store, safety_poll=60)
    store.on_commit = feed.notify

    def explode(event: ChangeEvent) -> bool:
        raise RuntimeError("subscriber bug")

    async with running(feed):
        broken, healthy = feed.subscribe(), feed.subscribe()
        monkeypatch.setattr(broken, "_offer", explode)
        seqs = await commit(store, n=2)
        assert await take(healthy, 2) == seqs
        assert feed.subscriber_count == 1
        expected = await commit(store)
        assert await take(healthy, 1) == expected


async def test_a_subscriber_that_leaves_is_forgotten() -> None:
    store = await store_with("mer")
    feed = ChangeFeed(store, safety_poll=60)
    store.on_commit = feed.notify
    async with running(feed):
        with feed.subscribe() as sub:
            assert feed.subscriber_count == 1
        assert feed.subscriber_count == 0
        assert sub.closed
        with pytest.raises(trio.ClosedResourceError):
            await sub.receive()
        other = feed.subscribe()
        expected = await commit(store)
        assert await take(other, 1) == expected


async def test_close_ends_every_subscription_and_later_ones_are_born_ended() -> None:
    store = await store_with("mer")
    feed = ChangeFeed(store, safety_poll=60)
    store.on_commit = feed.notify
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        subs = [feed.subscribe() for _ in range(3)]
        feed.close()
        for sub in subs:
            assert await drain(sub) == []
            assert not sub.lagged
        late = feed.subscribe()
        assert await drain(late) == []
        assert feed.is_closed
    # ``run`` returned by itself: the nursery exited without a cancel


class FlakyLog:
    """A change log whose reads fail the first ``failures`` times."""

    def __init__(self, store: MemoryStore, failures: int) -> None:
        self.store = store
        self.failures = failures

    async def changes_after(
        self, seq: int, *, limit: int, project_id: ProjectId | None = None
    ) -> list[ChangeEvent]:
        if self.failures:
            self.failures -= 1
            raise OSError("disk hiccup")
        return await self.store.changes_after(seq, limit=limit, project_id=project_id)

    async def max_change_seq(self) -> int:
        return await self.store.max_change_seq()


async def test_a_failed_read_is_retried(autojump_clock: trio.abc.Clock) -> None:
    store = await store_with("mer")
    flaky = FlakyLog(store, failures=2)
    feed = ChangeFeed(flaky, safety_poll=60)
    store.on_commit = feed.notify
    async with running(feed):
        sub = feed.subscribe()
        seqs = await commit(store, n=2)
        assert await take(sub, 2) == seqs
        assert flaky.failures == 0


async def test_run_only_once_and_bad_settings() -> None:
    store = await store_with()
    feed = ChangeFeed(store)
    async with running(feed):
        with pytest.raises(RuntimeError):
            await feed.run()
    with pytest.raises(ValueError, match="must be"):
        ChangeFeed(store, batch=0)
    with pytest.raises(ValueError, match="must be"):
        ChangeFeed(store, subscriber_buffer=0)
    with pytest.raises(ValueError, match="must be"):
        ChangeFeed(store, safety_poll=0.0)


async def test_receive_ready_takes_a_burst_without_waiting() -> None:
    """What lets an SSE stream send a burst of events in one write."""
    store = await store_with("mer")
    feed = ChangeFeed(store, safety_poll=60)
    store.on_commit = feed.notify
    async with running(feed):
        with feed.subscribe() as sub:
            assert sub.receive_ready(10) == []
            seqs = await commit(store, n=5)
            first = await take(sub, 1)
            assert first + [e.seq for e in sub.receive_ready(3)] == seqs[:4]
            assert [e.seq for e in sub.receive_ready(10)] == seqs[4:]
            assert sub.receive_ready(10) == []
