"""The GitHub provider against GitHub-shaped answers: listings and guards, batched
details with per-alias errors and context pages, reviews, job-log tails, merges."""

from __future__ import annotations

import re

import httpx
import pytest
import trio
import trio.testing

from adapters.memory import FakeSCMProvider
from orchestrator.domain.model import CheckStatus, CIState, Mergeability, PRState, ReviewDecision
from orchestrator.domain.scm import (
    CheckKind,
    ChecksSnapshot,
    NotModified,
    PRDetail,
    PRListing,
    PRMissing,
    PRRef,
    RepoRef,
)
from orchestrator.domain.scm_rules import pr_ci, pr_mergeability
from orchestrator.ports import SCMProvider
from tests.github_mock import (
    API,
    MockGitHub,
    graphql_reply,
    make_provider,
    reply,
)

REPO = RepoRef(owner="acme", name="app")
Clock = trio.testing.MockClock


@pytest.fixture
def mock() -> MockGitHub:
    return MockGitHub()


def test_both_providers_satisfy_the_port(mock: MockGitHub) -> None:
    providers: list[SCMProvider] = [make_provider(mock), FakeSCMProvider()]
    assert len(providers) == 2  # the check is mypy's


# --- REST listings and guards ---------------------------------------------------------


def rest_pull(
    number: int, head: str, *, head_repo: str | None = "acme/app", **more: object
) -> dict[str, object]:
    return {
        "number": number,
        "node_id": f"PR_{number}",
        "html_url": f"https://github.com/acme/app/pull/{number}",
        "url": f"{API}/repos/acme/app/pulls/{number}",
        "title": f"PR {number}",
        "state": "open",
        "draft": False,
        "merged_at": None,
        "user": {"login": "dev", "type": "User"},
        "head": {
            "ref": head,
            "sha": f"sha{number}",
            "repo": {"full_name": head_repo} if head_repo else None,
        },
        "base": {"ref": "main", "sha": "base", "repo": {"full_name": "acme/app"}},
        "created_at": "2026-03-01T10:00:00Z",
        "updated_at": "2026-03-01T11:00:00Z",
        "closed_at": None,
        "labels": [],
        **more,
    }


