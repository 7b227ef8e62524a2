"""The shared GitHub rate budget, on fake time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio
import trio.testing

from adapters.github.budget import RateBudget, Resource
from orchestrator.domain.scm import SCMPriority, SCMRateLimited

EPOCH = 1_800_000_000.0
BACKGROUND = SCMPriority.BACKGROUND
KICK = SCMPriority.KICK


class FakeTime:
    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def budget(clock: FakeTime) -> RateBudget:
    return RateBudget(clock=clock)


def rate_headers(
    clock: FakeTime,
    *,
    remaining: int,
    limit: int = 5000,
    reset_in: float = 3600,
    more: dict[str, str] | None = None,
) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(int(clock.now + reset_in)),
        **(more or {}),
    }


def blocked(
    budget: RateBudget, resource: Resource = Resource.CORE, priority: SCMPriority = KICK
) -> float | None:
    """Seconds until ``resource`` may be used at ``priority``, or None when it may now."""
    try:
        budget.check(resource, priority)
    except SCMRateLimited as limited:
        return budget.seconds_until(limited.until)
    return None


SECONDARY_BODY = '{"message": "You have exceeded a secondary rate limit."}'


def test_a_secondary_limit_with_retry_after_blocks_everything_until_then(
    budget: RateBudget, clock: FakeTime
) -> None:
    limited = budget.record(
        Resource.CORE, 403, rate_headers(clock, remaining=4000, more={"retry-after": "60"}), ""
    )
    assert limited is not None
    assert limited.until == datetime.fromtimestamp(EPOCH + 60, UTC)
    assert blocked(budget, Resource.CORE) == 60
    assert blocked(budget, Resource.GRAPHQL) == 60  # secondary limits span resources
    clock.advance(59.9)
    assert blocked(budget) is not None
    clock.advance(0.1)
    assert blocked(budget) is None


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_limit_without_retry_after_backs_off_exponentially(
    budget: RateBudget, clock: FakeTime, status: int
) -> None:
    pauses = []
    for _ in range(6):
        assert budget.record(Resource.CORE, status, {}, SECONDARY_BODY) is not None
        pauses.append(blocked(budget))
        clock.advance(pauses[-1] or 0)
    assert pauses == [60, 120, 240, 480, 900, 900]  # clamped at 15 minutes
    budget.record(Resource.CORE, 200, {})
    assert budget.record(Resource.CORE, status, {}, SECONDARY_BODY) is not None
    assert blocked(budget) == 60  # a success starts over


def test_a_huge_retry_after_is_clamped(budget: RateBudget, clock: FakeTime) -> None:
    budget.record(Resource.CORE, 429, {"retry-after": "86400"})
    assert blocked(budget) == 900


def test_primary_exhaustion_waits_for_the_reset_of_that_resource_only(
    budget: RateBudget, clock: FakeTime
) -> None:
    headers = rate_headers(clock, remaining=0, reset_in=500)
    limited = budget.record(Resource.CORE, 403, headers, '{"message": "API rate limit exceeded"}')
    assert limited is not None
    assert limited.resource == "core"
    assert blocked(budget, Resource.CORE) == 500
    assert blocked(budget, Resource.GRAPHQL) is None
    clock.advance(500)
    assert blocked(budget, Resource.CORE) is None


def test_graphql_rate_limited_at_200_blocks_only_graphql(
    budget: RateBudget, clock: FakeTime
) -> None:
    headers = rate_headers(
        clock, remaining=0, reset_in=300, more={"x-ratelimit-resource": "graphql"}
    )
    limited = budget.record_graphql_rate_limited(headers)
    assert limited.resource == "graphql"
    assert blocked(budget, Resource.GRAPHQL) == 300
    assert blocked(budget, Resource.CORE) is None
    clock.advance(300)
    assert blocked(budget, Resource.GRAPHQL) is None


def test_graphql_rate_limited_without_a_reset_waits_a_minute(budget: RateBudget) -> None:
    budget.record_graphql_rate_limited({})
    assert blocked(budget, Resource.GRAPHQL) == 60


def test_background_polling_stops_at_the_reserve_while_a_kick_passes(
    budget: RateBudget, clock: FakeTime
) -> None:
    budget.record(Resource.CORE, 200, rate_headers(clock, remaining=501, reset_in=900))
    assert blocked(budget, Resource.CORE, BACKGROUND) is None
    budget.record(Resource.CORE, 200, rate_headers(clock, remaining=500, reset_in=900))
    assert blocked(budget, Resource.CORE, BACKGROUND) == 900  # 10% of 5000 kept back
    assert blocked(budget, Resource.CORE, KICK) is None
    budget.record(Resource.CORE, 200, rate_headers(clock, remaining=100, reset_in=900))
    assert blocked(budget, Resource.CORE, KICK) == 900  # a kick keeps the last 2%
    assert blocked(budget, Resource.GRAPHQL, BACKGROUND) is None  # its own bucket
    clock.advance(900)
    assert blocked(budget, Resource.CORE, BACKGROUND) is None  # the window reset


def test_reserves_can_be_absolute(clock: FakeTime) -> None:
    budget = RateBudget(clock=clock, background_reserve=1000, kick_reserve=0)
    budget.record(Resource.CORE, 200, rate_headers(clock, remaining=999))
    assert blocked(budget, Resource.CORE, BACKGROUND) is not None
    assert blocked(budget, Resource.CORE, KICK) is None


def test_the_resource_header_names_the_bucket(budget: RateBudget, clock: FakeTime) -> None:
    headers = rate_headers(clock, remaining=10, more={"x-ratelimit-resource": "graphql"})
    budget.record(Resource.CORE, 200, headers)
    assert blocked(budget, Resource.GRAPHQL, BACKGROUND) is not None
    assert blocked(budget, Resource.CORE, BACKGROUND) is None


def test_a_permission_403_is_not_a_rate_limit(budget: RateBudget, clock: FakeTime) -> None:
    headers = rate_headers(clock, remaining=4000)
    said = '{"message": "Resource not accessible by integration"}'
    assert budget.record(Resource.CORE, 403, headers, said) is None
    assert blocked(budget) is None


def test_the_snapshot_shows_buckets_blocks_and_slots(budget: RateBudget, clock: FakeTime) -> None:
    budget.record(Resource.CORE, 200, rate_headers(clock, remaining=4321, reset_in=60))
    budget.record(Resource.CORE, 429, {"retry-after": "30"})
    snapshot = budget.snapshot()
    core = next(r for r in snapshot.resources if r.resource == "core")
    assert (core.limit, core.remaining) == (5000, 4321)
    assert core.reset_at == datetime.fromtimestamp(int(EPOCH + 60), UTC)
    assert snapshot.blocked_until == datetime.fromtimestamp(EPOCH + 30, UTC)
    assert snapshot.secondary_strikes == 1
    assert (snapshot.in_flight, snapshot.max_concurrency) == (0, 2)
    clock.advance(30)
    assert budget.snapshot().blocked_until is None


async def test_at_most_max_concurrency_requests_run_at_once(
    clock: FakeTime, autojump_clock: trio.testing.MockClock
) -> None:
    budget = RateBudget(clock=clock, max_concurrency=2)
    running = 0
    most = 0

    async def request() -> None:
        nonlocal running, most
        async with budget.slot(Resource.CORE, BACKGROUND):
            running += 1
            most = max(most, running)
            assert budget.snapshot().in_flight <= 2
            await trio.sleep(1)
            running -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(request)
    assert most == 2
    assert budget.snapshot().in_flight == 0


async def test_a_request_waiting_for_a_slot_sees_a_limit_hit_meanwhile(clock: FakeTime) -> None:
    budget = RateBudget(clock=clock, max_concurrency=1)
    outcome: list[str] = []

    async def waiter() -> None:
        try:
            async with budget.slot(Resource.CORE, BACKGROUND):
                outcome.append("sent")
        except SCMRateLimited:
            outcome.append("held back")

    async with trio.open_nursery() as nursery, budget.slot(Resource.CORE, BACKGROUND):
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        budget.record(Resource.CORE, 403, {"retry-after": "60"})
    assert outcome == ["held back"]
