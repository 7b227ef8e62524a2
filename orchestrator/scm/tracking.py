"""What the observer remembers between polls: each watched repository and each tracked PR.

All of it is in memory: after a restart the observer revalidates everything once, and the
engine's durable dedup keeps that first round from nudging anyone again. ETags a poll
obtained wait here as *pending* until every observation derived from them is durable; only
then are they put into the ETag store, so a lost observation can never hide behind a 304.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from orchestrator.domain.model import CIState, Mergeability, PRState, ReviewDecision, SessionId
from orchestrator.domain.scm import (
    BranchClaim,
    CheckKind,
    PRDetail,
    PRRef,
    PRSummary,
    RepoRef,
    ReviewComment,
    ReviewSnapshot,
)
from orchestrator.domain.scm_rules import pr_ci, pr_mergeability
from orchestrator.ports import ETagKey
from orchestrator.scm.settings import ObserverSettings

LOG_TAIL_ATTEMPTS: Final = 3
"""Reads of one failed job's log before its tail becomes a one-line "log unavailable"."""

NEVER: Final = math.inf

PRKey = tuple[str, int]
"""A PR's identity while tracked: the lower-cased ``owner/name`` and its number."""


def repo_key(repo: RepoRef) -> str:
    return repo.full_name.lower()


def pr_key(ref: PRRef) -> PRKey:
    return (repo_key(ref.repo), ref.number)


def listing_key(repo: RepoRef) -> ETagKey:
    return ("pulls", repo_key(repo))


def checks_key(repo: RepoRef, sha: str) -> ETagKey:
    return ("check-runs", repo_key(repo), sha)


def status_key(repo: RepoRef, sha: str) -> ETagKey:
    return ("status", repo_key(repo), sha)


@dataclass(eq=False)
class TrackedRepo:
    """A repository some live session has a branch in. ``listing`` is the newest open-PR
    listing read (kept so a session added later can be matched against it without asking
    GitHub again); ``pending_etag`` its validator, put once ``waiting_on`` is delivered."""

    ref: RepoRef
    claims: list[BranchClaim] = field(default_factory=list)
    due: float = 0.0
    kicked: bool = False
    listing: tuple[PRSummary, ...] | None = None
    default_branch: str = ""
    pending_etag: str | None = None
    has_pending: bool = False
    waiting_on: set[PRKey] = field(default_factory=set)
    attributed: dict[PRKey, SessionId] = field(default_factory=dict)


@dataclass(eq=False)
class TrackedPR:
    """A PR of a live session, open as far as we know.

    ``dirty``: its details must be fetched (a guard or the listing changed, the backstop
    came due, or it was just found). ``detail`` and ``review`` are the last ones read;
    ``delivered`` is the digest of the last observation the session acknowledged.
    ``fingerprints`` describe the guard answers delivered; ``pending`` holds the validator
    and fingerprint of guard answers not yet delivered."""

    ref: PRRef
    session_id: SessionId
    url: str = ""
    head_sha: str = ""
    updated_at: datetime | None = None
    detail: PRDetail | None = None
    review: ReviewSnapshot | None = None
    dirty: bool = True
    review_wanted: bool = True
    kicked: bool = False
    delivered: bytes | None = None
    guard_due: float = 0.0
    review_due: float = NEVER
    detail_at: float = -NEVER
    not_before: float = 0.0
    status_sha: str = ""  # the head whose combined status was last read
    fingerprints: dict[ETagKey, str] = field(default_factory=dict)
    pending: dict[ETagKey, tuple[str | None, str]] = field(default_factory=dict)
    tails: dict[tuple[str, str], str] = field(default_factory=dict)
    tail_failures: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def key(self) -> PRKey:
        return pr_key(self.ref)

    @property
    def uses_statuses(self) -> bool:
        """Whether the head's combined status needs a guard: a CI that posts only commit
        statuses changes no check run, so it is guarded while this head is new, while it
        carries statuses, and while its CI has not settled (such a CI may yet post)."""
        detail = self.detail
        if self.status_sha != self.head_sha or detail is None:
            return True
        if any(c.kind is CheckKind.STATUS for c in detail.checks):
            return True
        return pr_ci(detail) in (CIState.UNKNOWN, CIState.PENDING)

    def guard_interval(self, settings: ObserverSettings) -> float:
        """Fast while CI runs or GitHub computes mergeability, slow once settled, slower
        for a draft (nobody waits on it)."""
        detail = self.detail
        if detail is None:
            return settings.pending_interval
        if detail.state is PRState.DRAFT:
            return settings.draft_interval
        if pr_ci(detail) is CIState.PENDING or pr_mergeability(detail) is Mergeability.UNKNOWN:
            return settings.pending_interval
        return settings.settled_interval

    def awaits_mergeability(self) -> bool:
        """GitHub has not computed mergeability yet: no guard shows when it has, so the
        details themselves are re-read at the pending cadence."""
        detail = self.detail
        return (
            detail is not None
            and detail.state is PRState.OPEN
            and detail.mergeable.upper() == "UNKNOWN"
        )

    def wants_review_polls(self) -> bool:
        """Changes requested or an unresolved human thread: a reviewer is mid-conversation,
        and resolving a thread changes nothing a cheaper request would show."""
        review = self.review
        if review is None:
            return False
        if review.decision is ReviewDecision.CHANGES_REQUESTED:
            return True
        return any(not c.resolved and not c.author_is_bot for c in review.comments)

    def merge_review(self, fresh: ReviewSnapshot) -> ReviewSnapshot:
        """A partial snapshot (only the newest threads) adds to what is known instead of
        replacing it, so older comments are not forgotten."""
        if not fresh.partial or self.review is None:
            return fresh
        known: dict[str, ReviewComment] = {c.id: c for c in self.review.comments}
        known.update((c.id, c) for c in fresh.comments)
        return ReviewSnapshot(
            decision=fresh.decision,
            comments=tuple(known.values()),
            partial=True,
            updated_at=fresh.updated_at,
        )


@dataclass
class Counters:
    """What the observer did since it started (the status shows them)."""

    rounds: int = 0
    guards: int = 0
    not_modified: int = 0
    details: int = 0
    reviews: int = 0
    log_tails: int = 0
    observations: int = 0
    delivery_failures: int = 0
    rate_limited: int = 0


@dataclass
class Tracking:
    """Everything the observer holds: watched repositories and tracked PRs by key, the
    live sessions and whose each PR URL is (per the store), the (PR URL, session) pairs
    the store refused, the counters, and the failures of the round under way."""

    repos: dict[str, TrackedRepo] = field(default_factory=dict)
    prs: dict[PRKey, TrackedPR] = field(default_factory=dict)
    live: set[SessionId] = field(default_factory=set)
    owners: dict[str, SessionId] = field(default_factory=dict)
    refused: set[tuple[str, SessionId]] = field(default_factory=set)
    counters: Counters = field(default_factory=Counters)
    last_error: str = ""
    round_failures: int = 0
