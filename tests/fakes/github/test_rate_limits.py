"""Primary rate limits: the headers on every response, charging, the hourly reset on the
fake clock, exhaustion, other consumers of the same user's bucket, and ``/rate_limit``."""

from __future__ import annotations

import httpx

from tests.fakes.github import FakeClock, FakeGitHub, PrimaryExhausted
from tests.fakes.github.conftest import TOKEN
from tests.fakes.github.model import Account, Repo

RATE_HEADERS = {
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
}


def _rate(response: httpx.Response) -> tuple[int, int, int, int, str]:
    h = response.headers
    return (
        int(h["x-ratelimit-limit"]),
        int(h["x-ratelimit-remaining"]),
        int(h["x-ratelimit-used"]),
        int(h["x-ratelimit-reset"]),
        h["x-ratelimit-resource"],
    )


async def test_every_response_carries_the_rate_headers(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo
) -> None:
    responses = [
        await github.get("/repos/acme/api/pulls"),
        await github.get("/repos/acme/nope/pulls"),
        await github.post("/graphql", json={"query": "{ viewer { login } }"}),
        await github.get("/rate_limit"),
    ]
    async with fake.client("ghp_revoked") as stale:
        responses.append(await stale.get("/repos/acme/api/pulls"))

    assert [r.status_code for r in responses] == [200, 404, 200, 200, 401]
    assert all(set(r.headers) >= RATE_HEADERS for r in responses)
    assert responses[2].headers["x-ratelimit-resource"] == "graphql"


async def test_remaining_falls_per_charged_request_and_resets_after_the_hour(
    clock: FakeClock, github: httpx.AsyncClient, repo: Repo
) -> None:
    start = clock.now()
    first = _rate(await github.get("/repos/acme/api/pulls"))
    second = _rate(await github.get("/repos/acme/api/pulls"))
    clock.advance(3599)
    still = _rate(await github.get("/repos/acme/api/pulls"))
    clock.advance(1)
    fresh = _rate(await github.get("/repos/acme/api/pulls"))

    assert first == (5000, 4999, 1, int(start) + 3600, "core")
    assert second[1:3] == (4998, 2)
    assert still[1:4] == (4997, 3, int(start) + 3600)
    assert fresh[1:4] == (4999, 1, int(start) + 7200)


async def test_the_bucket_is_the_users_so_other_consumers_drain_it_too(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.issue_token(alice, "gho_agent_token")
    fake.world.consume(alice, "core", 1200)
    async with fake.client("gho_agent_token") as agent:
        await agent.get("/repos/acme/api/pulls")

    seen = _rate(await github.get("/repos/acme/api/pulls"))

    assert seen[1:3] == (5000 - 1202, 1202)


async def test_an_exhausted_core_bucket_refuses_until_the_reset(
    fake: FakeGitHub, clock: FakeClock, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.consume(alice, "core", 5000)

    refused = await github.get("/repos/acme/api/pulls")
    graphql = await github.post("/graphql", json={"query": "{ viewer { login } }"})
    clock.advance(3600)
    served = await github.get("/repos/acme/api/pulls")

    assert refused.status_code == 403
    assert _rate(refused)[1] == 0
    assert refused.json()["message"].startswith(f"API rate limit exceeded for user ID {alice.id}.")
    assert "retry-after" not in refused.headers
    assert graphql.json()["data"] == {"viewer": {"login": "alice"}}  # another bucket
    assert served.status_code == 200
    assert not fake.log.entries[0].charged


async def test_a_primary_exhaustion_fault_drains_the_bucket_with_403_or_429(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo
) -> None:
    fake.faults.inject("/repos/*", PrimaryExhausted(status=429))

    injected = await github.get("/repos/acme/api/pulls")
    natural = await github.get("/repos/acme/api/pulls")

    assert (injected.status_code, natural.status_code) == (429, 403)
    assert _rate(injected)[1] == _rate(natural)[1] == 0
    assert [e.fault for e in fake.log.entries] == ["PrimaryExhausted", None]


async def test_an_exhausted_graphql_bucket_answers_rate_limited_with_200(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.consume(alice, "graphql", 5000)

    limited = await github.post("/graphql", json={"query": "{ viewer { login } }"})
    rest = await github.get("/repos/acme/api/pulls")

    assert limited.status_code == 200
    assert limited.json() == {
        "errors": [
            {"type": "RATE_LIMITED", "message": f"API rate limit exceeded for user ID {alice.id}."}
        ]
    }
    assert _rate(limited)[1] == 0
    assert rest.status_code == 200


async def test_rate_limit_endpoint_is_free_and_answers_when_exhausted(
    fake: FakeGitHub, github: httpx.AsyncClient, alice: Account
) -> None:
    fake.world.consume(alice, "core", 5000)
    fake.world.consume(alice, "graphql", 7)

    answer = await github.get("/rate_limit")
    again = await github.get("/rate_limit")

    assert answer.status_code == 200
    resources = answer.json()["resources"]
    assert (resources["core"]["remaining"], resources["core"]["used"]) == (0, 5000)
    assert (resources["graphql"]["remaining"], resources["graphql"]["used"]) == (4993, 7)
    assert again.json() == answer.json()
    assert fake.log.points() == 0


async def test_a_bad_token_is_401_and_uncharged(fake: FakeGitHub, alice: Account) -> None:
    async with fake.client("ghp_wrong") as client:
        response = await client.get("/user")

    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"
    assert fake.world.rate_limits.bucket(alice.login, "core").used == 0


async def test_a_request_without_a_user_agent_is_refused(fake: FakeGitHub, alice: Account) -> None:
    async with fake.client(TOKEN) as client:
        response = await client.get("/user", headers={"User-Agent": ""})

    assert response.status_code == 403
    assert "User-Agent" in response.text


async def test_the_request_log_counts_what_was_charged(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo
) -> None:
    etag = (await github.get("/repos/acme/api/pulls")).headers["etag"]
    for _ in range(3):
        await github.get("/repos/acme/api/pulls", headers={"If-None-Match": etag})
    await github.post("/graphql", json={"query": "{ viewer { login } }"})

    assert fake.log.charged_requests("core") == 1
    assert fake.log.points("graphql") == 1
    assert len(fake.log.matching("/repos/*/pulls", status=304)) == 3
    assert fake.log.entries[0].token == TOKEN
    assert fake.log.entries[0].headers["x-github-api-version"] == "2022-11-28"
