"""Fault injection: secondary limits, gateway errors, delays, truncated bodies, scoped by
path glob, count, method and token."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio.testing

from tests.fakes.github import (
    Delay,
    ErrorStatus,
    FakeGitHub,
    GraphQLRateLimited,
    SecondaryLimit,
    Truncate,
)
from tests.fakes.github.model import Account, Repo

VIEWER = {"query": "{ viewer { login } }"}


async def test_the_next_two_graphql_calls_502_and_the_third_succeeds(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo
) -> None:
    fake.faults.inject("/graphql", ErrorStatus(502), times=2)

    answers = [await github.post("/graphql", json=VIEWER) for _ in range(3)]
    rest = await github.get("/repos/acme/api/pulls")

    assert [a.status_code for a in answers] == [502, 502, 200]
    assert answers[0].json()["data"] is None
    assert (
        "Something went wrong while executing your query"
        in answers[0].json()["errors"][0]["message"]
    )
    assert rest.status_code == 200
    assert fake.log.points("graphql") == 1  # the failures were not charged


async def test_a_secondary_limit_with_retry_after(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo
) -> None:
    fake.faults.inject("/repos/*", SecondaryLimit(status=403, retry_after=60))

    limited = await github.get("/repos/acme/api/pulls")
    after = await github.get("/repos/acme/api/pulls")

    assert limited.status_code == 403
    assert limited.headers["retry-after"] == "60"
    assert limited.json()["message"].startswith("You have exceeded a secondary rate limit.")
    assert limited.json()["documentation_url"].endswith("#about-secondary-rate-limits")
    assert int(limited.headers["x-ratelimit-remaining"]) > 0  # not a primary exhaustion
    assert after.status_code == 200


async def test_a_secondary_limit_without_retry_after_as_429(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo
) -> None:
    fake.faults.inject("/graphql", SecondaryLimit(status=429))

    limited = await github.post("/graphql", json=VIEWER)

    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    assert "secondary rate limit" in limited.json()["message"]


async def test_graphql_rate_limited_comes_in_both_observed_shapes(
    fake: FakeGitHub, github: httpx.AsyncClient, alice: Account
) -> None:
    fake.faults.inject("/graphql", GraphQLRateLimited("RATE_LIMIT"))

    limited = await github.post("/graphql", json=VIEWER)

    assert limited.status_code == 200
    [error] = limited.json()["errors"]
    assert (error["type"], error["code"]) == ("RATE_LIMIT", "graphql_rate_limit")
    assert limited.headers["x-ratelimit-remaining"] == "0"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "Bad credentials"),
        (404, "Not Found"),
        (504, "We couldn't respond to your request in time."),
        (502, "Bad Gateway"),
    ],
)
async def test_error_statuses_carry_githubs_bodies(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, status: int, message: str
) -> None:
    fake.faults.inject("/repos/acme/api/pulls", ErrorStatus(status))

    response = await github.get("/repos/acme/api/pulls")

    assert response.status_code == status
    assert response.json()["message"].startswith(message)
    assert not fake.log.entries[0].charged


async def test_faults_are_scoped_by_method_and_token(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    fake.world.add_user("bob", token="ghp_bob")
    fake.faults.inject("/repos/*/pulls/*", ErrorStatus(502), method="PUT", times=None)
    fake.faults.inject("/repos/*", ErrorStatus(404), token="ghp_bob", times=None)

    read = await github.get(f"/repos/acme/api/pulls/{pr.number}")
    merge = await github.put(f"/repos/acme/api/pulls/{pr.number}/merge", json={})
    async with fake.client("ghp_bob") as bob:
        hidden = await bob.get("/repos/acme/api/pulls")

    assert (read.status_code, merge.status_code, hidden.status_code) == (200, 502, 404)
    assert pr.state == "open"


async def test_a_fault_counts_down_and_can_be_cleared(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo
) -> None:
    armed = fake.faults.inject("*", ErrorStatus(502), times=3)
    await github.get("/repos/acme/api/pulls")
    fake.faults.clear()

    assert (armed.taken, armed.remaining) == (1, 2)
    assert (await github.get("/repos/acme/api/pulls")).status_code == 200
    with pytest.raises(ValueError, match="times"):
        fake.faults.inject("*", ErrorStatus(502), times=0)


async def test_a_delay_holds_the_answer_on_trios_clock(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, autojump_clock: trio.testing.MockClock
) -> None:
    fake.faults.inject("/repos/*", Delay(12.5))
    fake.faults.inject("/repos/*", ErrorStatus(504))

    started = trio.current_time()
    response = await github.get("/repos/acme/api/pulls")

    assert trio.current_time() - started >= 12.5
    assert response.status_code == 504  # a delay combines with another fault


async def test_a_truncated_body_is_cut_short_of_its_declared_length(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    whole = await github.get("/repos/acme/api/pulls")
    fake.faults.inject("/repos/*", Truncate(keep=0.5))

    cut = await github.get("/repos/acme/api/pulls")

    assert int(cut.headers["content-length"]) == len(whole.content)
    assert len(cut.content) == len(whole.content) // 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
