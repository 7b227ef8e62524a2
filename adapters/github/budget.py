"""One rate budget for every GitHub call the daemon makes, driven by GitHub's headers.

GitHub's primary limit is per user and resource (``core`` for REST, ``graphql``), and the
agents the daemon supervises usually call GitHub as the same user, so the budget keeps a
reserve for them: background polling stops at the reserve while a kick (someone waiting
for an answer) may go lower. A secondary limit (GitHub's abuse protection) blocks every
resource until ``Retry-After``, else for an exponentially growing pause. A blocked
request raises ``SCMRateLimited`` at once, before anything is sent; sleeping is the
caller's decision. At most ``max_concurrency`` requests run at once, because GitHub asks
for serial requests.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

import trio

from orchestrator.domain.scm import (
    RateBudgetSnapshot,
    RateResourceState,
    SCMPriority,
    SCMRateLimited,
)


class Resource(StrEnum):
    CORE = "core"
    GRAPHQL = "graphql"


@dataclass
class _Bucket:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # epoch seconds
    blocked_until: float = 0.0


SECONDARY_MARKERS: Final = ("secondary rate limit", "abuse detection", "abuse rate limit")


class RateBudget:
    """The shared, header-driven budget. ``clock`` returns epoch seconds (the unit of
    ``x-ratelimit-reset``); tests pass a fake one. Reserves are fractions of the limit
    GitHub reports, or absolute counts when given."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        max_concurrency: int = 2,
        background_reserve: float = 0.10,
        kick_reserve: float = 0.02,
        secondary_initial: float = 60.0,
        secondary_max: float = 900.0,
        unknown_reset_wait: float = 60.0,
    ) -> None:
        self._clock = clock
        self._reserves: Mapping[SCMPriority, float] = {
            SCMPriority.BACKGROUND: background_reserve,
            SCMPriority.KICK: kick_reserve,
        }
        self._secondary_initial = secondary_initial
        self._secondary_max = secondary_max
        self._unknown_reset_wait = unknown_reset_wait
        self._buckets: dict[str, _Bucket] = {r.value: _Bucket() for r in Resource}
        self._blocked_until = 0.0
        self._strikes = 0
        self._max_concurrency = max_concurrency
        self._limiter = trio.CapacityLimiter(max_concurrency)

    def now(self) -> float:
        return self._clock()

    def seconds_until(self, when: datetime) -> float:
        return max(0.0, when.timestamp() - self._clock())

    # -- before a request

    def check(self, resource: Resource, priority: SCMPriority) -> None:
        """Raise ``SCMRateLimited`` if a request for ``resource`` must not be sent now."""
        now = self._clock()
        if now < self._blocked_until:
            raise self._limited(resource, self._blocked_until, "secondary rate limit")
        bucket = self._buckets[resource.value]
        if now < bucket.blocked_until:
            raise self._limited(resource, bucket.blocked_until, f"{resource} limit exhausted")
        if bucket.remaining is None or bucket.reset_at is None or bucket.reset_at <= now:
            return  # nothing known, or the window has reset since
        reserve = self._reserve(priority, bucket.limit)
        if bucket.remaining <= reserve:
            raise self._limited(
                resource,
                bucket.reset_at,
                f"{resource} down to {bucket.remaining}, reserve for priority {priority.name}"
                f" is {reserve}",
            )

    @asynccontextmanager
    async def slot(self, resource: Resource, priority: SCMPriority) -> AsyncIterator[None]:
        """Hold one of the concurrent request slots, checking the budget before and after
        waiting for it (another request may have hit a limit meanwhile)."""
        self.check(resource, priority)
        async with self._limiter:
            self.check(resource, priority)
            yield

    def _reserve(self, priority: SCMPriority, limit: int | None) -> int:
        reserve = self._reserves[priority]
        if reserve >= 1:
            return int(reserve)
        return math.ceil(reserve * limit) if limit else 0

    # -- after a response

    def record(
        self, resource: Resource, status: int, headers: Mapping[str, str], body: str = ""
    ) -> SCMRateLimited | None:
        """Take in a response's rate headers; return the error to raise if it was a rate
        limit (``headers`` is case-insensitive, like httpx's)."""
        now = self._clock()
        bucket = self._update(resource, headers)
        if status not in (403, 429):
            if 200 <= status < 400:
                self._strikes = 0
            return None
        retry_after = _seconds(headers.get("retry-after"))
        lowered = body.lower()
        if retry_after is not None:
            # Clamped: a bogus huge value must not silence the observer for a day.
            pause = min(retry_after, self._secondary_max)
            self._blocked_until = max(self._blocked_until, now + pause)
            self._strikes += 1
            return self._limited(resource, self._blocked_until, "secondary rate limit")
        if bucket.remaining == 0:
            until = bucket.reset_at if bucket.reset_at else now + self._unknown_reset_wait
            bucket.blocked_until = max(bucket.blocked_until, until)
            return self._limited(resource, bucket.blocked_until, f"{resource} limit exhausted")
        if status == 429 or any(marker in lowered for marker in SECONDARY_MARKERS):
            pause = min(self._secondary_max, self._secondary_initial * 2**self._strikes)
            self._blocked_until = max(self._blocked_until, now + pause)
            self._strikes += 1
            return self._limited(resource, self._blocked_until, "secondary rate limit")
        return None  # a permission 403

    def record_graphql_rate_limited(self, headers: Mapping[str, str]) -> SCMRateLimited:
        """GraphQL reports an exhausted bucket as a 200 with a RATE_LIMITED error: that
        blocks GraphQL only; REST has a bucket of its own."""
        bucket = self._update(Resource.GRAPHQL, headers)
        now = self._clock()
        until = bucket.reset_at if bucket.reset_at and bucket.reset_at > now else None
        bucket.blocked_until = max(bucket.blocked_until, until or now + self._unknown_reset_wait)
        bucket.remaining = 0
        return self._limited(Resource.GRAPHQL, bucket.blocked_until, "graphql limit exhausted")

    def _update(self, resource: Resource, headers: Mapping[str, str]) -> _Bucket:
        name = headers.get("x-ratelimit-resource") or resource.value
        bucket = self._buckets.setdefault(name, _Bucket())
        limit = _count(headers.get("x-ratelimit-limit"))
        remaining = _count(headers.get("x-ratelimit-remaining"))
        reset = _seconds(headers.get("x-ratelimit-reset"))
        if limit is not None:
            bucket.limit = limit
        if remaining is not None:
            bucket.remaining = remaining
        if reset is not None:
            bucket.reset_at = reset
        return bucket

    def _limited(self, resource: Resource, until: float, why: str) -> SCMRateLimited:
        when = datetime.fromtimestamp(until, UTC)
        return SCMRateLimited(
            f"GitHub {why}; retry after {when:%H:%M:%S}Z", resource=resource.value, until=when
        )

    # -- for the API

    def snapshot(self) -> RateBudgetSnapshot:
        def at(epoch: float | None) -> datetime | None:
            return datetime.fromtimestamp(epoch, UTC) if epoch else None

        now = self._clock()
        return RateBudgetSnapshot(
            resources=tuple(
                RateResourceState(
                    resource=name,
                    limit=bucket.limit,
                    remaining=bucket.remaining,
                    reset_at=at(bucket.reset_at),
                    blocked_until=at(bucket.blocked_until if bucket.blocked_until > now else None),
                )
                for name, bucket in self._buckets.items()
            ),
            blocked_until=at(self._blocked_until if self._blocked_until > now else None),
            secondary_strikes=self._strikes,
            in_flight=int(self._limiter.borrowed_tokens),
            max_concurrency=self._max_concurrency,
        )


def _count(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _seconds(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None
