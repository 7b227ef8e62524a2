"""The domain model: what a session is, what we observe about it, what we tell people.

Pure data. msgspec Structs encode with camelCase JSON field names, the wire shape clients
read; enums are ``StrEnum`` so their wire value is the string itself. Times are timezone-aware
UTC ``datetime`` values and are always passed in, never read from a clock here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

import msgspec


class Model(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    rename="camel",
    forbid_unknown_fields=True,
    gc=False,
):
    """Base for every domain value: immutable, keyword-only, camelCase on the wire.

    ``gc=False``: a frozen value never takes part in a reference cycle, so the cyclic
    collector need not track it; every engine turn makes several, and tracked ones made
    each young-generation collection longer."""


# --- identifiers and kinds ----------------------------------------------------------------

SessionId = str
ProjectId = str


class SessionKind(StrEnum):
    WORKER = "worker"
    ORCHESTRATOR = "orchestrator"


class AgentHarness(StrEnum):
    NONE = ""
    CLAUDE_CODE = "claude-code"
    CODEX = "codex"
    AIDER = "aider"
    OPENCODE = "opencode"


# --- lifecycle (docs/behaviour.md, "Lifecycle states", "Terminal reasons") ----------------


class SessionState(StrEnum):
    NOT_STARTED = "not_started"
    WORKING = "working"
    IDLE = "idle"
    NEEDS_INPUT = "needs_input"
    STUCK = "stuck"
    DETECTING = "detecting"
    DONE = "done"
    TERMINATED = "terminated"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


# A module-level set, so ``is_terminal`` reads no Enum class attribute (docs/design.md,
# "Hot path").
TERMINAL_STATES: Final = frozenset({SessionState.DONE, SessionState.TERMINATED})


class TerminationReason(StrEnum):
    NONE = ""
    MANUALLY_KILLED = "manually_killed"
    RUNTIME_LOST = "runtime_lost"
    AGENT_PROCESS_EXITED = "agent_process_exited"
    PROBE_FAILURE = "probe_failure"
    ERROR_IN_PROCESS = "error_in_process"
    AUTO_CLEANUP = "auto_cleanup"
    PR_MERGED = "pr_merged"


class ActivityState(StrEnum):
    ACTIVE = "active"
    READY = "ready"
    IDLE = "idle"
    WAITING_INPUT = "waiting_input"
    BLOCKED = "blocked"
    EXITED = "exited"

    @property
    def is_sticky(self) -> bool:
        return self in _STICKY_ACTIVITY


_STICKY_ACTIVITY: Final = frozenset({ActivityState.WAITING_INPUT, ActivityState.BLOCKED})


class ActivitySource(StrEnum):
    NATIVE = "native"
    TERMINAL = "terminal"
    HOOK = "hook"
    RUNTIME = "runtime"
    NONE = "none"


class Activity(Model, frozen=True, kw_only=True):
    """The last activity an agent reported; an input to later probe decisions."""

    state: ActivityState
    last_activity_at: datetime
    source: ActivitySource = ActivitySource.NONE


class DetectingState(Model, frozen=True, kw_only=True):
    """Memory of an ambiguous-probe episode: the anti-flap quarantine (docs/behaviour.md,
    "Probes and the detecting quarantine")."""

    attempts: int
    started_at: datetime
    evidence_hash: str


class Lifecycle(Model, frozen=True, kw_only=True):
    """The only persisted lifecycle state of a session. ``activity`` is None before the
    agent has reported anything; ``detecting`` is set only while the state is detecting."""

    state: SessionState = SessionState.NOT_STARTED
    termination_reason: TerminationReason = TerminationReason.NONE
    is_alive: bool = False
    activity: Activity | None = None
    harness: AgentHarness = AgentHarness.NONE
    detecting: DetectingState | None = None


class SessionMetadata(Model, frozen=True, kw_only=True):
    """Where the session lives. An empty string means unset."""

    branch: str = ""
    workspace_path: str = ""
    runtime_handle_id: str = ""
    runtime_name: str = ""
    agent_session_id: str = ""
    prompt: str = ""
    agent: str = ""  # the agent it runs ("claude-code", a custom agent's name…)

    def merged_with(self, incoming: SessionMetadata) -> SessionMetadata:
        """Non-empty incoming fields win; an empty field never clears a stored value."""
        fields = {
            name: getattr(incoming, name) or getattr(self, name) for name in self.__struct_fields__
        }
        return SessionMetadata(**fields)


class SessionRecord(Model, frozen=True, kw_only=True):
    """One session as persisted. ``num`` is the per-project counter behind ``id``."""

    id: SessionId
    project_id: ProjectId
    num: int
    issue_id: str = ""
    kind: SessionKind = SessionKind.WORKER
    lifecycle: Lifecycle = Lifecycle()
    metadata: SessionMetadata = SessionMetadata()
    created_at: datetime
    updated_at: datetime


# --- PR facts and observations (docs/behaviour.md, "PR facts") --------------------------


class CIState(StrEnum):
    UNKNOWN = "unknown"
    PENDING = "pending"
    PASSING = "passing"
    FAILING = "failing"


class ReviewDecision(StrEnum):
    NONE = "none"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"
    REVIEW_REQUIRED = "review_required"


class Mergeability(StrEnum):
    UNKNOWN = "unknown"
    MERGEABLE = "mergeable"
    CONFLICTING = "conflicting"
    BLOCKED = "blocked"
    UNSTABLE = "unstable"


class PRState(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    MERGED = "merged"
    CLOSED = "closed"


class CheckStatus(StrEnum):
    UNKNOWN = "unknown"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class PRFacts(Model, frozen=True, kw_only=True):
    """What the engine knows about a session's chosen PR (docs/behaviour.md, "PR facts").
    ``exists=False`` (the default) means the session has no PR. Facts of an actual PR are
    built with ``of_pr``, whether from an observation or from a store's row."""

    exists: bool = False
    url: str = ""
    number: int = 0
    draft: bool = False
    merged: bool = False
    closed: bool = False
    ci: CIState = CIState.UNKNOWN
    review: ReviewDecision = ReviewDecision.NONE
    mergeability: Mergeability = Mergeability.UNKNOWN
    review_comments: bool = False
    head_sha: str = ""

    @classmethod
    def of_pr(
        cls,
        *,
        url: str,
        number: int,
        state: PRState,
        ci: CIState,
        review: ReviewDecision,
        mergeability: Mergeability,
        review_comments: bool,
        head_sha: str = "",
    ) -> PRFacts:
        """The facts of one existing PR in ``state``; ``review_comments``: it has an
        unresolved review comment; ``head_sha``: the head commit they were read at ("" if
        not known)."""
        return cls(
            exists=True,
            url=url,
            number=number,
            draft=state is PRState.DRAFT,
            merged=state is PRState.MERGED,
            closed=state is PRState.CLOSED,
            ci=ci,
            review=review,
            mergeability=mergeability,
            review_comments=review_comments,
            head_sha=head_sha,
        )

    @property
    def is_open(self) -> bool:
        return self.exists and not self.closed and not self.merged


