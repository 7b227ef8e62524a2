"""Source control (GitHub) facts as the engine sees them, and the errors of asking.

The provider (``adapters/github``) turns GitHub's JSON into these values;
``orchestrator.domain.scm_rules`` decides what they mean. Pure data: times are what
GitHub stamped, never read from a clock here. See (docs/behaviour.md, "PR facts").
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum

from orchestrator.domain.errors import OrchestratorError, TransientError
from orchestrator.domain.model import (
    CheckStatus,
    Model,
    PRState,
    ReviewDecision,
    SessionId,
    SessionKind,
)

# --- errors ------------------------------------------------------------------------------


class SCMError(OrchestratorError):
    """A GitHub call that failed. Messages never carry the token."""


class SCMUnavailable(SCMError, TransientError):
    """A network failure or a 5xx that outlived its retries: try again later."""


class SCMRateLimited(SCMError):
    """A rate limit stands in the way until ``until``; no request was (or should be) sent."""

    def __init__(self, message: str, *, resource: str, until: datetime) -> None:
        super().__init__(message)
        self.resource = resource
        self.until = until


class SCMNotFound(SCMError):
    """404: gone, not yet there (a running job's log), or invisible to this token."""


class SCMAuthFailed(SCMError):
    """401 (bad or expired credentials) even after re-reading the token, or no token."""


class SCMForbidden(SCMError):
    """A 403 that is not a rate limit: this token may not do this. Permanent."""


class SCMRejected(SCMError):
    """GitHub refused the request as made (422, or a merge it will not do): never retried."""


# --- values ------------------------------------------------------------------------------


class SCMPriority(IntEnum):
    """Who is waiting for a GitHub call: the rate budget keeps a reserve for the agents
    sharing the token's bucket, which background polling never touches."""

    BACKGROUND = 0  # scheduled polling
    KICK = 1  # someone is waiting (an agent's turn ended, an API refresh, a merge)


class RepoRef(Model, frozen=True, kw_only=True):
    """A repository. ``owner``/``name`` keep GitHub's case; compare with ``scm_rules.same_repo``."""

    host: str = "github.com"
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class PRRef(Model, frozen=True, kw_only=True):
    repo: RepoRef
    number: int


class CheckKind(StrEnum):
    CHECK_RUN = "check_run"  # a GitHub App's check (Actions is one)
    STATUS = "status"  # a legacy commit status (Jenkins, Buildkite…)


class SCMCheck(Model, frozen=True, kw_only=True):
    """One check on one commit. ``conclusion`` is GitHub's, lower-cased, when completed;
    ``provider_id`` is the check run's database id (the Actions job id)."""

    name: str
    commit: str
    status: CheckStatus
    kind: CheckKind = CheckKind.CHECK_RUN
    conclusion: str | None = None
    url: str = ""
    provider_id: int | None = None
    app: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    log_tail: str = ""


class PRSummary(Model, frozen=True, kw_only=True):
    """A PR as the open-PR listing shows it. ``head_repo`` is None for a deleted fork."""

    node_id: str
    number: int
    url: str
    title: str = ""
    state: PRState
    head_ref: str
    head_sha: str
    head_repo: str | None
    base_ref: str
    author: str = ""
    author_is_bot: bool = False
    updated_at: datetime | None = None


class PRDetail(Model, frozen=True, kw_only=True):
    """A PR with its head commit's checks. ``checks_complete`` is false when some check
    pages could not be read: such a set may prove failure, never success."""

    repo: RepoRef
    node_id: str
    number: int
    url: str
    title: str = ""
    state: PRState
    head_ref: str
    head_sha: str
    head_repo: str | None = None
    base_ref: str = ""
    author: str = ""
    mergeable: str = "UNKNOWN"  # GitHub's MergeableState
    merge_state: str | None = None  # GitHub's MergeStateStatus
    review: ReviewDecision = ReviewDecision.NONE
    rollup_state: str | None = None  # None: the head commit has no checks or statuses yet
    checks: tuple[SCMCheck, ...] = ()
    checks_complete: bool = True
    updated_at: datetime | None = None
    merged_at: datetime | None = None
    closed_at: datetime | None = None


class PRMissing(Model, frozen=True, kw_only=True):
    """A PR (or its repository) that GitHub could not resolve, in a batch answer."""

    ref: PRRef
    reason: str = ""


class ReviewComment(Model, frozen=True, kw_only=True):
    """A review comment; ``resolved`` is its thread's state. ``file`` is empty for a
    review's own body; ``line`` is 0 when GitHub gives none (an outdated thread)."""

    id: str
    thread_id: str = ""
    author: str = ""
    author_is_bot: bool = False
    file: str = ""
    line: int = 0
    body: str = ""
    url: str = ""
    resolved: bool = False
    outdated: bool = False
    created_at: datetime | None = None


class ReviewSnapshot(Model, frozen=True, kw_only=True):
    """A PR's review state. ``partial``: only the newest threads were read, so comments
    missing here may still exist (merge with what is known, never replace)."""

    decision: ReviewDecision = ReviewDecision.NONE
    comments: tuple[ReviewComment, ...] = ()
    partial: bool = False
    updated_at: datetime | None = None


class NotModified(Model, frozen=True, kw_only=True):
    """A conditional GET answered 304. ``etag`` is the validator to send next time
    (GitHub may rotate it on a 304)."""

    etag: str | None = None


class PRListing(Model, frozen=True, kw_only=True):
    etag: str | None = None
    prs: tuple[PRSummary, ...] = ()


class ChecksSnapshot(Model, frozen=True, kw_only=True):
    """A commit's check runs or combined status. ``etag`` is None when it took several
    pages (page one's validator would not cover the rest): compare ``fingerprint``."""

    etag: str | None = None
    commit: str
    checks: tuple[SCMCheck, ...] = ()
    state: str | None = None  # the combined status' own state; None for check runs
    fingerprint: str = ""


class MergeMethod(StrEnum):
    MERGE = "merge"
    SQUASH = "squash"
    REBASE = "rebase"


class MergeOutcome(Model, frozen=True, kw_only=True):
    merged: bool
    sha: str = ""
    message: str = ""


class SCMAuthState(Model, frozen=True, kw_only=True):
    """Whether a token is available, and from where; never the token itself."""

    available: bool
    source: str = ""
    reason: str = ""


class RateResourceState(Model, frozen=True, kw_only=True):
    resource: str
    limit: int | None = None
    remaining: int | None = None
    reset_at: datetime | None = None
    blocked_until: datetime | None = None


class RateBudgetSnapshot(Model, frozen=True, kw_only=True):
    """The shared GitHub rate budget as the API shows it."""

    resources: tuple[RateResourceState, ...] = ()
    blocked_until: datetime | None = None  # a secondary limit: every resource waits
    secondary_strikes: int = 0
    in_flight: int = 0
    max_concurrency: int = 0


class BranchClaim(Model, frozen=True, kw_only=True):
    """A session's claim on PRs: its branch, pushed to ``repo`` (its push origin)."""

    session_id: SessionId
    branch: str
    repo: RepoRef
    kind: SessionKind = SessionKind.WORKER
