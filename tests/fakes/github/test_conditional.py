"""ETags and ``If-None-Match`` (a 304 costs nothing on the primary limit, an ETag changes
exactly when the representation does), and paging with GitHub's ``Link`` header."""

from __future__ import annotations

import httpx

from tests.fakes.github import FakeClock, FakeGitHub
from tests.fakes.github.model import Account, PullRequest, Repo


async def _guard(github: httpx.AsyncClient, path: str, etag: str | None) -> httpx.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return await github.get(path, params={"per_page": 100}, headers=headers)


async def test_a_304_is_free_on_the_primary_limit_and_a_200_is_charged(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.open_pr(repo, head_ref="feat/login", author=alice)

    fresh = await _guard(github, "/repos/acme/api/pulls", None)
    unchanged = await _guard(github, "/repos/acme/api/pulls", fresh.headers["etag"])

    assert fresh.status_code == 200
    assert fresh.headers["etag"].startswith('W/"')
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == fresh.headers["etag"]
    assert int(fresh.headers["x-ratelimit-remaining"]) == 4999
    assert int(unchanged.headers["x-ratelimit-remaining"]) == 4999
    assert [e.charged for e in fake.log.entries] == [True, False]
    assert fake.log.entries[1].if_none_match == fresh.headers["etag"]


async def test_the_pulls_etag_changes_with_the_listing_and_only_then(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    etag = (await _guard(github, "/repos/acme/api/pulls", None)).headers["etag"]

    fake.world.add_check_run(pr, "test", conclusion="failure")
    fake.world.set_status(pr, "ci/jenkins", "failure")
    after_ci = await _guard(github, "/repos/acme/api/pulls", etag)
    fake.world.push(pr)
    after_push = await _guard(github, "/repos/acme/api/pulls", etag)

    assert after_ci.status_code == 304  # CI never touches the PR listing
    assert after_push.status_code == 200
    assert after_push.headers["etag"] != etag


async def test_a_one_item_guard_misses_a_pr_that_closes_below_the_top(
    fake: FakeGitHub, clock: FakeClock, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    closing = fake.world.open_pr(repo, head_ref="feat/old", author=alice)
    clock.advance(60)
    fake.world.open_pr(repo, head_ref="feat/new", author=alice)  # the most recently updated
    query = {"state": "open", "sort": "updated", "direction": "desc"}
    one = await github.get("/repos/acme/api/pulls", params=query | {"per_page": 1})
    full = await github.get("/repos/acme/api/pulls", params=query | {"per_page": 100})

    fake.world.close(closing)
    one_after = await github.get(
        "/repos/acme/api/pulls",
        params=query | {"per_page": 1},
        headers={"If-None-Match": one.headers["etag"]},
    )
    full_after = await github.get(
        "/repos/acme/api/pulls",
        params=query | {"per_page": 100},
        headers={"If-None-Match": full.headers["etag"]},
    )

    assert one_after.status_code == 304  # page 1 of one item did not change
    assert full_after.status_code == 200
    assert [p["head"]["ref"] for p in full_after.json()] == ["feat/new"]


async def test_commit_statuses_change_the_status_etag_but_not_the_check_runs_etag(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    fake.world.add_check_run(pr, "test", conclusion="success")
    runs_path = f"/repos/acme/api/commits/{pr.head_sha}/check-runs"
    status_path = f"/repos/acme/api/commits/{pr.head_sha}/status"
    runs_etag = (await _guard(github, runs_path, None)).headers["etag"]
    status_etag = (await _guard(github, status_path, None)).headers["etag"]

    fake.world.set_status(pr, "ci/jenkins", "failure")

    assert (await _guard(github, runs_path, runs_etag)).status_code == 304
    assert (await _guard(github, status_path, status_etag)).status_code == 200


async def test_the_check_runs_etag_changes_when_a_run_progresses(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    run = fake.world.add_check_run(pr, "test")
    path = f"/repos/acme/api/commits/{pr.head_sha}/check-runs"
    queued = (await _guard(github, path, None)).headers["etag"]

    fake.world.start_check(run)
    started = await _guard(github, path, queued)
    fake.world.finish_check(run, "failure")
    finished = await _guard(github, path, started.headers["etag"])

    assert started.status_code == 200
    assert finished.status_code == 200
    assert finished.json()["check_runs"][0]["conclusion"] == "failure"


async def test_a_rotated_etag_still_earns_a_304_and_hands_out_the_new_one(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    old = (await _guard(github, "/repos/acme/api/pulls", None)).headers["etag"]

    fake.gateway.rotate_etags()
    revalidated = await _guard(github, "/repos/acme/api/pulls", old)

    assert revalidated.status_code == 304
    assert revalidated.headers["etag"] != old
    assert (
        await _guard(github, "/repos/acme/api/pulls", revalidated.headers["etag"])
    ).status_code == 304


async def test_if_none_match_accepts_a_list_and_a_strong_form(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    etag = (await _guard(github, "/repos/acme/api/pulls", None)).headers["etag"]
    strong = etag.removeprefix("W/")

    listed = await _guard(github, "/repos/acme/api/pulls", f'W/"stale", {etag}')
    stripped = await _guard(github, "/repos/acme/api/pulls", strong)
    unknown = await _guard(github, "/repos/acme/api/pulls", 'W/"0000"')

    assert (listed.status_code, stripped.status_code, unknown.status_code) == (304, 304, 200)


def _many_runs(fake: FakeGitHub, pr: PullRequest, count: int) -> None:
    for n in range(count):
        fake.world.add_check_run(pr, f"job-{n:03d}", conclusion="success")


async def test_a_long_list_is_paged_with_link_headers_in_the_repositories_id_form(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    _many_runs(fake, pr, 230)

    first = await github.get(
        f"/repos/acme/api/commits/{pr.head_sha}/check-runs", params={"per_page": 100}
    )
    links = first.links
    second = await github.get(links["next"]["url"])
    third = await github.get(links["last"]["url"])

    base = f"http://github.test/repositories/{repo.id}/commits/{pr.head_sha}/check-runs"
    assert links["next"]["url"] == f"{base}?per_page=100&page=2"
    assert links["last"]["url"] == f"{base}?per_page=100&page=3"
    assert "prev" not in links
    assert set(second.links) == {"prev", "next", "last", "first"}
    assert "next" not in third.links
    names = [r["name"] for page in (first, second, third) for r in page.json()["check_runs"]]
    assert names == [f"job-{n:03d}" for n in range(230)]
    assert first.json()["total_count"] == 230


async def test_per_page_is_capped_at_100_and_a_list_that_fits_has_no_link(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    _many_runs(fake, pr, 120)

    capped = await github.get(
        f"/repos/acme/api/commits/{pr.head_sha}/check-runs", params={"per_page": 500}
    )
    default = await github.get(f"/repos/acme/api/commits/{pr.head_sha}/check-runs")
    fits = await github.get("/repos/acme/api/pulls", params={"per_page": 100})

    assert len(capped.json()["check_runs"]) == 100
    assert len(default.json()["check_runs"]) == 30
    assert "link" not in fits.headers
