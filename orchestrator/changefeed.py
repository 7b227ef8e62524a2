"""The change feed: every committed change-log row, pushed to live subscribers in order.

One task (``ChangeFeed.run``) follows the change log from a cursor that starts at the head
(events older than the feed are never re-broadcast: clients replay those from the log
themselves, by ``Last-Event-ID``). The store's ``on_commit`` hook calls ``notify()``, which
wakes the task at once; a slow safety poll covers a missed wake-up. Each event goes, in
sequence order and exactly once, to every live subscriber whose project filter matches.

Each subscriber owns a bounded memory channel. Publishing never blocks: a subscriber whose
buffer is full is *dropped* — its channel is closed after the events it already holds and it
is marked ``lagged`` — so it learns it must resync, and is never silently skipped past a
gap (docs/behaviour.md, "Change feed"). One subscriber's trouble never reaches another, nor
the feed.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Final

import trio

from orchestrator.domain.model import ProjectId
from orchestrator.domain.records import ChangeEvent
from orchestrator.ports import ChangeLog

log = logging.getLogger(__name__)

DEFAULT_BATCH: Final = 512
DEFAULT_SUBSCRIBER_BUFFER: Final = 1024
SAFETY_POLL: Final = 1.0
"""Seconds between reads when no commit woke the feed: a backstop, not the mechanism."""
ERROR_BACKOFF: Final = 0.5


class Subscription:
    """One subscriber's view of the feed: a bounded channel of events in ``seq`` order.

    Read with ``await sub.receive()`` (raises ``trio.EndOfChannel`` when the subscription
    has ended) or ``async for event in sub``. When it ends, ``lagged`` tells why: true if
    the feed dropped this subscriber because its buffer was full (everything it holds was
    still delivered; reconnect from the last ``seq`` you saw), false if it was closed (the
    feed is shutting down, or the subscriber left). Use as a context manager so it always
    leaves the feed.
    """

    def __init__(
        self,
        feed: ChangeFeed,
        project_id: ProjectId | None,
        buffer: int,
    ) -> None:
        self.project_id = project_id
        self.lagged = False
        self._ended = False
        self._feed = feed
        self._send, self._receive = trio.open_memory_channel[ChangeEvent](buffer)

    # -- reading

    async def receive(self) -> ChangeEvent:
        return await self._receive.receive()

    def receive_ready(self, limit: int) -> list[ChangeEvent]:
        """Up to ``limit`` events already buffered, without waiting (maybe none), so a
        reader can send a burst in one write instead of one write per event."""
        ready: list[ChangeEvent] = []
        while len(ready) < limit:
            try:
                ready.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        return ready

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ChangeEvent:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    @property
    def closed(self) -> bool:
        """True once the feed will deliver nothing more (buffered events may remain)."""
        return self._ended

    # -- leaving

    def close(self) -> None:
        """Leave the feed. Idempotent."""
        self._feed._remove(self)
        self._end()
        self._receive.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the feed's side

    def _offer(self, event: ChangeEvent) -> bool:
        """Hand over one event without blocking. False when this subscriber is gone."""
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.lagged = True
            self._end()  # the receiver still gets what it holds, then EndOfChannel
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._end()
            return False
        return True

    def _end(self) -> None:
        self._ended = True
        self._send.close()


class ChangeFeed:
    """Follows a ``ChangeLog`` and fans each new event out to subscribers.

    ``await nursery.start(feed.run)`` returns once the cursor is at the log's head, so every
    change committed afterwards reaches every subscriber. ``close()`` ends the feed and all
    subscriptions (drain); subscriptions taken afterwards are born ended.
    """

    def __init__(
        self,
        log: ChangeLog,
        *,
        batch: int = DEFAULT_BATCH,
        subscriber_buffer: int = DEFAULT_SUBSCRIBER_BUFFER,
        safety_poll: float = SAFETY_POLL,
    ) -> None:
        if batch < 1 or subscriber_buffer < 1 or safety_poll <= 0:
            raise ValueError("batch and subscriber_buffer must be >= 1, safety_poll > 0")
        self._log = log
        self.batch = batch
        self.subscriber_buffer = subscriber_buffer
        self._safety_poll = safety_poll
        self._subscribers: dict[int, Subscription] = {}
        self._wakeup = trio.Event()
        self._closed = False
        self._cursor = 0
        self._started = False
        self.published = 0
        """Events published since start (each counted once, however many subscribers)."""
        self.dropped = 0
        """Subscribers dropped because their buffer was full."""

    # -- the commit hook

    def notify(self) -> None:
        """A commit happened: read the log now. Sync and cheap; call it from the trio
        thread (the store's ``on_commit`` hook)."""
        self._wakeup.set()

    # -- subscribing

    def subscribe(
        self, project_id: ProjectId | None = None, *, buffer: int | None = None
    ) -> Subscription:
        """A new subscription to every event published from now on (of one project, if
        given). ``buffer`` overrides the feed's per-subscriber buffer."""
        sub = Subscription(self, project_id, buffer or self.subscriber_buffer)
        if self._closed:
            sub._end()
        else:
            self._subscribers[id(sub)] = sub
        return sub

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def cursor(self) -> int:
        """The seq of the last event published (the log's head when the feed started)."""
        return self._cursor

    @property
    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every subscription and stop the feed (drain). Idempotent."""
        self._closed = True
        for sub in list(self._subscribers.values()):
            sub._end()
        self._subscribers.clear()
        self._wakeup.set()

    def _remove(self, sub: Subscription) -> None:
        self._subscribers.pop(id(sub), None)

    # -- running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the log until ``close()`` or cancellation."""
        if self._started:
            raise RuntimeError("ChangeFeed.run() may only run once")
        self._started = True
        self._cursor = await self._log.max_change_seq()
        task_status.started()
        while not self._closed:
            # A fresh event before the read: a commit landing during the read wakes the
            # next wait at once instead of being lost.
            self._wakeup = trio.Event()
            try:
                full = await self.poll()
            except Exception:
                log.exception("change feed: reading the change log failed; retrying")
                await trio.sleep(ERROR_BACKOFF)
                continue
            if full:
                await trio.lowlevel.checkpoint()
                continue  # a backlog: keep draining without waiting
            with trio.move_on_after(self._safety_poll):
                await self._wakeup.wait()

    async def poll(self) -> bool:
        """Read one batch after the cursor and publish it. True if the batch was full (more
        may be waiting). ``run`` calls this; tests may too."""
        events = await self._log.changes_after(self._cursor, limit=self.batch)
        for event in events:
            if self._closed:
                break
            if event.seq <= self._cursor:
                continue  # idempotent guard: never publish a seq twice
            self._publish(event)
            self._cursor = event.seq
        return len(events) >= self.batch

    def _publish(self, event: ChangeEvent) -> None:
        self.published += 1
        for key, sub in list(self._subscribers.items()):
            if sub.project_id is not None and sub.project_id != event.project_id:
                continue
            try:
                delivered = sub._offer(event)
            except Exception:
                log.exception("change feed: subscriber failed; dropping it")
                delivered = False
            if not delivered:
                if sub.lagged:
                    self.dropped += 1
                    log.info("change feed: subscriber dropped at seq %d (buffer full)", event.seq)
                self._subscribers.pop(key, None)


__all__ = ["ChangeFeed", "Subscription"]