class PRCheck(Model, frozen=True, kw_only=True):
    """One run of one CI check on one commit. ``created_at`` is when it was first seen."""

    name: str
    commit: str
    status: CheckStatus = CheckStatus.UNKNOWN
    url: str = ""
    log_tail: str = ""
    created_at: datetime | None = None


class PRComment(Model, frozen=True, kw_only=True):
    """One review comment. Unresolved comments are what the agent is asked to address."""

    id: str
    author: str = ""
    file: str = ""
    line: int = 0
    body: str = ""
    resolved: bool = False
    created_at: datetime | None = None


class PRObservation(Model, frozen=True, kw_only=True):
    """One fetch of a PR's state. ``fetched=False`` is a failed fetch: nothing changes.
    ``head_sha`` is the head commit the CI, review and mergeability were read at: an
    auto-merge names it, so GitHub refuses the merge if the head moved since."""

    fetched: bool = True
    url: str
    number: int = 0
    draft: bool = False
    merged: bool = False
    closed: bool = False
    ci: CIState = CIState.UNKNOWN
    review: ReviewDecision = ReviewDecision.NONE
    mergeability: Mergeability = Mergeability.UNKNOWN
    checks: tuple[PRCheck, ...] = ()
    comments: tuple[PRComment, ...] = ()
    head_sha: str = ""

    @property
    def state(self) -> PRState:
        """Collapse the flags into one state: merged > closed > draft > open."""
        if self.merged:
            return PRState.MERGED
        if self.closed:
            return PRState.CLOSED
        if self.draft:
            return PRState.DRAFT
        return PRState.OPEN

    def facts(self) -> PRFacts:
        """The facts this observation implies for its own PR."""
        return PRFacts.of_pr(
            url=self.url,
            number=self.number,
            state=self.state,
            ci=self.ci,
            review=self.review,
            mergeability=self.mergeability,
            review_comments=any(not c.resolved for c in self.comments),
            head_sha=self.head_sha,
        )


