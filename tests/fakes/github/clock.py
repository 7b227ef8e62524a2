"""The clock the fake GitHub reads: the world's timestamps, rate-limit windows and signed
log URLs all follow it, so a test moves time instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class RealClock:
    def now(self) -> float:
        return time.time()


class FakeClock:
    """Starts at ``start`` (epoch seconds) and moves only when told to."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self._now += seconds

    def set(self, epoch_seconds: float) -> None:
        if epoch_seconds < self._now:
            raise ValueError("a clock does not run backwards")
        self._now = epoch_seconds


def iso(epoch_seconds: float) -> str:
    """GitHub's timestamp form, whole seconds in UTC: ``2026-05-28T20:26:40Z``."""
    return datetime.fromtimestamp(int(epoch_seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_or_none(epoch_seconds: float | None) -> str | None:
    return None if epoch_seconds is None else iso(epoch_seconds)
