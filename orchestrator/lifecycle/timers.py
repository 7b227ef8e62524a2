"""The timer heap: every session's deadlines (an entry reaction's ``escalateAfter``, the
detecting quarantine's cap, a merged session's cleanup) in one heap, watched by one task.

Each actor keeps the deadline it wants per kind (``scheduled``) and the deadline of its one
heap entry per kind (``queued``, never later). Re-arming a later deadline does not touch the
heap: the queued entry wakes first and queues the current deadline then, so a session
flapping in and out of idle cannot grow the heap (docs/design.md, "Hot path").
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Mapping
from datetime import datetime

import trio

from orchestrator.domain.model import SessionId
from orchestrator.lifecycle.actor import SessionActor
from orchestrator.lifecycle.messages import TimerKind
from orchestrator.ports import Clock

Due = Callable[[SessionActor, TimerKind, datetime], None]
"""Called on the timer task when a deadline of ``kind`` is due; must not block."""


class TimerHeap:
    """Deadlines of the sessions in ``actors``, on trio's clock (so ``MockClock`` drives
    them in tests); ``due`` is told of each one that comes due and still stands."""

    def __init__(self, clock: Clock, actors: Mapping[SessionId, SessionActor], due: Due) -> None:
        self._clock = clock
        self._actors = actors
        self._due = due
        self._heap: list[tuple[float, int, SessionId, TimerKind, datetime]] = []
        self._seq = itertools.count()
        self._changed = trio.Event()

    def arm(self, actor: SessionActor, kind: TimerKind, when: datetime | None) -> None:
        """Make ``when`` the session's deadline of ``kind`` (None: it has none)."""
        scheduled = actor.scheduled
        if when is None:
            if scheduled is not None:
                scheduled.pop(kind, None)  # a queued heap entry finds nothing to fire
            return
        if scheduled is None:
            scheduled = actor.scheduled = {}
        if scheduled.get(kind) == when:
            return
        scheduled[kind] = when
        queued = actor.queued.get(kind) if actor.queued is not None else None
        if queued is None or when < queued:
            self._queue(actor, kind, when)
        # Otherwise the queued entry wakes first and queues the new deadline (run).

    def _queue(self, actor: SessionActor, kind: TimerKind, when: datetime) -> None:
        """Push a heap entry for ``when``; it becomes the one entry the actor tracks for
        ``kind`` (an earlier one it replaces turns void when popped)."""
        if actor.queued is None:
            actor.queued = {}
        actor.queued[kind] = when
        delay = max(0.0, (when - self._clock.now()).total_seconds())
        entry = (trio.current_time() + delay, next(self._seq), actor.session_id, kind, when)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._changed.set()

    async def run(self) -> None:
        """Watch the heap until cancelled."""
        while True:
            self._changed = trio.Event()
            deadline = self._heap[0][0] if self._heap else math.inf
            with trio.move_on_at(deadline):
                await self._changed.wait()
            now = trio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, session_id, kind, when = heapq.heappop(self._heap)
                actor = self._actors.get(session_id)
                if actor is None or actor.queued is None or actor.queued.get(kind) != when:
                    continue  # replaced by an earlier entry
                del actor.queued[kind]
                due = actor.scheduled.get(kind) if actor.scheduled is not None else None
                if due is None:
                    continue  # the session left that deadline
                if due != when:
                    self._queue(actor, kind, due)  # the deadline moved later: wait for it
                    continue
                self._due(actor, kind, due)
