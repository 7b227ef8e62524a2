"""One contract for every ``SCMProvider``: the in-memory fake engine tests use, and the
GitHub provider over answers rendered, as GitHub shapes them, from the same PRs. What
the fake promises (validators, order, missing PRs, clean log tails, the merge guard),
GitHub does too."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
import pytest
import trio.testing

from adapters.memory import FakeSCMProvider
from orchestrator.domain.model import CheckStatus, PRState, ReviewDecision
from orchestrator.domain.scm import (
    CheckKind,
    ChecksSnapshot,
    NotModified,
    PRDetail,
    PRListing,
    PRMissing,
    PRRef,
    RepoRef,
    SCMCheck,
    SCMNotFound,
)
from orchestrator.ports import SCMProvider
from tests.github_mock import BLOB, MockGitHub, graphql_reply, make_provider, reply

REPO = RepoRef(owner="acme", name="app")
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def iso(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


class GitHubWorld:
    """The PRs, rendered the way GitHub's REST and GraphQL APIs answer for them."""

    def __init__(self) -> None:
        self.prs: dict[int, PRDetail] = {}
        self.logs: dict[int, str] = {}

    def install(self, mock: MockGitHub) -> None:
        base = r"/repos/acme/app"
        mock.on("GET", base + r"/pulls\?", self._pulls)
        mock.on("GET", base + r"/commits/(?P<sha>[^/]+)/check-runs", self._check_runs)
        mock.on("GET", base + r"/commits/(?P<sha>[^/]+)/status", self._status)
        mock.on("GET", base + r"/actions/jobs/(?P<job>\d+)/logs$", self._log_redirect)
        mock.on("GET", r"^https://blob\.test/(?P<job>\d+)", self._log_blob)
        mock.on("PUT", base + r"/pulls/(?P<number>\d+)/merge$", self._merge)
        mock.on("POST", r"/graphql$", self._graphql)

    @staticmethod
    def _conditional(request: httpx.Request, body: object) -> httpx.Response:
        etag = 'W/"' + hashlib.sha256(json.dumps(body).encode()).hexdigest()[:20] + '"'
        if request.headers.get("if-none-match") == etag:
            return reply(status=304, etag=etag)
        return reply(body, etag=etag)

    def _rest_pull(self, pr: PRDetail) -> dict[str, object]:
        return {
            "number": pr.number,
            "node_id": pr.node_id,
            "html_url": pr.url,
            "title": pr.title,
            "state": "open" if pr.state in (PRState.OPEN, PRState.DRAFT) else "closed",
            "draft": pr.state is PRState.DRAFT,
            "merged_at": iso(pr.merged_at or (T0 if pr.state is PRState.MERGED else None)),
            "user": {"login": pr.author, "type": "User"},
            "head": {
                "ref": pr.head_ref,
                "sha": pr.head_sha,
                "repo": {"full_name": pr.head_repo} if pr.head_repo else None,
            },
            "base": {"ref": pr.base_ref, "sha": "base", "repo": {"full_name": "acme/app"}},
            "updated_at": iso(pr.updated_at),
        }

    def _pulls(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        params = request.url.params
        prs = sorted(self.prs.values(), key=lambda p: p.updated_at or T0, reverse=True)
        if "head" in params:
            owner, _, branch = params["head"].partition(":")
            found = [
                p for p in prs if p.head_ref == branch and (p.head_repo or "").startswith(owner)
            ]
            return reply([self._rest_pull(p) for p in found])
        listed = [self._rest_pull(p) for p in prs if p.state in (PRState.OPEN, PRState.DRAFT)]
        return self._conditional(request, listed)

    def _on_commit(self, sha: str, kind: CheckKind) -> list[SCMCheck]:
        return [
            c for p in self.prs.values() if p.head_sha == sha for c in p.checks if c.kind is kind
        ]

    def _check_runs(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        runs = [
            {
                "id": c.provider_id,
                "name": c.name,
                "head_sha": c.commit,
                "status": "completed" if c.conclusion else c.status.value,
                "conclusion": c.conclusion,
                "details_url": c.url,
                "started_at": iso(c.started_at),
                "completed_at": iso(c.completed_at),
                "app": {"slug": c.app} if c.app else None,
            }
            for c in self._on_commit(match["sha"], CheckKind.CHECK_RUN)
        ]
        return self._conditional(request, {"total_count": len(runs), "check_runs": runs})

    def _status(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        statuses = [
            {
                "context": c.name,
                "state": c.conclusion,
                "target_url": c.url,
                "created_at": iso(c.started_at),
            }
            for c in self._on_commit(match["sha"], CheckKind.STATUS)
        ]
        body = {
            "state": "pending",
            "sha": match["sha"],
            "total_count": len(statuses),
            "statuses": statuses,
        }
        return self._conditional(request, body)

    def _log_redirect(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if int(match["job"]) not in self.logs:
            return reply({"message": "Not Found"}, 404)
        return httpx.Response(302, headers={"location": f"{BLOB}/{match['job']}?sig=x"})

    def _log_blob(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return httpx.Response(200, content=self.logs[int(match["job"])].encode())

    def _merge(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        pr = self.prs[int(match["number"])]
        if MockGitHub.body(request)["sha"] != pr.head_sha:
            return reply(
                {"message": "Head branch was modified. Review and try the merge again."}, 409
            )
        self.prs[pr.number] = msgspec.structs.replace(pr, state=PRState.MERGED)
        return reply({"sha": f"merge-{pr.head_sha}", "merged": True, "message": "merged"})

    def _context(self, c: SCMCheck) -> dict[str, object]:
        if c.kind is CheckKind.STATUS:
            return {
                "__typename": "StatusContext",
                "context": c.name,
                "state": (c.conclusion or "").upper(),
                "targetUrl": c.url,
                "createdAt": iso(c.started_at),
            }
        return {
            "__typename": "CheckRun",
            "databaseId": c.provider_id,
            "name": c.name,
            "status": "COMPLETED" if c.conclusion else c.status.value.upper(),
            "conclusion": c.conclusion.upper() if c.conclusion else None,
            "detailsUrl": c.url,
            "startedAt": iso(c.started_at),
            "completedAt": iso(c.completed_at),
            "checkSuite": {"app": {"slug": c.app}} if c.app else None,
        }

    def _gql_pr(self, pr: PRDetail) -> dict[str, object]:
        rollup = None
        if pr.rollup_state is not None:
            rollup = {
                "state": pr.rollup_state,
                "contexts": {
                    "pageInfo": {"hasNextPage": False, "endCursor": None},
                    "nodes": [self._context(c) for c in pr.checks],
                },
            }
        return {
            "id": pr.node_id,
            "number": pr.number,
            "url": pr.url,
            "state": {"draft": "OPEN"}.get(pr.state.value, pr.state.value.upper()),
            "isDraft": pr.state is PRState.DRAFT,
            "merged": pr.state is PRState.MERGED,
            "title": pr.title,
            "headRefName": pr.head_ref,
            "headRefOid": pr.head_sha,
            "baseRefName": pr.base_ref,
            "headRepository": {"nameWithOwner": pr.head_repo} if pr.head_repo else None,
            "author": {"login": pr.author, "__typename": "User"},
            "mergeable": pr.mergeable,
            "mergeStateStatus": pr.merge_state,
            "reviewDecision": pr.review.value.upper()
            if pr.review is not ReviewDecision.NONE
            else None,
            "updatedAt": iso(pr.updated_at),
            "mergedAt": iso(pr.merged_at),
            "closedAt": iso(pr.closed_at),
            "commits": {"nodes": [{"commit": {"oid": pr.head_sha, "statusCheckRollup": rollup}}]},
        }

    def _graphql(self, request: httpx.Request, _: re.Match[str]) -> httpx.Response:
        variables = MockGitHub.body(request)["variables"]
        assert isinstance(variables, dict)
        data: dict[str, object] = {}
        errors: list[dict[str, object]] = []
        for i in range(len(variables) // 3):
            pr = self.prs.get(variables[f"p{i}"])
            data[f"pr{i}"] = {"pullRequest": self._gql_pr(pr) if pr else None}
            if pr is None:
                message = (
                    f"Could not resolve to a PullRequest with the number of {variables[f'p{i}']}."
                )
                errors.append(
                    {"type": "NOT_FOUND", "path": [f"pr{i}", "pullRequest"], "message": message}
                )
        return graphql_reply(data, errors)


@dataclass
class Backend:
    provider: SCMProvider
    put_pr: Callable[[PRDetail], PRDetail]
    put_log: Callable[[int, str], object]


@pytest.fixture(params=["memory", "github"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        fake = FakeSCMProvider()
        return Backend(fake, fake.put_pr, lambda job, text: fake.put_log(REPO, job, text))
    world = GitHubWorld()
    mock = MockGitHub()
    world.install(mock)

    def put_pr(detail: PRDetail) -> PRDetail:
        world.prs[detail.number] = detail
        return detail

    return Backend(make_provider(mock), put_pr, world.logs.__setitem__)


def run(number: int, name: str, conclusion: str | None, status: CheckStatus, sha: str) -> SCMCheck:
    return SCMCheck(
        name=name,
        commit=sha,
        status=status,
        conclusion=conclusion,
        url=f"https://github.com/acme/app/actions/runs/1/job/{number}",
        provider_id=number,
        app="github-actions",
        started_at=T0,
        completed_at=T0 + timedelta(minutes=5) if conclusion else None,
    )


def pr(number: int, *, state: PRState = PRState.OPEN, updated: int = 0, **more: object) -> PRDetail:
    sha = f"sha{number}"
    detail = PRDetail(
        repo=REPO,
        node_id=f"PR_{number}",
        number=number,
        url=f"https://github.com/acme/app/pull/{number}",
        title=f"PR {number}",
        state=state,
        head_ref=f"feat/{number}",
        head_sha=sha,
        head_repo="acme/app",
        base_ref="main",
        author="dev",
        mergeable="MERGEABLE",
        merge_state="CLEAN",
        review=ReviewDecision.APPROVED,
        rollup_state="FAILURE",
        checks=(
            run(number * 10, "test", "failure", CheckStatus.FAILED, sha),
            run(number * 10 + 1, "lint", None, CheckStatus.IN_PROGRESS, sha),
            SCMCheck(
                name="ci/jenkins",
                commit=sha,
                status=CheckStatus.PASSED,
                kind=CheckKind.STATUS,
                conclusion="success",
                url="https://jenkins/1",
                started_at=T0,
            ),
        ),
        updated_at=T0 + timedelta(minutes=updated),
    )
    return msgspec.structs.replace(detail, **more)


async def test_the_open_listing_is_newest_first_and_revalidates(
    autojump_clock: trio.testing.MockClock, backend: Backend
) -> None:
    backend.put_pr(pr(1, updated=1))
    backend.put_pr(pr(2, updated=5, state=PRState.DRAFT))
    backend.put_pr(pr(3, updated=9, state=PRState.MERGED))
    listing = await backend.provider.list_open_prs(REPO)
    assert isinstance(listing, PRListing)
    assert [(p.number, p.state, p.head_ref, p.head_sha) for p in listing.prs] == [
        (2, PRState.DRAFT, "feat/2", "sha2"),
        (1, PRState.OPEN, "feat/1", "sha1"),
    ]
    again = await backend.provider.list_open_prs(REPO, etag=listing.etag)
    assert isinstance(again, NotModified)
    assert again.etag == listing.etag
    backend.put_pr(pr(1, updated=1, state=PRState.CLOSED))  # leaves the open set
    changed = await backend.provider.list_open_prs(REPO, etag=listing.etag)
    assert isinstance(changed, PRListing)
    assert [p.number for p in changed.prs] == [2]


async def test_prs_of_a_branch_include_merged_ones(
    autojump_clock: trio.testing.MockClock, backend: Backend
) -> None:
    backend.put_pr(pr(4, state=PRState.MERGED))
    [found] = await backend.provider.find_prs_for_branch(REPO, "acme", "feat/4")
    assert (found.number, found.state) == (4, PRState.MERGED)
    assert await backend.provider.find_prs_for_branch(REPO, "mallory", "feat/4") == ()


async def test_check_guards_answer_each_kind_and_revalidate(
    autojump_clock: trio.testing.MockClock, backend: Backend
) -> None:
    backend.put_pr(pr(1))
    runs = await backend.provider.check_runs(REPO, "sha1")
    statuses = await backend.provider.commit_status(REPO, "sha1")
    assert isinstance(runs, ChecksSnapshot)
    assert isinstance(statuses, ChecksSnapshot)
    assert [(c.name, c.status, c.provider_id) for c in runs.checks] == [
        ("test", CheckStatus.FAILED, 10),
        ("lint", CheckStatus.IN_PROGRESS, 11),
    ]
    assert [(c.name, c.status, c.kind) for c in statuses.checks] == [
        ("ci/jenkins", CheckStatus.PASSED, CheckKind.STATUS)
    ]
    assert isinstance(await backend.provider.check_runs(REPO, "sha1", etag=runs.etag), NotModified)
    assert isinstance(
        await backend.provider.commit_status(REPO, "sha1", etag=statuses.etag), NotModified
    )
    empty = await backend.provider.check_runs(REPO, "pushed-just-now")
    assert isinstance(empty, ChecksSnapshot)
    assert empty.checks == ()


async def test_details_answer_in_order_and_a_missing_pr_alone_fails(
    autojump_clock: trio.testing.MockClock, backend: Backend
) -> None:
    seeded = [backend.put_pr(pr(1)), backend.put_pr(pr(3, rollup_state=None, checks=()))]
    refs = [PRRef(repo=REPO, number=n) for n in (1, 2, 3)]
    first, second, third = await backend.provider.fetch_pull_requests(refs)
    assert first == seeded[0]  # nothing is lost on the way
    assert isinstance(second, PRMissing)
    assert second.ref == refs[1]
    assert third == seeded[1]


async def test_log_tails_come_cleaned(
    autojump_clock: trio.testing.MockClock, backend: Backend
) -> None:
    backend.put_log(10, "2026-03-01T10:00:00.0000000Z \x1b[31mFAIL\x1b[0m test_login\n")
    assert await backend.provider.fetch_log_tail(REPO, 10) == "FAIL test_login"
    with pytest.raises(SCMNotFound):
        await backend.provider.fetch_log_tail(REPO, 11)


async def test_a_merge_needs_the_current_head(
    autojump_clock: trio.testing.MockClock, backend: Backend
) -> None:
    backend.put_pr(pr(5))
    ref = PRRef(repo=REPO, number=5)
    refused = await backend.provider.merge(ref, sha="stale")
    assert not refused.merged
    merged = await backend.provider.merge(ref, sha="sha5")
    assert merged.merged
    [after] = await backend.provider.fetch_pull_requests([ref])
    assert isinstance(after, PRDetail)
    assert after.state is PRState.MERGED
