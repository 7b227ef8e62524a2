"""How GitHub reads are retried: tenacity, on trio's clock.

Only reads (GETs and GraphQL queries) come here, because only they are safe to repeat.
Retried: network failures and 5xx (``SCMUnavailable``), and a rate-limit wait short
enough to sleep through. A longer wait propagates as ``SCMRateLimited`` so the caller
reschedules rather than holding a task for minutes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import trio
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from adapters.github.budget import RateBudget
from orchestrator.domain.scm import SCMRateLimited, SCMUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in at most ``max_delay`` seconds; between them GitHub's own
    ``until`` for a rate limit, else exponential back-off with jitter."""

    attempts: int = 3
    max_delay: float = 45.0
    longest_wait: float = 30.0  # a rate-limit wait longer than this is not slept here
    initial_wait: float = 1.0
    max_wait: float = 20.0


class Reads:
    """Runs a read with the retries of ``policy``."""

    def __init__(self, policy: RetryPolicy, budget: RateBudget) -> None:
        self._policy = policy
        self._budget = budget
        self._backoff = wait_exponential_jitter(initial=policy.initial_wait, max=policy.max_wait)

    async def __call__(
        self, call: Callable[[], Awaitable[T]], *, retry_unavailable: bool = True
    ) -> T:
        def worth_retrying(error: BaseException) -> bool:
            if isinstance(error, SCMRateLimited):
                return self._budget.seconds_until(error.until) <= self._policy.longest_wait
            return retry_unavailable and isinstance(error, SCMUnavailable)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._policy.attempts)
            | stop_after_delay(self._policy.max_delay),
            wait=self._wait,
            retry=retry_if_exception(worth_retrying),
            reraise=True,
            sleep=trio.sleep,
        )
        async for attempt in retrying:
            with attempt:
                return await call()
        raise AssertionError("unreachable")

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, SCMRateLimited):
            return self._budget.seconds_until(error.until)
        return float(self._backoff(state))
