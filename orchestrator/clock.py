"""Clocks: the wall clock for the daemon, and one that follows trio's clock for tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import trio


class SystemClock:
    """UTC wall-clock time."""

    def __init__(self) -> None:
        # The bound C call itself, not a method wrapping it: read on every engine turn.
        self.now: Callable[[], datetime] = partial(datetime.now, UTC)


class TrioClock:
    """Wall time as ``origin`` plus trio's clock, so ``MockClock`` drives the engine's
    datetimes and its timers together. Must be created inside ``trio.run``."""

    def __init__(self, origin: datetime | None = None) -> None:
        self._origin = origin or datetime(2026, 1, 1, tzinfo=UTC)
        self._start = trio.current_time()

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=trio.current_time() - self._start)
