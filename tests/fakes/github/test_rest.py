"""The REST subset: listings, single PRs, merging, checks and statuses, paging, ETags."""

from __future__ import annotations

import httpx

from tests.fakes.github import FakeClock, FakeGitHub
from tests.fakes.github.model import Account, Repo


async def test_open_pr_listing_has_the_simple_pull_request_fields(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice, draft=True)

    response = await github.get("/repos/acme/api/pulls", params={"state": "open", "per_page": 100})

    assert response.status_code == 200
    [listed] = response.json()
    assert listed["number"] == pr.number
    assert listed["node_id"] == pr.node_id
    assert listed["head"] == listed["head"] | {"ref": "feat/login", "sha": pr.head_sha}
    assert listed["head"]["repo"]["full_name"] == "acme/api"
    assert listed["base"]["ref"] == "main"
    assert listed["draft"] is True
    assert listed["merged_at"] is None
    assert listed["user"]["login"] == "alice"
    # The list endpoint has none of these; a client must not expect them there.
    assert {"merged", "mergeable", "mergeable_state", "additions"}.isdisjoint(listed)


async def test_fork_prs_name_the_fork_and_lose_it_when_it_is_deleted(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    mallory = fake.world.add_user("mallory")
    fork = fake.world.fork(repo, "mallory")
    fake.world.open_pr(repo, head_ref="feat/login", author=mallory, head_repo=fork)

    before = (await github.get("/repos/acme/api/pulls")).json()
    fake.world.delete_repo(fork)
    after = (await github.get("/repos/acme/api/pulls")).json()

    assert before[0]["head"]["repo"]["full_name"] == "mallory/api"
    assert after[0]["head"]["repo"] is None


async def test_merged_and_closed_prs_leave_the_open_listing(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    merged = fake.world.open_pr(repo, head_ref="a", author=alice)
    closed = fake.world.open_pr(repo, head_ref="b", author=alice)
    still_open = fake.world.open_pr(repo, head_ref="c", author=alice)
    fake.world.merge(merged)
    fake.world.close(closed)

    open_numbers = [p["number"] for p in (await github.get("/repos/acme/api/pulls")).json()]
    every = (await github.get("/repos/acme/api/pulls", params={"state": "all"})).json()

    assert open_numbers == [still_open.number]
    by_number = {p["number"]: p for p in every}
    assert by_number[merged.number]["merged_at"] is not None
    assert by_number[closed.number]["merged_at"] is None
    assert by_number[closed.number]["state"] == "closed"


async def test_head_filter_finds_a_branch_pr_in_any_state_and_since_is_ignored(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    fake.world.open_pr(repo, head_ref="feat/other", author=alice)
    fake.world.merge(pr)

    found = await github.get(
        "/repos/acme/api/pulls",
        params={"head": "acme:feat/login", "state": "all", "since": "2099-01-01T00:00:00Z"},
    )

    assert [p["number"] for p in found.json()] == [pr.number]


async def test_single_pr_reports_mergeable_null_while_github_computes_it(
    fake: FakeGitHub, clock: FakeClock, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.mergeability_delay = 5.0
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)

    computing = (await github.get(f"/repos/acme/api/pulls/{pr.number}")).json()
    clock.advance(5)
    computed = (await github.get(f"/repos/acme/api/pulls/{pr.number}")).json()
    fake.world.set_mergeable(pr, conflicting=True)
    conflicting = (await github.get(f"/repos/acme/api/pulls/{pr.number}")).json()

    assert (computing["mergeable"], computing["mergeable_state"]) == (None, "unknown")
    assert (computed["mergeable"], computed["mergeable_state"]) == (True, "clean")
    assert (conflicting["mergeable"], conflicting["mergeable_state"]) == (False, "dirty")
    assert computed["merged"] is False
    assert computed["commits"] == 1


async def test_merge_refuses_a_stale_sha_with_409_and_merges_the_current_one(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    stale = pr.head_sha
    fake.world.push(pr)

    refused = await github.put(f"/repos/acme/api/pulls/{pr.number}/merge", json={"sha": stale})
    merged = await github.put(f"/repos/acme/api/pulls/{pr.number}/merge", json={"sha": pr.head_sha})
    again = await github.put(f"/repos/acme/api/pulls/{pr.number}/merge", json={})

    assert refused.status_code == 409
    assert refused.json()["message"] == "Head branch was modified. Review and try the merge again."
    assert pr.merged_by is alice
    assert merged.status_code == 200
    assert merged.json() == {
        "sha": pr.merge_commit_sha,
        "merged": True,
        "message": "Pull Request successfully merged",
    }
    assert again.status_code == 405


async def test_check_runs_show_the_latest_run_per_name_unless_asked_for_all(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    first = fake.world.add_check_run(pr, "test", conclusion="failure")
    rerun = fake.world.rerun(first)
    fake.world.add_check_run(pr, "lint", conclusion="success")

    latest = (await github.get(f"/repos/acme/api/commits/{pr.head_sha}/check-runs")).json()
    every = (
        await github.get(
            f"/repos/acme/api/commits/{pr.head_sha}/check-runs", params={"filter": "all"}
        )
    ).json()
    by_branch = (await github.get("/repos/acme/api/commits/feat/login/check-runs")).json()

    assert latest["total_count"] == 2
    assert {(r["name"], r["id"], r["status"]) for r in latest["check_runs"]} == {
        ("test", rerun.id, "queued"),
        ("lint", latest["check_runs"][1]["id"], "completed"),
    }
    assert every["total_count"] == 3
    assert by_branch == latest
    run = latest["check_runs"][0]
    assert run["app"]["slug"] == "github-actions"
    assert run["conclusion"] is None
    assert run["pull_requests"][0]["number"] == pr.number


async def test_a_check_on_a_fork_pr_lists_no_pull_requests(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fork = fake.world.fork(repo, "mallory")
    pr = fake.world.open_pr(repo, head_ref="patch", author=alice, head_repo=fork)
    fake.world.add_check_run(pr, "test")

    runs = (await github.get(f"/repos/acme/api/commits/{pr.head_sha}/check-runs")).json()

    assert runs["check_runs"][0]["pull_requests"] == []


async def test_combined_status_counts_the_newest_status_per_context(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    empty = (await github.get(f"/repos/acme/api/commits/{pr.head_sha}/status")).json()
    fake.world.set_status(pr, "ci/jenkins", "pending", target_url="https://ci.example/1")
    fake.world.set_status(pr, "ci/jenkins", "failure", target_url="https://ci.example/1")
    fake.world.set_status(pr, "ci/lint", "success")

    combined = (await github.get(f"/repos/acme/api/commits/{pr.head_sha}/status")).json()

    assert (empty["state"], empty["total_count"], empty["statuses"]) == ("pending", 0, [])
    assert combined["state"] == "failure"
    assert combined["sha"] == pr.head_sha
    assert [(s["context"], s["state"]) for s in combined["statuses"]] == [
        ("ci/jenkins", "failure"),
        ("ci/lint", "success"),
    ]


async def test_an_unknown_ref_is_422_and_an_unknown_repo_404(
    github: httpx.AsyncClient, repo: Repo
) -> None:
    unknown_ref = await github.get("/repos/acme/api/commits/" + "f" * 40 + "/check-runs")
    unknown_repo = await github.get("/repos/acme/nope/pulls")

    assert unknown_ref.status_code == 422
    assert unknown_ref.json()["message"] == "No commit found for SHA: " + "f" * 40
    assert unknown_repo.status_code == 404
    assert unknown_repo.json()["message"] == "Not Found"


async def test_a_private_repo_is_invisible_without_a_token(
    fake: FakeGitHub, github: httpx.AsyncClient, alice: Account
) -> None:
    fake.world.create_repo("acme/secret", private=True)

    async with fake.client() as anonymous:
        hidden = await anonymous.get("/repos/acme/secret/pulls")
    seen = await github.get("/repos/acme/secret/pulls")

    assert (hidden.status_code, seen.status_code) == (404, 200)


async def test_a_renamed_repo_answers_301_to_its_id_route(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    fake.world.rename_repo(repo, "acme/service")

    moved = await github.get("/repos/acme/api/pulls", params={"per_page": 100})
    followed = await github.get(moved.headers["location"])

    assert moved.status_code == 301
    assert moved.headers["location"] == (
        f"http://github.test/repositories/{repo.id}/pulls?per_page=100"
    )
    assert followed.status_code == 200
    assert followed.json()[0]["base"]["repo"]["full_name"] == "acme/service"


async def test_review_comments_and_reviews_are_listed(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    bob = fake.world.add_user("bob")
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    thread = fake.world.add_review_thread(pr, bob, path="app.py", line=12, body="Rename this")
    fake.world.reply(thread, alice, "Done")
    fake.world.add_review(pr, bob, state="CHANGES_REQUESTED", body="See comments")

    comments = (await github.get(f"/repos/acme/api/pulls/{pr.number}/comments")).json()
    reviews = (await github.get(f"/repos/acme/api/pulls/{pr.number}/reviews")).json()

    assert [(c["user"]["login"], c["body"], c["path"], c["line"]) for c in comments] == [
        ("bob", "Rename this", "app.py", 12),
        ("alice", "Done", "app.py", 12),
    ]
    assert comments[1]["in_reply_to_id"] == comments[0]["id"]
    assert "in_reply_to_id" not in comments[0]
    assert [(r["state"], r["user"]["login"]) for r in reviews] == [("CHANGES_REQUESTED", "bob")]


async def test_the_authenticated_user(github: httpx.AsyncClient, fake: FakeGitHub) -> None:
    me = await github.get("/user")
    async with fake.client() as anonymous:
        nobody = await anonymous.get("/user")

    assert me.json() | {"login": "alice", "type": "User", "name": "Alice"} == me.json()
    assert nobody.status_code == 401
    assert nobody.json()["message"] == "Requires authentication"


async def test_unknown_routes_are_json_404s(github: httpx.AsyncClient) -> None:
    response = await github.get("/repos/acme/api/nonsense")

    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"
    assert "x-ratelimit-remaining" in response.headers