async def test_the_open_pr_listing_follows_every_page(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    next_page = f"{API}/repositories/1/pulls?state=open&per_page=100&page=2"
    first = reply(
        [rest_pull(1, "feat/a"), rest_pull(2, "feat/b", head_repo=None, draft=True)],
        etag='W/"page1"',
        headers={"link": f'<{next_page}>; rel="next", <{next_page}>; rel="last"'},
    )
    second = reply([rest_pull(3, "feat/c", user={"login": "dependabot[bot]", "type": "Bot"})])
    mock.on("GET", r"/repos/acme/app/pulls\?", first)
    mock.on("GET", r"/repositories/1/pulls\?.*page=2", second)
    listing = await make_provider(mock).list_open_prs(REPO)
    assert isinstance(listing, PRListing)
    assert listing.etag == 'W/"page1"'
    assert [(p.number, p.head_ref, p.head_repo, p.state) for p in listing.prs] == [
        (1, "feat/a", "acme/app", PRState.OPEN),
        (2, "feat/b", None, PRState.DRAFT),
        (3, "feat/c", "acme/app", PRState.OPEN),
    ]
    assert listing.prs[2].author_is_bot
    assert listing.prs[0].node_id == "PR_1"
    params = mock.requests[0].url.params
    assert dict(params) == {
        "state": "open",
        "sort": "updated",
        "direction": "desc",
        "per_page": "100",
    }
    assert "if-none-match" not in mock.requests[1].headers  # only page one is conditional


async def test_prs_of_a_branch_in_any_state(autojump_clock: Clock, mock: MockGitHub) -> None:
    merged = rest_pull(7, "feat/a", state="closed", merged_at="2026-03-01T12:00:00Z")
    mock.on("GET", r"/repos/acme/app/pulls\?", reply([merged]))
    [found] = await make_provider(mock).find_prs_for_branch(REPO, "acme", "feat/a")
    assert found.state is PRState.MERGED
    assert dict(mock.requests[0].url.params) == {
        "head": "acme:feat/a",
        "state": "all",
        "per_page": "10",
    }


def check_run(
    run_id: int, name: str, status: str = "completed", conclusion: str | None = "success"
) -> dict[str, object]:
    return {
        "id": run_id,
        "node_id": f"CR_{run_id}",
        "head_sha": "abc",
        "name": name,
        "status": status,
        "conclusion": conclusion,
        "details_url": f"https://github.com/acme/app/actions/runs/9/job/{run_id}",
        "html_url": f"https://github.com/acme/app/runs/{run_id}",
        "started_at": "2026-03-01T10:00:00Z",
        "completed_at": "2026-03-01T10:05:00Z" if status == "completed" else None,
        "output": {"title": None, "summary": None, "text": None, "annotations_count": 0},
        "app": {"slug": "github-actions", "id": 15368},
        "pull_requests": [],
    }


async def test_the_check_runs_guard(autojump_clock: Clock, mock: MockGitHub) -> None:
    runs = {
        "total_count": 2,
        "check_runs": [
            check_run(11, "test", conclusion="failure"),
            check_run(12, "lint", "in_progress", None),
        ],
    }
    mock.on("GET", r"/commits/abc/check-runs\?", reply(runs, etag='W/"cr1"'))
    snapshot = await make_provider(mock).check_runs(REPO, "abc")
    assert isinstance(snapshot, ChecksSnapshot)
    assert snapshot.etag == 'W/"cr1"'
    assert [(c.name, c.status, c.conclusion, c.provider_id, c.app) for c in snapshot.checks] == [
        ("test", CheckStatus.FAILED, "failure", 11, "github-actions"),
        ("lint", CheckStatus.IN_PROGRESS, None, 12, "github-actions"),
    ]
    assert snapshot.checks[0].url.endswith("/job/11")
    assert mock.requests[0].url.params["per_page"] == "100"
    mock.on("GET", r"/commits/abc/check-runs\?", reply(status=304, etag='W/"cr1"'))
    assert await make_provider(mock).check_runs(REPO, "abc", etag='W/"cr1"') == NotModified(
        etag='W/"cr1"'
    )


async def test_more_than_a_page_of_check_runs_is_read_whole_and_fingerprinted(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    page2 = f"{API}/repos/acme/app/commits/abc/check-runs?per_page=100&page=2"
    first = reply(
        {"total_count": 150, "check_runs": [check_run(i, f"job{i}") for i in range(100)]},
        etag='W/"p1"',
        headers={"link": f'<{page2}>; rel="next"'},
    )
    second = reply(
        {"total_count": 150, "check_runs": [check_run(i, f"job{i}") for i in range(100, 150)]}
    )
    mock.on("GET", r"/check-runs\?per_page=100$", first)
    mock.on("GET", r"/check-runs\?per_page=100&page=2", second)
    snapshot = await make_provider(mock).check_runs(REPO, "abc")
    assert isinstance(snapshot, ChecksSnapshot)
    assert len(snapshot.checks) == 150
    assert snapshot.etag is None  # page one's validator does not cover page two
    assert snapshot.fingerprint


async def test_the_commit_status_guard(autojump_clock: Clock, mock: MockGitHub) -> None:
    combined = {
        "state": "failure",
        "sha": "abc",
        "total_count": 2,
        "statuses": [
            {
                "id": 1,
                "context": "ci/jenkins",
                "state": "failure",
                "target_url": "https://jenkins/1",
                "description": "",
                "created_at": "2026-03-01T10:00:00Z",
                "updated_at": "2026-03-01T10:00:00Z",
            },
            {
                "id": 2,
                "context": "ci/lint",
                "state": "pending",
                "target_url": None,
                "description": "",
                "created_at": "2026-03-01T10:00:00Z",
                "updated_at": "2026-03-01T10:00:00Z",
            },
        ],
    }
    mock.on("GET", r"/commits/abc/status\?", reply(combined, etag='W/"st"'))
    snapshot = await make_provider(mock).commit_status(REPO, "abc")
    assert isinstance(snapshot, ChecksSnapshot)
    assert snapshot.state == "failure"
    assert [(c.name, c.kind, c.status, c.url) for c in snapshot.checks] == [
        ("ci/jenkins", CheckKind.STATUS, CheckStatus.FAILED, "https://jenkins/1"),
        ("ci/lint", CheckKind.STATUS, CheckStatus.IN_PROGRESS, ""),
    ]


# --- GraphQL details -----------------------------------------------------------------


def gql_check_run(
    db_id: int, name: str, conclusion: str | None = "SUCCESS", status: str = "COMPLETED"
) -> dict[str, object]:
    return {
        "__typename": "CheckRun",
        "databaseId": db_id,
        "name": name,
        "status": status,
        "conclusion": conclusion,
        "detailsUrl": f"https://github.com/acme/app/actions/runs/9/job/{db_id}",
        "startedAt": "2026-03-01T10:00:00Z",
        "completedAt": "2026-03-01T10:05:00Z",
        "checkSuite": {"app": {"slug": "github-actions"}},
    }


def gql_pr(
    number: int,
    contexts: list[dict[str, object]],
    *,
    rollup: str | None = "SUCCESS",
    has_next: bool = False,
    **more: object,
) -> dict[str, object]:
    commit: dict[str, object] = {"oid": f"sha{number}", "statusCheckRollup": None}
    if rollup is not None:
        commit["statusCheckRollup"] = {
            "state": rollup,
            "contexts": {
                "pageInfo": {"hasNextPage": has_next, "endCursor": "CUR1" if has_next else None},
                "nodes": contexts,
            },
        }
    return {
        "id": f"PR_{number}",
        "number": number,
        "url": f"https://github.com/acme/app/pull/{number}",
        "state": "OPEN",
        "isDraft": False,
        "merged": False,
        "closed": False,
        "title": f"PR {number}",
        "headRefName": f"feat/{number}",
        "headRefOid": f"sha{number}",
        "baseRefName": "main",
        "headRepository": {"nameWithOwner": "acme/app"},
        "author": {"login": "dev", "__typename": "User"},
        "mergeable": "MERGEABLE",
        "mergeStateStatus": "CLEAN",
        "reviewDecision": "APPROVED",
        "createdAt": "2026-03-01T10:00:00Z",
        "updatedAt": "2026-03-01T11:00:00Z",
        "mergedAt": None,
        "closedAt": None,
        "commits": {"nodes": [{"commit": commit}]},
        **more,
    }


def refs(*numbers: int) -> list[PRRef]:
    return [PRRef(repo=REPO, number=n) for n in numbers]


async def test_a_batch_answers_each_pr_and_a_missing_one_fails_alone(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    status_context: dict[str, object] = {
        "__typename": "StatusContext",
        "context": "ci/jenkins",
        "state": "PENDING",
        "targetUrl": "https://jenkins/2",
        "createdAt": "2026-03-01T10:00:00Z",
    }
    data = {
        "pr0": {
            "pullRequest": gql_pr(
                1, [gql_check_run(11, "test", "FAILURE"), status_context], rollup="FAILURE"
            )
        },
        "pr1": {"pullRequest": None},
        "pr2": {"pullRequest": gql_pr(3, [], rollup=None)},
        "rateLimit": {"cost": 1, "remaining": 4990, "resetAt": "2026-03-01T13:00:00Z"},
    }
    missing: dict[str, object] = {
        "type": "NOT_FOUND",
        "path": ["pr1", "pullRequest"],
        "message": "Could not resolve to a PullRequest with the number of 2.",
    }
    mock.on("POST", r"/graphql$", graphql_reply(data, [missing]))
    first, second, third = await make_provider(mock).fetch_pull_requests(refs(1, 2, 3))
    assert isinstance(first, PRDetail)
    assert (first.node_id, first.head_sha, first.head_repo, first.review) == (
        "PR_1",
        "sha1",
        "acme/app",
        ReviewDecision.APPROVED,
    )
    assert [(c.name, c.kind, c.status, c.provider_id) for c in first.checks] == [
        ("test", CheckKind.CHECK_RUN, CheckStatus.FAILED, 11),
        ("ci/jenkins", CheckKind.STATUS, CheckStatus.IN_PROGRESS, None),
    ]
    assert pr_ci(first) is CIState.FAILING
    assert pr_mergeability(first) is Mergeability.UNSTABLE
    assert second == PRMissing(
        ref=refs(2)[0], reason="Could not resolve to a PullRequest with the number of 2."
    )
    assert isinstance(third, PRDetail)
    assert pr_ci(third) is CIState.UNKNOWN  # no checks yet is not failing
    body = MockGitHub.body(mock.requests[0])
    assert body["variables"] == {
        "o0": "acme",
        "n0": "app",
        "p0": 1,
        "o1": "acme",
        "n1": "app",
        "p1": 2,
        "o2": "acme",
        "n2": "app",
        "p2": 3,
    }
    assert "pr2: repository(owner: $o2, name: $n2)" in str(body["query"])


def batch_size(request: httpx.Request) -> int:
    variables = MockGitHub.body(request)["variables"]
    assert isinstance(variables, dict)
    return len(variables) // 3  # owner, name and number per PR


def batch_echo(request: httpx.Request, _: re.Match[str]) -> httpx.Response:
    """Answer every alias of a batch query with the PR its variables name."""
    variables = MockGitHub.body(request)["variables"]
    assert isinstance(variables, dict)
    data = {
        f"pr{i}": {"pullRequest": gql_pr(variables[f"p{i}"], [])}
        for i in range(len(variables) // 3)
    }
    return graphql_reply(data)


async def test_refs_are_fetched_25_to_a_query(autojump_clock: Clock, mock: MockGitHub) -> None:
    mock.on("POST", r"/graphql$", batch_echo)
    details = await make_provider(mock).fetch_pull_requests(refs(*range(1, 31)))
    assert [d.ref.number if isinstance(d, PRMissing) else d.number for d in details] == list(
        range(1, 31)
    )
    sizes = [batch_size(r) for r in mock.requests]
    assert sizes == [25, 5]


async def test_a_batch_that_times_out_is_split_in_halves(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    def big_fails(request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        variables = MockGitHub.body(request)["variables"]
        assert isinstance(variables, dict)
        if len(variables) > 6:
            return reply({"message": "Something went wrong"}, 502, resource="graphql")
        return batch_echo(request, match)

    mock.on("POST", r"/graphql$", big_fails)
    details = await make_provider(mock).fetch_pull_requests(refs(1, 2, 3, 4))
    assert [d.number for d in details if isinstance(d, PRDetail)] == [1, 2, 3, 4]
    sizes = [batch_size(r) for r in mock.requests]
    assert sizes == [4, 2, 2]


async def test_check_contexts_past_the_first_page_are_read(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    first = {"pr0": {"pullRequest": gql_pr(1, [gql_check_run(1, "a")], has_next=True)}}
    rest = {
        "repository": {
            "pullRequest": {
                "commits": {
                    "nodes": [
                        {
                            "commit": {
                                "oid": "sha1",
                                "statusCheckRollup": {
                                    "contexts": {
                                        "pageInfo": {"hasNextPage": False, "endCursor": None},
                                        "nodes": [gql_check_run(2, "b", "FAILURE")],
                                    }
                                },
                            }
                        }
                    ]
                }
            }
        }
    }
    mock.on("POST", r"/graphql$", graphql_reply(first), graphql_reply(rest))
    [detail] = await make_provider(mock).fetch_pull_requests(refs(1))
    assert isinstance(detail, PRDetail)
    assert [c.name for c in detail.checks] == ["a", "b"]
    assert detail.checks_complete
    assert MockGitHub.body(mock.requests[1])["variables"] == {
        "o": "acme",
        "n": "app",
        "p": 1,
        "after": "CUR1",
    }
    assert pr_ci(detail) is CIState.FAILING


async def test_an_unreadable_context_page_leaves_the_set_partial(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    first = {"pr0": {"pullRequest": gql_pr(1, [gql_check_run(1, "a")], has_next=True)}}
    mock.on(
        "POST",
        r"/graphql$",
        graphql_reply(first),
        reply({"message": "boom"}, 502, resource="graphql"),
    )
    [detail] = await make_provider(mock).fetch_pull_requests(refs(1))
    assert isinstance(detail, PRDetail)
    assert not detail.checks_complete
    assert pr_ci(detail) is CIState.UNKNOWN  # the rollup says success, but not all was seen
