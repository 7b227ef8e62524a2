"""``FakeSCMProvider``: the in-memory source-control provider for engine tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from orchestrator.domain.model import (
    PRState,
)
from orchestrator.domain.scm import (
    CheckKind,
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
    SCMNotFound,
    SCMPriority,
)
from orchestrator.domain.scm_rules import LogTail, checks_fingerprint


def _etag_of(value: object) -> str:
    return 'W/"' + hashlib.sha256(msgspec.json.encode(value)).hexdigest()[:32] + '"'


class FakeSCMProvider:
    """``SCMProvider`` over an in-memory GitHub: PRs (``PRDetail`` values, checks
    included), reviews and job logs. A guard's ETag is a digest of what it returns, so an
    unchanged world answers ``NotModified`` as GitHub does. ``fail(method, error)`` makes
    the next calls of a method raise; ``calls`` records every call."""

    def __init__(self) -> None:
        self.prs: dict[tuple[str, int], PRDetail] = {}
        self.reviews: dict[tuple[str, int], ReviewSnapshot] = {}
        self.logs: dict[tuple[str, int], str] = {}
        self.auth = SCMAuthState(available=True, source="fake")
        self.budget = RateBudgetSnapshot()
        self.calls: list[str] = []
        self.merged: list[tuple[PRRef, str, MergeMethod]] = []
        self.default_branch = "main"  # what listings report as every repository's
        self._failures: dict[str, list[BaseException]] = {}

    # -- scenario helpers

    def put_pr(self, detail: PRDetail) -> PRDetail:
        self.prs[(detail.repo.full_name.lower(), detail.number)] = detail
        return detail

    def update_pr(self, repo: RepoRef, number: int, **changes: object) -> PRDetail:
        key = (repo.full_name.lower(), number)
        return self.put_pr(msgspec.structs.replace(self.prs[key], **changes))

    def put_reviews(self, repo: RepoRef, number: int, snapshot: ReviewSnapshot) -> None:
        self.reviews[(repo.full_name.lower(), number)] = snapshot

    def put_log(self, repo: RepoRef, job_id: int, text: str) -> None:
        self.logs[(repo.full_name.lower(), job_id)] = text

    def fail(self, method: str, error: BaseException, *, times: int = 1) -> None:
        self._failures.setdefault(method, []).extend([error] * times)

    def _enter(self, method: str, *args: object) -> None:
        self.calls.append(" ".join([method, *map(str, args)]))
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    def _of_repo(self, repo: RepoRef) -> list[PRDetail]:
        return [d for (name, _), d in self.prs.items() if name == repo.full_name.lower()]

    def _summary(self, detail: PRDetail) -> PRSummary:
        return PRSummary(
            node_id=detail.node_id,
            number=detail.number,
            url=detail.url,
            title=detail.title,
            state=detail.state,
            head_ref=detail.head_ref,
            head_sha=detail.head_sha,
            head_repo=detail.head_repo,
            base_ref=detail.base_ref,
            author=detail.author,
            updated_at=detail.updated_at,
            default_branch=self.default_branch,
        )

    # -- SCMProvider

    def rate_budget(self) -> RateBudgetSnapshot:
        return self.budget

    async def auth_state(self) -> SCMAuthState:
        self._enter("auth_state")
        return self.auth

    async def list_open_prs(
        self,
        repo: RepoRef,
        *,
        etag: str | None = None,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> PRListing | NotModified:
        self._enter("list_open_prs", repo.full_name)
        open_prs = [d for d in self._of_repo(repo) if d.state in (PRState.OPEN, PRState.DRAFT)]
        open_prs.sort(key=lambda d: d.updated_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        prs = tuple(self._summary(d) for d in open_prs)
        current = _etag_of(prs)
        return NotModified(etag=current) if etag == current else PRListing(etag=current, prs=prs)

    async def find_prs_for_branch(
        self,
        repo: RepoRef,
        head_owner: str,
        branch: str,
        *,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> tuple[PRSummary, ...]:
        self._enter("find_prs_for_branch", repo.full_name, f"{head_owner}:{branch}")
        return tuple(
            self._summary(d)
            for d in self._of_repo(repo)
            if d.head_ref == branch
            and (d.head_repo or "").split("/")[0].lower() == head_owner.lower()
        )

    async def _checks(
        self, method: str, repo: RepoRef, sha: str, kind: CheckKind, etag: str | None
    ) -> ChecksSnapshot | NotModified:
        self._enter(method, repo.full_name, sha)
        checks = tuple(
            c for d in self._of_repo(repo) if d.head_sha == sha for c in d.checks if c.kind is kind
        )
        current = _etag_of(checks)
        if etag == current:
            return NotModified(etag=current)
        return ChecksSnapshot(
            etag=current, commit=sha, checks=checks, fingerprint=checks_fingerprint(checks)
        )

    async def check_runs(
        self,
        repo: RepoRef,
        sha: str,
        *,
        etag: str | None = None,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> ChecksSnapshot | NotModified:
        return await self._checks("check_runs", repo, sha, CheckKind.CHECK_RUN, etag)

    async def commit_status(
        self,
        repo: RepoRef,
        sha: str,
        *,
        etag: str | None = None,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> ChecksSnapshot | NotModified:
        return await self._checks("commit_status", repo, sha, CheckKind.STATUS, etag)

    async def fetch_pull_requests(
        self, refs: Sequence[PRRef], *, priority: SCMPriority = SCMPriority.BACKGROUND
    ) -> list[PRDetail | PRMissing]:
        self._enter("fetch_pull_requests", *(f"{r.repo.full_name}#{r.number}" for r in refs))
        found: list[PRDetail | PRMissing] = []
        for ref in refs:
            detail = self.prs.get((ref.repo.full_name.lower(), ref.number))
            found.append(detail or PRMissing(ref=ref, reason="not found"))
        return found

    async def fetch_reviews(
        self, ref: PRRef, *, priority: SCMPriority = SCMPriority.BACKGROUND
    ) -> ReviewSnapshot:
        self._enter("fetch_reviews", f"{ref.repo.full_name}#{ref.number}")
        key = (ref.repo.full_name.lower(), ref.number)
        if key not in self.prs:
            raise SCMNotFound(f"{ref.repo.full_name}#{ref.number}: no such pull request")
        return self.reviews.get(key) or ReviewSnapshot(decision=self.prs[key].review)

    async def fetch_log_tail(
        self, repo: RepoRef, job_id: int, *, priority: SCMPriority = SCMPriority.BACKGROUND
    ) -> str:
        self._enter("fetch_log_tail", repo.full_name, job_id)
        text = self.logs.get((repo.full_name.lower(), job_id))
        if text is None:
            raise SCMNotFound(f"no log for job {job_id}")
        tail = LogTail()
        tail.feed(text.encode())
        return tail.text()

    async def merge(
        self,
        ref: PRRef,
        *,
        sha: str,
        method: MergeMethod = MergeMethod.SQUASH,
        priority: SCMPriority = SCMPriority.KICK,
    ) -> MergeOutcome:
        self._enter("merge", f"{ref.repo.full_name}#{ref.number}", sha)
        key = (ref.repo.full_name.lower(), ref.number)
        detail = self.prs.get(key)
        if detail is None:
            raise SCMNotFound(f"{ref.repo.full_name}#{ref.number}: no such pull request")
        if detail.head_sha != sha:
            return MergeOutcome(merged=False, message="Head branch was modified")
        if detail.state is not PRState.OPEN:
            return MergeOutcome(merged=False, message="Pull Request is not mergeable")
        self.merged.append((ref, sha, method))
        self.put_pr(msgspec.structs.replace(detail, state=PRState.MERGED))
        return MergeOutcome(merged=True, sha=f"merge-{sha}", message="Pull Request merged")


__all__ = ["FakeSCMProvider"]
