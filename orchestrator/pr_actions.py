"""Acting on a session's PR when asked: claiming it for the session, merging it now.

- A claim moves a PR to the session (docs/design.md, D-13). It names the PR by URL, or by
  number in the repository of the session's project (its origin URL).
- A merge on demand holds to the auto-merge's rule: the session's PR, as last observed at
  one head commit, shows CI passing, the review approved and GitHub calling it mergeable
  (``orchestrator.domain.merging.merge_blocker``); the merge names that commit, so GitHub
  refuses it if the head moved since. A refusal is a ``ConflictError`` carrying the reason.
- After either, the SCM observer is kicked for the PR, so its facts follow soon.

``SCMMerger`` is the ``PRMerger`` both use: the ``SCMProvider``'s merge with the configured
method, for PRs named by URL. ``ObserverKicker`` is the ``SCMKicker`` over the observer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import trio

from orchestrator.domain.errors import ConflictError, NotFoundError, TransientError
from orchestrator.domain.merging import merge_blocker, parse_pr_url, pr_url
from orchestrator.domain.model import SessionId
from orchestrator.domain.scm import (
    MergeMethod,
    MergeOutcome,
    PRRef,
    RepoRef,
    SCMError,
    SCMPriority,
    SCMRateLimited,
    SCMRejected,
    SCMUnavailable,
)
from orchestrator.domain.scm_rules import parse_repo_url
from orchestrator.ports import EngineStore, PRMerger, SCMKicker, SCMProvider

log = logging.getLogger(__name__)


class SCMMerger:
    """``PRMerger`` over an ``SCMProvider``, merging with ``method``."""

    def __init__(self, provider: SCMProvider, method: MergeMethod) -> None:
        self._provider = provider
        self._method = method

    async def merge(self, pr_url: str, *, head_sha: str) -> MergeOutcome:
        ref = parse_pr_url(pr_url)
        if ref is None:
            raise SCMRejected(f"{pr_url} is not the URL of a pull request")
        return await self._provider.merge(
            ref, sha=head_sha, method=self._method, priority=SCMPriority.KICK
        )


class _Kickable(Protocol):
    def kick(self, target: RepoRef | PRRef, /) -> object: ...


class ObserverKicker:
    """``SCMKicker`` over an observer whose own ``kick`` takes a repository or a PR and
    coalesces: a delivery naming only a commit (a fork's check) makes the whole repository
    due, which the observer's guards then find cheap."""

    def __init__(self, observer: _Kickable) -> None:
        self._observer = observer

    async def kick(self, repo: RepoRef, pr_number: int | None, head_sha: str | None) -> None:
        target = repo if pr_number is None else PRRef(repo=repo, number=pr_number)
        self._observer.kick(target)
        await trio.lowlevel.checkpoint()


class PRClaimer(Protocol):
    """The lifecycle manager's claim (``LifecycleManager.claim_pr``)."""

    async def claim_pr(
        self, session_id: SessionId, url: str, number: int, /
    ) -> SessionId | None: ...


@dataclass(frozen=True, slots=True)
class Claimed:
    url: str
    previous_owner: SessionId | None


@dataclass(frozen=True, slots=True)
class Merged:
    url: str
    head_sha: str
    outcome: MergeOutcome


class PRActions:
    """Claims and on-demand merges. Without a ``merger`` (no GitHub) a merge is refused."""

    def __init__(
        self,
        store: EngineStore,
        claimer: PRClaimer,
        *,
        merger: PRMerger | None = None,
        kicker: SCMKicker | None = None,
    ) -> None:
        self._store = store
        self._claimer = claimer
        self._merger = merger
        self._kicker = kicker

    async def claim(self, session_id: SessionId, *, url: str = "", number: int = 0) -> Claimed:
        """Claim the PR at ``url``, or PR ``number`` of the session's project repository."""
        if not url:
            url = await self._url_of_number(session_id, number)
        ref = parse_pr_url(url)
        previous = await self._claimer.claim_pr(session_id, url, ref.number if ref else number)
        if ref is not None:
            await self._kick(ref.repo, ref.number, None)
        return Claimed(url=url, previous_owner=previous)

    async def merge(self, session_id: SessionId) -> Merged:
        """Merge the session's PR now, at the head commit it was last observed at."""
        if await self._store.get_session(session_id) is None:
            raise NotFoundError(f"session {session_id!r} not found")
        facts = await self._store.pr_facts_for_session(session_id)
        blocker = merge_blocker(facts)
        if blocker is not None:
            raise ConflictError(f"not merging: {blocker}")
        if self._merger is None:
            raise ConflictError("not merging: GitHub is not configured")
        url, sha = facts.url, facts.head_sha
        try:
            outcome = await self._merger.merge(url, head_sha=sha)
        except SCMUnavailable:
            raise  # worth retrying: the API answers 503
        except SCMRateLimited as error:
            raise TransientError(f"GitHub's rate limit holds until {error.until}") from None
        except SCMError as error:
            raise ConflictError(f"GitHub refused to merge {url} at {sha[:12]}: {error}") from None
        if not outcome.merged:
            raise ConflictError(f"GitHub refused to merge {url} at {sha[:12]}: {outcome.message}")
        ref = parse_pr_url(url)
        if ref is not None:
            await self._kick(ref.repo, ref.number, sha)
        return Merged(url=url, head_sha=sha, outcome=outcome)

    async def _url_of_number(self, session_id: SessionId, number: int) -> str:
        record = await self._store.get_session(session_id)
        if record is None:
            raise NotFoundError(f"session {session_id!r} not found")
        project = await self._store.get_project(record.project_id)
        origin = project.repo_origin_url if project is not None else ""
        repo = parse_repo_url(origin) if origin else None
        if repo is None:
            raise ConflictError(
                f"project {record.project_id} has no repository origin URL to find "
                f"PR #{number} in: claim the PR by its URL"
            )
        return pr_url(repo, number)

    async def _kick(self, repo: RepoRef, number: int, sha: str | None) -> None:
        if self._kicker is None:
            return
        try:
            await self._kicker.kick(repo, number, sha)
        except Exception:  # a kick only hurries the observer: never fail the action for it
            log.exception("kicking the SCM observer for %s#%d failed", repo.full_name, number)
