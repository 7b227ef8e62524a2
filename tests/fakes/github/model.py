"""The things the fake GitHub's world holds. Plain mutable records: the world's scenario
helpers change them, the REST and GraphQL views read them.

State values are stored in REST's spelling (``open``, ``in_progress``, ``failure``); the
GraphQL resolvers upper-case them, as GitHub's two APIs spell the same facts differently.
Review states are stored in GraphQL's spelling (``APPROVED``), which REST also uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

CHECK_STATUSES = frozenset(
    {"queued", "in_progress", "completed", "waiting", "requested", "pending"}
)
CHECK_CONCLUSIONS = frozenset(
    {
        "action_required",
        "cancelled",
        "failure",
        "neutral",
        "skipped",
        "stale",
        "startup_failure",
        "success",
        "timed_out",
    }
)
STATUS_STATES = frozenset({"error", "failure", "pending", "success"})
REVIEW_STATES = frozenset({"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"})
MERGE_STATE_STATUSES = frozenset(
    {"BEHIND", "BLOCKED", "CLEAN", "DIRTY", "DRAFT", "HAS_HOOKS", "UNKNOWN", "UNSTABLE"}
)


class AccountType(StrEnum):
    USER = "User"
    BOT = "Bot"
    ORGANIZATION = "Organization"


@dataclass(eq=False)
class Account:
    id: int
    node_id: str
    login: str
    type: AccountType
    name: str | None
    created_at: float


@dataclass(eq=False)
class Repo:
    id: int
    node_id: str
    owner: Account
    name: str
    private: bool
    default_branch: str
    created_at: float
    updated_at: float
    parent: Repo | None = None  # set on a fork
    deleted: bool = False
    requires_review: bool = False  # branch protection: reviewDecision REVIEW_REQUIRED
    branches: dict[str, str] = field(default_factory=dict)  # branch -> tip SHA

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"


@dataclass(eq=False)
class App:
    id: int
    node_id: str
    slug: str
    name: str
    created_at: float


@dataclass(eq=False)
class Commit:
    """A commit known to the world: a PR's pushed head, or a base branch tip."""

    repo: Repo
    sha: str
    node_id: str


@dataclass(eq=False)
class CheckSuite:
    id: int
    node_id: str
    repo: Repo
    app: App
    head_sha: str
    head_branch: str | None
    created_at: float
    updated_at: float
    runs: list[CheckRun] = field(default_factory=list)


@dataclass(eq=False)
class CheckRun:
    """One check run; for GitHub Actions its id is also the job id its logs live under."""

    id: int
    node_id: str
    suite: CheckSuite
    name: str
    status: str
    conclusion: str | None
    details_url: str | None
    started_at: float | None
    completed_at: float | None
    log: str | None = None  # the job log as GitHub serves it (timestamped lines)
    external_id: str | None = None
    title: str | None = None
    summary: str | None = None
    text: str | None = None

    @property
    def head_sha(self) -> str:
        return self.suite.head_sha

    @property
    def app(self) -> App:
        return self.suite.app


@dataclass(eq=False)
class CommitStatus:
    id: int
    node_id: str
    repo: Repo
    sha: str
    context: str
    state: str
    target_url: str | None
    description: str | None
    creator: Account
    created_at: float
    updated_at: float


@dataclass(eq=False)
class Review:
    id: int
    node_id: str
    pr: PullRequest
    author: Account
    state: str
    body: str
    commit_sha: str
    submitted_at: float


@dataclass(eq=False)
class ReviewComment:
    id: int
    node_id: str
    thread: ReviewThread
    author: Account
    body: str
    commit_sha: str
    created_at: float
    updated_at: float
    review: Review | None = None
    reply_to: ReviewComment | None = None


@dataclass(eq=False)
class ReviewThread:
    node_id: str
    pr: PullRequest
    path: str
    line: int | None
    original_line: int | None
    comments: list[ReviewComment] = field(default_factory=list)
    is_resolved: bool = False
    resolved_by: Account | None = None
    is_outdated: bool = False


@dataclass(eq=False)
class PullRequest:
    id: int
    node_id: str
    number: int
    repo: Repo
    head_repo: Repo  # the fork's repo for a cross-repository PR
    head_ref: str
    base_ref: str
    base_sha: str
    title: str
    body: str
    author: Account
    created_at: float
    updated_at: float
    commits: list[str]  # SHAs in push order; the last one is the head
    state: str = "open"
    draft: bool = False
    closed_at: float | None = None
    merged_at: float | None = None
    merged_by: Account | None = None
    merge_commit_sha: str | None = None
    reviews: list[Review] = field(default_factory=list)
    threads: list[ReviewThread] = field(default_factory=list)
    conflicting: bool = False
    mergeable_known_at: float = 0.0  # GitHub answers UNKNOWN until it has computed this
    merge_state_override: str | None = None  # e.g. BEHIND or HAS_HOOKS, which need git
    additions: int = 10
    deletions: int = 2
    changed_files: int = 1

    @property
    def head_sha(self) -> str:
        return self.commits[-1]

    @property
    def merged(self) -> bool:
        return self.merged_at is not None

    @property
    def head_repository(self) -> Repo | None:
        """What GitHub shows as the head repository: nothing once the fork is deleted."""
        return None if self.head_repo.deleted else self.head_repo

    @property
    def is_cross_repository(self) -> bool:
        return self.head_repo is not self.repo