# --- runtime observations and other inputs ------------------------------------------------


class ProbeResult(StrEnum):
    ALIVE = "alive"
    DEAD = "dead"
    FAILED = "failed"
    UNKNOWN = "unknown"


class RuntimeFacts(Model, frozen=True, kw_only=True):
    """One liveness probe: is the runtime (tmux pane) up, is the agent process up.

    ``probe_started_at`` is when the probe began, if known: a probe that began before the
    session's runtime was last (re)started may have read the old one, and is dropped."""

    observed_at: datetime
    runtime: ProbeResult
    process: ProbeResult
    probe_started_at: datetime | None = None


class ActivitySignal(Model, frozen=True, kw_only=True):
    """An agent hook reporting what the agent is doing. ``valid=False`` is ignored.
    ``agent_session_id``, when set, is the agent's own conversation id (what a restore
    resumes)."""

    state: ActivityState
    timestamp: datetime
    source: ActivitySource = ActivitySource.HOOK
    valid: bool = True
    agent_session_id: str = ""


class SpawnOutcome(Model, frozen=True, kw_only=True):
    """Where a spawn (or restore) put the session."""

    branch: str = ""
    workspace_path: str = ""
    runtime_handle_id: str = ""
    runtime_name: str = ""
    agent_session_id: str = ""
    prompt: str = ""
    agent: str = ""

    def metadata(self) -> SessionMetadata:
        return SessionMetadata(
            agent=self.agent,
            branch=self.branch,
            workspace_path=self.workspace_path,
            runtime_handle_id=self.runtime_handle_id,
            runtime_name=self.runtime_name,
            agent_session_id=self.agent_session_id,
            prompt=self.prompt,
        )


# --- turns --------------------------------------------------------------------------------


class Trigger(StrEnum):
    """What caused a session's turn; the reaction planner acts on it. Never persisted."""

    RUNTIME = "runtime"  # a liveness probe
    ACTIVITY = "activity"  # an agent's activity report
    PR = "pr"  # a PR observation
    SPAWN = "spawn"  # a spawn or restore completed
    KILL = "kill"  # a human (or a failed spawn) ended the session
    TIMER = "timer"  # a deadline came due: escalateAfter, or the detecting cap


# --- display status (docs/behaviour.md, "Derived status") ---------------------------------


class SessionStatus(StrEnum):
    SPAWNING = "spawning"
    WORKING = "working"
    DETECTING = "detecting"
    PR_OPEN = "pr_open"
    DRAFT = "draft"
    CI_FAILED = "ci_failed"
    REVIEW_PENDING = "review_pending"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    MERGEABLE = "mergeable"
    MERGED = "merged"
    CLEANUP = "cleanup"
    NEEDS_INPUT = "needs_input"
    STUCK = "stuck"
    ERRORED = "errored"
    KILLED = "killed"
    IDLE = "idle"
    DONE = "done"
    TERMINATED = "terminated"


# --- reactions and notifications (docs/behaviour.md, "Reactions") -------------------------


class Priority(StrEnum):
    URGENT = "urgent"
    ACTION = "action"
    INFO = "info"


class ReactionKey(StrEnum):
    CI_FAILED = "ci-failed"
    REVIEW_COMMENTS = "review-comments"
    MERGE_CONFLICTS = "merge-conflicts"
    AGENT_IDLE = "agent-idle"
    APPROVED_AND_GREEN = "approved-and-green"
    AGENT_STUCK = "agent-stuck"
    AGENT_NEEDS_INPUT = "agent-needs-input"
    AGENT_EXITED = "agent-exited"
    PR_CLOSED = "pr-closed"
    PR_MERGED = "pr-merged"

    @property
    def event_type(self) -> str:
        return f"reaction.{self}"


ESCALATED_EVENT_TYPE: Final = "reaction.escalated"


class ReactionAction(StrEnum):
    SEND_TO_AGENT = "send-to-agent"
    NOTIFY = "notify"
    AUTO_MERGE = "auto-merge"  # approved-and-green only: merge the PR at its head commit


class NotificationEvent(Model, frozen=True, kw_only=True):
    """What a human is told. ``type`` is ``reaction.<key>`` or ``reaction.escalated``."""

    type: str
    priority: Priority
    session_id: SessionId
    project_id: ProjectId
    message: str
