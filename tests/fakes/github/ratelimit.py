"""GitHub's primary rate limits: one bucket per (identity, resource), an hour-long window
that starts with the first request after the last one ended, and the ``x-ratelimit-*``
headers every API response carries.

Buckets are keyed by the account behind a token, not by the token, because GitHub counts per
user: an agent's ``gh`` calls made as the same user drain the daemon's bucket too."""

from __future__ import annotations

from dataclasses import dataclass

from tests.fakes.github.clock import Clock

WINDOW_SECONDS = 3600
ANONYMOUS = "anonymous"  # GitHub keys unauthenticated requests by IP; the fake has one
DEFAULT_LIMITS = {"core": 5000, "graphql": 5000}
ANONYMOUS_LIMITS = {"core": 60, "graphql": 0}


@dataclass
class Bucket:
    limit: int
    used: int
    reset_at: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def reset_epoch(self) -> int:
        return int(self.reset_at)


class RateLimits:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._limits: dict[tuple[str, str], int] = {}

    def bucket(self, identity: str, resource: str) -> Bucket:
        """The current window's bucket; a window that has ended is replaced by a fresh one."""
        now = self._clock.now()
        key = (identity, resource)
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset_at:
            bucket = Bucket(self._limit(identity, resource), 0, now + WINDOW_SECONDS)
            self._buckets[key] = bucket
        return bucket

    def charge(self, identity: str, resource: str, points: int) -> Bucket:
        """Spend ``points``; ``used`` may pass ``limit`` (GitHub reports such overdraws)."""
        bucket = self.bucket(identity, resource)
        bucket.used += points
        return bucket

    def exhaust(self, identity: str, resource: str) -> Bucket:
        bucket = self.bucket(identity, resource)
        bucket.used = max(bucket.used, bucket.limit)
        return bucket

    def set_limit(self, identity: str, resource: str, limit: int) -> None:
        self._limits[(identity, resource)] = limit
        self.bucket(identity, resource).limit = limit

    def headers(self, identity: str, resource: str) -> dict[str, str]:
        bucket = self.bucket(identity, resource)
        return {
            "x-ratelimit-limit": str(bucket.limit),
            "x-ratelimit-remaining": str(bucket.remaining),
            "x-ratelimit-used": str(bucket.used),
            "x-ratelimit-reset": str(bucket.reset_epoch),
            "x-ratelimit-resource": resource,
        }

    def _limit(self, identity: str, resource: str) -> int:
        if (identity, resource) in self._limits:
            return self._limits[(identity, resource)]
        defaults = ANONYMOUS_LIMITS if identity == ANONYMOUS else DEFAULT_LIMITS
        return defaults.get(resource, 5000)
