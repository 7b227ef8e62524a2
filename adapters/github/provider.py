"""``SCMProvider`` for GitHub: cheap conditional guards, batched details, reviews, log tails.

The observer asks; this module turns each question into the fewest GitHub calls and the
answers into domain values. It never sees sessions. Reads (GETs and GraphQL queries) are
retried with tenacity on network failures, 5xx and short rate-limit waits; a longer wait
propagates as ``SCMRateLimited`` so the caller reschedules instead of holding a task for
minutes. 401, 403, 404 and 422 are never retried, and neither is a merge.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import TypeVar
from urllib.parse import quote

import msgspec

from adapters.github import queries
from adapters.github.client import Fresh, GitHubClient, GraphQLAnswer
from adapters.github.graphql_wire import (
    GqlContext,
    GqlContextsHolder,
    GqlPageInfo,
    GqlPullRequest,
    GqlPullRequestHolder,
    GqlReviewHolder,
    GqlReviewState,
    GqlThread,
    contexts_of,
    detail_from_graphql,
    review_snapshot,
)
from adapters.github.rest_wire import (
    RestCheckRuns,
    RestCombinedStatus,
    RestMerge,
    RestPull,
    checks_from_rest,
    statuses_from_rest,
    summary_from_rest,
)
from adapters.github.retry import Reads, RetryPolicy
from orchestrator.domain.scm import (
    ChecksSnapshot,
    MergeMethod,
    MergeOutcome,
    NotModified,
    PRDetail,
    PRListing,
    PRMissing,
    PRRef,
    PRSummary,
    RateBudgetSnapshot,
    RepoRef,
    ReviewSnapshot,
    SCMAuthState,
    SCMError,
    SCMNotFound,
    SCMPriority,
    SCMRejected,
    SCMUnavailable,
)
from orchestrator.domain.scm_rules import LogTail, checks_fingerprint

log = logging.getLogger(__name__)

T = TypeVar("T")


class GitHubProvider:
    """The GitHub ``SCMProvider``. ``max_pages`` bounds every paged listing."""

    def __init__(
        self,
        client: GitHubClient,
        *,
        batch_size: int = queries.MAX_BATCH,
        log_tail_lines: int = 30,
        log_tail_bytes: int = 8192,
        max_pages: int = 10,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = client
        self._batch_size = max(1, min(batch_size, queries.MAX_BATCH))
        self._log_tail_lines = log_tail_lines
        self._log_tail_bytes = log_tail_bytes
        self._max_pages = max_pages
        self._read = Reads(retry or RetryPolicy(), client.budget)

    # -- state

    def rate_budget(self) -> RateBudgetSnapshot:
        return self._client.budget.snapshot()

    async def auth_state(self) -> SCMAuthState:
        await self._client.tokens.get()
        return self._client.tokens.state()

    # -- guards and listings (REST)

    async def list_open_prs(
        self,
        repo: RepoRef,
        *,
        etag: str | None = None,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> PRListing | NotModified:
        """Every open PR, most recently updated first. Page one is conditional on
        ``etag``: a 304 means none of the 100 most recently updated changed, and a PR
        leaving the open set changes that page."""
        path = _repo_path(repo, "pulls")
        params: dict[str, str | int] = {
            "state": "open",
            "sort": "updated",
            "direction": "desc",
            "per_page": 100,
        }
        first = await self._read(
            partial(self._client.get, path, params=params, etag=etag, priority=priority)
        )
        if isinstance(first, NotModified):
            return first
        pages = await self._rest_pages(first, priority)
        prs = [summary_from_rest(p) for page in pages for p in _decode(page, list[RestPull])]
        return PRListing(etag=first.etag, prs=tuple(prs))

    async def find_prs_for_branch(
        self,
        repo: RepoRef,
        head_owner: str,
        branch: str,
        *,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> tuple[PRSummary, ...]:
        """PRs of any state whose head is ``head_owner:branch``: finds a PR that merged
        or closed before the open listing ever showed it."""
        path = _repo_path(repo, "pulls")
        params: dict[str, str | int] = {
            "head": f"{head_owner}:{branch}",
            "state": "all",
            "per_page": 10,
        }
        page = await self._read(partial(self._client.get, path, params=params, priority=priority))
        return tuple(summary_from_rest(p) for p in _decode(_fresh(page), list[RestPull]))

    async def check_runs(
        self,
        repo: RepoRef,
        sha: str,
        *,
        etag: str | None = None,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> ChecksSnapshot | NotModified:
        """Every check run on commit ``sha`` (GitHub keeps the latest run per name).
        Over 100 runs, the later pages are read too and ``etag`` comes back None."""
        path = _repo_path(repo, "commits", sha, "check-runs")
        params = {"per_page": 100}
        first = await self._read(
            partial(self._client.get, path, params=params, etag=etag, priority=priority)
        )
        if isinstance(first, NotModified):
            return first
        pages = await self._rest_pages(first, priority)
        decoded = [_decode(page, RestCheckRuns) for page in pages]
        checks = tuple(c for runs in decoded for c in checks_from_rest(runs.check_runs, sha))
        return ChecksSnapshot(
            etag=first.etag if len(pages) == 1 else None,
            commit=sha,
            checks=checks,
            fingerprint=checks_fingerprint(checks),
        )

    async def commit_status(
        self,
        repo: RepoRef,
        sha: str,
        *,
        etag: str | None = None,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> ChecksSnapshot | NotModified:
        """Commit ``sha``'s combined legacy status: CI that posts statuses (not check
        runs) changes only this, so without it such CI would never wake a PR up."""
        path = _repo_path(repo, "commits", sha, "status")
        params = {"per_page": 100}
        page = await self._read(
            partial(self._client.get, path, params=params, etag=etag, priority=priority)
        )
        if isinstance(page, NotModified):
            return page
        combined = _decode(page, RestCombinedStatus)
        checks = statuses_from_rest(combined.statuses, sha)
        return ChecksSnapshot(
            etag=page.etag,
            commit=sha,
            checks=checks,
            state=combined.state or None,
            fingerprint=checks_fingerprint(checks),
        )

    async def _rest_pages(self, first: Fresh, priority: SCMPriority) -> list[Fresh]:
        pages = [first]
        while pages[-1].next_url and len(pages) < self._max_pages:
            page = await self._read(
                partial(self._client.get, pages[-1].next_url, priority=priority)
            )
            pages.append(_fresh(page))
        return pages

    # -- details (GraphQL)

    async def fetch_pull_requests(
        self, refs: Sequence[PRRef], *, priority: SCMPriority = SCMPriority.BACKGROUND
    ) -> list[PRDetail | PRMissing]:
        """Details of ``refs``, answer ``i`` for ``refs[i]``: ``PRMissing`` for one that
        GitHub could not resolve, without failing the others."""
        results: list[PRDetail | PRMissing] = []
        for start in range(0, len(refs), self._batch_size):
            results += await self._fetch_chunk(refs[start : start + self._batch_size], priority)
        return results

    async def _fetch_chunk(
        self, chunk: Sequence[PRRef], priority: SCMPriority
    ) -> list[PRDetail | PRMissing]:
        if len(chunk) == 1:
            return await self._details(chunk, priority)
        try:
            # One try at full size: GitHub answers a query that runs over 10 s with a 502
            # or 504, and the cure is a smaller query, not the same one again.
            return await self._details(chunk, priority, retry_unavailable=False)
        except SCMUnavailable as error:
            half = (len(chunk) + 1) // 2
            log.info("GitHub batch of %d failed (%s); retrying as two halves", len(chunk), error)
            first = await self._details(chunk[:half], priority)
            return first + await self._details(chunk[half:], priority)

    async def _details(
        self, chunk: Sequence[PRRef], priority: SCMPriority, *, retry_unavailable: bool = True
    ) -> list[PRDetail | PRMissing]:
        query = queries.pr_batch(chunk)
        answer = await self._read(
            partial(self._client.graphql, query.text, query.variables, priority=priority),
            retry_unavailable=retry_unavailable,
        )
        return [await self._one_detail(ref, i, answer, priority) for i, ref in enumerate(chunk)]

    async def _one_detail(
        self, ref: PRRef, index: int, answer: GraphQLAnswer, priority: SCMPriority
    ) -> PRDetail | PRMissing:
        name = queries.alias(index)
        holder = _decode_raw(answer.data.get(name), GqlPullRequestHolder)
        pr = holder.pull_request if holder else None
        if pr is None:
            said = [e.message for e in answer.errors if e.path and e.path[0] == name]
            return PRMissing(ref=ref, reason="; ".join(said) or "not found")
        more, complete = await self._remaining_contexts(ref, pr, priority)
        return detail_from_graphql(ref.repo, pr, more, complete=complete)

    async def _remaining_contexts(
        self, ref: PRRef, pr: GqlPullRequest, priority: SCMPriority
    ) -> tuple[list[GqlContext | None], bool]:
        """Check contexts past the first 100. A page that cannot be read leaves the set
        incomplete rather than failing the PR: a partial set can still prove failure."""
        contexts = contexts_of(pr)
        more: list[GqlContext | None] = []
        pages = 1
        while contexts is not None and contexts.page_info.has_next_page:
            cursor = contexts.page_info.end_cursor
            if cursor is None or pages >= self._max_pages:
                return more, False
            query = queries.check_contexts_page(ref, cursor)
            try:
                answer = await self._read(
                    partial(self._client.graphql, query.text, query.variables, priority=priority)
                )
                holder = _decode_raw(answer.data.get("repository"), GqlContextsHolder)
            except SCMError as error:
                log.warning("check contexts of %s#%d: %s", ref.repo.full_name, ref.number, error)
                return more, False
            page_pr = holder.pull_request if holder else None
            contexts = contexts_of(page_pr) if page_pr else None
            if contexts is None:
                return more, False
            more += contexts.nodes
            pages += 1
        return more, True

    async def fetch_reviews(
        self, ref: PRRef, *, priority: SCMPriority = SCMPriority.BACKGROUND
    ) -> ReviewSnapshot:
        """The review decision, the newest 50 threads, and one older window when the
        oldest of those is still unresolved; ``partial`` when even older ones exist."""
        state, threads, page_info = await self._review_window(ref, None, priority)
        all_threads: list[GqlThread | None] = list(threads)
        oldest = next((t for t in threads if t is not None), None)
        if page_info.has_previous_page and oldest is not None and not oldest.is_resolved:
            _, older, page_info = await self._review_window(ref, page_info.start_cursor, priority)
            all_threads = [*older, *all_threads]
        return review_snapshot(state, all_threads, partial=page_info.has_previous_page)

    async def _review_window(
        self, ref: PRRef, before: str | None, priority: SCMPriority
    ) -> tuple[GqlReviewState, tuple[GqlThread | None, ...], GqlPageInfo]:
        query = queries.review_threads(ref, before)
        answer = await self._read(
            partial(self._client.graphql, query.text, query.variables, priority=priority)
        )
        holder = _decode_raw(answer.data.get("repository"), GqlReviewHolder)
        state = holder.pull_request if holder else None
        if state is None:
            raise SCMNotFound(f"{ref.repo.full_name}#{ref.number}: no such pull request")
        return state, state.review_threads.nodes, state.review_threads.page_info

    # -- log tails

    async def fetch_log_tail(
        self,
        repo: RepoRef,
        job_id: int,
        *,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> str:
        """The cleaned last lines of an Actions job's log. GitHub answers with a
        redirect to short-lived storage on another host (followed without the token);
        the body is streamed so a log of megabytes costs only the tail. ``SCMNotFound``
        while the job still runs, and for check runs that are not Actions jobs."""
        path = _repo_path(repo, "actions", "jobs", str(job_id), "logs")

        async def read() -> str:
            tail = LogTail(max_lines=self._log_tail_lines, max_bytes=self._log_tail_bytes)
            async with self._client.stream(path, priority=priority) as answer:
                async for chunk in answer.aiter_bytes():
                    tail.feed(chunk)
            return tail.text()

        return await self._read(read)

    # -- writes

    async def merge(
        self,
        ref: PRRef,
        *,
        sha: str,
        method: MergeMethod = MergeMethod.SQUASH,
        priority: SCMPriority = SCMPriority.KICK,
    ) -> MergeOutcome:
        """Merge if the head is still ``sha`` (GitHub refuses otherwise, so a push that
        raced the decision is never merged unseen). Never retried."""
        path = _repo_path(ref.repo, "pulls", str(ref.number), "merge")
        try:
            answer = await self._client.send_json(
                "PUT", path, {"sha": sha, "merge_method": method.value}, priority=priority
            )
        except SCMRejected as refused:  # 405 not mergeable, 409 head moved, 422
            return MergeOutcome(merged=False, message=str(refused))
        result = _decode(answer, RestMerge)
        return MergeOutcome(merged=result.merged, sha=result.sha, message=result.message)


def _repo_path(repo: RepoRef, *parts: str) -> str:
    """``repos/{owner}/{name}/…`` with every segment escaped, so no name can change the path."""
    return "/".join(quote(part, safe="") for part in ("repos", repo.owner, repo.name, *parts))


def _fresh(page: Fresh | NotModified) -> Fresh:
    if isinstance(page, NotModified):  # only a conditional GET may answer 304
        raise SCMUnavailable("GitHub answered 304 to an unconditional request")
    return page


def _decode_raw(raw: msgspec.Raw | None, shape: type[T]) -> T | None:
    """One GraphQL alias' JSON; None when it is null (not found) or absent."""
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=shape | None)
    except msgspec.DecodeError as error:  # malformed, or not the shape asked for
        raise SCMUnavailable(f"GitHub answered with unexpected JSON: {error}") from None


def _decode(page: Fresh, shape: type[T]) -> T:
    try:
        return msgspec.json.decode(page.content, type=shape)
    except msgspec.DecodeError as error:  # malformed, or not the shape asked for
        raise SCMUnavailable(f"GitHub answered with unexpected JSON: {error}") from None
