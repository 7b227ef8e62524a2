"""The fake on real sockets: hypercorn under trio on two loopback ports (two origins)."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.github import Delay, FakeGitHub, Truncate, serve_on_loopback
from tests.fakes.github.conftest import TOKEN
from tests.fakes.github.model import Account, Repo

HEADERS = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "orchestrator-tests"}


async def test_rest_graphql_and_the_cross_origin_log_redirect_over_sockets(
    fake: FakeGitHub, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    for n in range(3):
        fake.world.add_check_run(pr, f"job-{n}", conclusion="failure")
    job = fake.world.latest_runs(repo, pr.head_sha)[0]

    async with (
        serve_on_loopback(fake) as urls,
        httpx.AsyncClient(
            base_url=urls.api, headers=HEADERS, trust_env=False, timeout=10
        ) as github,
    ):
        listing = await github.get("/repos/acme/api/pulls", params={"per_page": 100})
        revalidated = await github.get(
            "/repos/acme/api/pulls",
            params={"per_page": 100},
            headers={"If-None-Match": listing.headers["etag"]},
        )
        paged = await github.get(
            f"/repos/acme/api/commits/{pr.head_sha}/check-runs", params={"per_page": 2}
        )
        next_page = await github.get(paged.links["next"]["url"])
        graphql = await github.post(
            urls.graphql, json={"query": "{ viewer { login } rateLimit { remaining } }"}
        )
        log = await github.get(f"/repos/acme/api/actions/jobs/{job.id}/logs", follow_redirects=True)

    assert (listing.status_code, revalidated.status_code) == (200, 304)
    assert paged.links["next"]["url"].startswith(f"{urls.api}/repositories/{repo.id}/")
    assert len(next_page.json()["check_runs"]) == 1
    assert graphql.json()["data"]["viewer"]["login"] == "alice"
    assert log.status_code == 200
    assert log.url.port == httpx.URL(urls.blob).port != httpx.URL(urls.api).port
    assert [r.authorization for r in fake.blobs.requests] == [None]  # httpx dropped it cross-origin


async def test_a_delayed_answer_times_the_client_out_and_a_cut_body_breaks_the_connection(
    fake: FakeGitHub, repo: Repo
) -> None:
    fake.faults.inject("/graphql", Delay(2.0))
    fake.faults.inject("/repos/*", Truncate(keep=0.5))

    async with (
        serve_on_loopback(fake) as urls,
        httpx.AsyncClient(
            base_url=urls.api, headers=HEADERS, trust_env=False, timeout=0.3
        ) as github,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await github.post("/graphql", json={"query": "{ viewer { login } }"})
        with pytest.raises(httpx.RemoteProtocolError):
            await github.get("/repos/acme/api/pulls")
