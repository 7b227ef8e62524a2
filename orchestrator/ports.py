"""The engine's view of the world: every port is a ``typing.Protocol``.

Adapters (``adapters/``) implement these; ``adapters/memory.py`` holds in-memory versions
that pass the same contract tests. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final, Protocol

from orchestrator.domain.health import StoreHealth
from orchestrator.domain.legacy import ImportBatch, LegacyInstallation, ProvenanceRow
from orchestrator.domain.model import (
    AgentHarness,
    Model,
    NotificationEvent,
    PRCheck,
    PRFacts,
    ProbeResult,
    PRObservation,
    ProjectId,
    SessionId,
    SessionKind,
    SessionRecord,
)
from orchestrator.domain.pages import SessionPage
from orchestrator.domain.records import (
    ChangeEvent,
    CommitUnit,
    Notification,
    OutboxEntry,
    Project,
    Tracker,
)
from orchestrator.domain.retention import RetentionPolicy, RetentionReport
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
    SCMPriority,
)


class Clock(Protocol):
    """Where the engine gets the time; tests pass a fixed or stepping clock."""

    def now(self) -> datetime: ...


# --- persistence ---------------------------------------------------------------------


class SessionStore(Protocol):
    """Durable sessions and projects. ``commit`` returns once the unit is durable."""

    async def upsert_project(self, project: Project) -> Project: ...

    async def get_project(self, project_id: ProjectId) -> Project | None: ...

    async def list_projects(self, *, include_archived: bool = False) -> list[Project]: ...

    async def create_session(
        self,
        project_id: ProjectId,
        *,
        now: datetime,
        issue_id: str = "",
        kind: SessionKind = SessionKind.WORKER,
        harness: AgentHarness = AgentHarness.NONE,
    ) -> SessionRecord:
        """Insert a fresh ``not_started`` row with the next id ``{project}-{n}``; a number
        once given out (to a session removed since, too) is never given out again."""
        ...

    async def get_session(self, session_id: SessionId) -> SessionRecord | None: ...

    async def delete_session(self, session_id: SessionId, *, at: datetime) -> bool:
        """Remove the session with its PRs, trackers, outbox rows and notifications; its
        change-log rows stay and a ``session_deleted`` row stamped ``at`` is added. False
        for an unknown id; ``ConflictError`` while a reaction of it is undelivered."""
        ...

    async def list_sessions(self, project_id: ProjectId | None = None) -> list[SessionRecord]:
        """Sessions ordered by (project_id, num)."""
        ...

    async def commit(self, unit: CommitUnit) -> None:
        """Apply the unit atomically. Raises ``StoreError`` and keeps nothing on failure."""
        ...

    async def list_trackers(self, session_id: SessionId) -> list[Tracker]: ...

    async def list_session_page(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        project_id: ProjectId | None = None,
    ) -> SessionPage:
        """Up to ``limit`` sessions after ``cursor`` in (project_id, num) order, each with
        the PR that speaks for it, in a bounded number of queries whatever the page size.
        ``next_cursor`` continues the listing; a bad cursor raises ``InvalidInputError``."""
        ...


class ImportStore(Protocol):
    """Writes of an agent-orchestrator import (orchestrator/importer.py)."""

    async def import_batch(self, batch: ImportBatch) -> tuple[SessionId, ...]:
        """Write one project's batch in one transaction: the project, sessions, PR rows and
        trackers that do not exist yet (existing rows are never updated), and provenance.
        Returns the ids of the sessions inserted."""
        ...

    async def list_provenance(self) -> list[ProvenanceRow]: ...


class LegacySource(Protocol):
    """Reads an agent-orchestrator installation, read-only (adapters/legacy_ao.py).
    ``root`` None means its default place. Raises ``InvalidInputError`` for a config it
    cannot parse."""

    async def read(self, root: str | None) -> LegacyInstallation: ...


class LegacyRuntimeProbe(Protocol):
    """Whether a legacy tmux session exists on the user's default tmux server; it only
    asks, and never changes anything there."""

    async def has_session(self, name: str) -> bool: ...


class PRReader(Protocol):
    """Reads of the PR rows and check history that ``SessionStore.commit`` writes."""

    async def pr_facts_for_session(self, session_id: SessionId) -> PRFacts:
        """The PR that speaks for the session: the most recently updated open or draft PR,
        else the most recently updated closed or merged one, else no PR."""
        ...

    async def list_pr_facts(self, session_id: SessionId) -> list[PRFacts]:
        """Facts of every PR of the session, most recently updated first."""
        ...

    async def recent_check_runs(self, pr_url: str, check_name: str, limit: int) -> list[PRCheck]:
        """The last ``limit`` runs of a check on a PR (status, commit, first-seen time),
        newest first by first-seen time."""
        ...


class PRClaims(Protocol):
    """Moving a PR between sessions. A PR belongs to one session: an observation of a PR
    another live session owns is refused (``ConflictError`` naming the owner); only a claim
    moves it (docs/design.md, D-13)."""

    async def claim_pr(
        self, session_id: SessionId, url: str, *, number: int, now: datetime
    ) -> SessionId | None:
        """Make ``session_id`` the PR's owner and its newest PR; returns the previous owner
        (None when the PR was not known, or was the session's already). An unknown PR is
        recorded with only its number until observed. Raises ``NotFoundError`` for an
        unknown session, ``ConflictError`` for one that has ended."""
        ...


ATTEMPT_UNDER_WAY: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""``next_attempt_at`` of an outbox row while an attempt is under way (before any real time,
so the row is due under any clock)."""


class OutboxStore(Protocol):
    """Delivery bookkeeping for the reactions committed with their cause (docs/design.md,
    D-1): what is due, each attempt, and how each row settled."""

    async def pending_outbox(self, *, now: datetime, limit: int) -> list[OutboxEntry]:
        """Undelivered, unfailed rows whose next attempt is due, oldest first."""
        ...

    async def begin_attempt(self, entry_id: int) -> None:
        """An attempt is under way: ``next_attempt_at`` becomes ``ATTEMPT_UNDER_WAY``, so a
        row whose attempt never ended (the daemon died) stays due under any clock and shows
        that it may have been delivered already (``attempts`` counts attempts that ended)."""
        ...

    async def record_attempt(
        self, entry_id: int, *, error: str, next_attempt_at: datetime | None
    ) -> None: ...

    async def mark_delivered(
        self, entry_id: int, *, at: datetime, notification: NotificationEvent | None
    ) -> None:
        """Mark delivered; a notification, when given, is recorded in the same transaction."""
        ...

    async def mark_failed(
        self,
        entry_id: int,
        *,
        at: datetime,
        error: str,
        notification: NotificationEvent | None = None,
    ) -> None:
        """Give up on a row; a fallback notification, when given, is recorded with it."""
        ...

    async def list_notifications(
        self, *, project_id: ProjectId | None = None, limit: int = 100, unread: bool = False
    ) -> list[Notification]:
        """Newest first; ``unread``: only those not marked read."""
        ...


class NotificationMarks(Protocol):
    """What the human did with a notification. Each returns whether it exists; marking
    twice keeps the first time."""

    async def mark_notification_read(self, notification_id: int, at: datetime) -> bool: ...

    async def resolve_notification(self, notification_id: int, at: datetime) -> bool: ...

    async def mark_all_notifications_read(
        self, at: datetime, *, project_id: ProjectId | None = None
    ) -> int:
        """Mark every unread notification (of one project, when given) read at ``at``, in
        one transaction; how many were unread."""
        ...


class StoreUpkeep(Protocol):
    """The store's health (for ``/healthz``) and its retention janitor."""

    def health(self) -> StoreHealth:
        """``degraded`` with the reason from a storage fault until a commit writes again."""
        ...

    async def apply_retention(self, policy: RetentionPolicy, *, now: datetime) -> RetentionReport:
        """One pass of every retention rule, in short batches; the rows deleted."""
        ...


class ChangeLog(Protocol):
    """Reads of the change log, which only the store's own triggers write (docs/behaviour.md,
    "Change feed")."""

    async def changes_after(
        self, seq: int, *, limit: int, project_id: ProjectId | None = None
    ) -> list[ChangeEvent]: ...

    async def max_change_seq(self) -> int: ...


# --- delivery ------------------------------------------------------------------------


class Notifier(Protocol):
    """Tells a human. Raises ``TransientError`` for failures worth retrying."""

    async def notify(self, event: NotificationEvent) -> None: ...


class AgentMessenger(Protocol):
    """Types a message into a session's agent and submits it, in one step that a crash
    cannot split. Raises ``TransientError`` to be retried."""

    async def send(self, session_id: SessionId, message: str, *, resend: bool = False) -> None:
        """``resend``: an earlier attempt of this message may have reached the agent, so a
        half-typed line it left is cleared first where the agent's terminal allows it."""
        ...


# --- runtime, workspace, agent --------------------------------------------------------


class RuntimeHandle(Model, frozen=True, kw_only=True):
    """How a runtime finds a session's pane again."""

    id: str
    runtime_name: str


class RuntimeSpec(Model, frozen=True, kw_only=True):
    session_id: SessionId
    workspace_path: str
    launch_command: tuple[str, ...]
    env: Mapping[str, str] = {}


class RuntimeProbe(Model, frozen=True, kw_only=True):
    """One liveness reading: the pane (runtime) and the agent process inside it. When the
    pane is open with its agent exited (process dead), ``exit_status`` (a signal ``n`` as
    ``128 + n``) and ``last_output`` (its last lines, raw) are what it shows, if known."""

    runtime: ProbeResult
    process: ProbeResult
    exit_status: int | None = None
    last_output: str = ""


class Runtime(Protocol):
    """Where agents run (tmux). ``probe`` raises ``ProbeError`` when it cannot tell."""

    name: str

    async def create(self, spec: RuntimeSpec) -> RuntimeHandle: ...

    async def probe(self, handle: RuntimeHandle) -> RuntimeProbe: ...

    async def destroy(self, handle: RuntimeHandle) -> None: ...


class WorkspaceInfo(Model, frozen=True, kw_only=True):
    path: str
    branch: str


class RemovalCheck(Model, frozen=True, kw_only=True):
    """Whether a workspace is there, and what would make removing it lose work ('' when
    nothing would)."""

    exists: bool
    blocker: str = ""


class Workspace(Protocol):
    """Where an agent's files live (a git worktree per session)."""

    async def create(
        self, project: Project, session_id: SessionId, branch: str = ""
    ) -> WorkspaceInfo: ...

    async def restore(
        self, project: Project, session_id: SessionId, branch: str
    ) -> WorkspaceInfo: ...

    async def destroy(self, workspace_path: str) -> None:
        """Remove the workspace; refuses (``ConflictError``) when work would be lost."""
        ...

    async def removal_check(self, workspace_path: str) -> RemovalCheck:
        """What ``destroy`` would find, without removing anything."""
        ...

    async def check_repository(self, path: str, *, require_commit: bool) -> None:
        """``InvalidInputError`` saying what to do when ``path`` cannot hold sessions
        (missing, not a directory, not a git work tree; no commits yet)."""
        ...

    async def check_branch(self, project: Project, branch: str) -> None:
        """Refuse a branch a workspace could not be created on: ``InvalidInputError`` for
        an invalid name, ``ConflictError`` when it exists already."""
        ...

    async def prune(self, project: Project, *, dry_run: bool = False) -> list[str]:
        """Forget the project's workspaces whose directories are gone; what was (or with
        ``dry_run``, would be) forgotten."""
        ...


class LaunchConfig(Model, frozen=True, kw_only=True):
    """``agent_session_id``: the conversation id the launcher chose for the agent (see
    ``Agent.choose_session_id``), '' when the agent picks its own."""

    session_id: SessionId
    workspace_path: str
    prompt: str = ""
    agent_session_id: str = ""


class Agent(Protocol):
    """How to start (and resume) one kind of coding agent."""

    name: str

    def launch_command(self, config: LaunchConfig) -> Sequence[str]: ...

    def restore_command(self, agent_session_id: str) -> Sequence[str]:
        """The command resuming conversation ``agent_session_id``; ``InvalidInputError``
        when the agent cannot resume (``resume_unsupported`` says why)."""
        ...

    def environment(self, config: LaunchConfig) -> Mapping[str, str]: ...

    def choose_session_id(self) -> str:
        """A fresh conversation id for the launch to hand the agent, when the agent lets
        its launcher choose one (Claude Code's ``--session-id``); '' when it does not."""
        ...

    def resume_unsupported(self) -> str:
        """Why this agent can never resume a conversation by id; '' when it can."""
        ...

    def check_installed(self, *, resume: bool = False) -> None:
        """Raise ``InvalidInputError``, saying what to do, when the executable the launch
        (or with ``resume``, the restore) command starts cannot be found."""
        ...


WEBHOOK_DELIVERIES_KEPT: Final = 10_000
"""Delivery ids a store remembers: GitHub sends a few per change, so this covers days."""


class WebhookDeliveries(Protocol):
    """The GitHub webhook deliveries already handled, so a replay is ignored."""

    async def record_webhook_delivery(
        self, delivery_id: str, *, at: datetime, keep: int = ...
    ) -> bool:
        """Remember ``delivery_id``; False when it was remembered already. Only the newest
        ``keep`` ids are kept (a replay of an older one is handled again: one more kick)."""
        ...


class EngineStore(SessionStore, PRReader, PRClaims, Protocol):
    """What the lifecycle engine needs of persistence."""


class Store(
    EngineStore, OutboxStore, ChangeLog, NotificationMarks, StoreUpkeep, WebhookDeliveries, Protocol
):
    """A complete store: what the daemon wires up (SQLite, or memory in tests)."""


# --- source control (GitHub) ------------------------------------------------------------

ETagKey = tuple[str, ...]
"""What a validator belongs to, e.g. ``("pulls", "o/r")`` or ``("check-runs", "o/r", sha)``."""


class SCMProvider(Protocol):
    """A source-control host seen through cheap conditional guards and batched reads.

    A guard takes the validator of the last answer the caller has fully processed and
    answers ``NotModified`` when nothing changed. Methods raise only ``SCMError``
    subclasses: ``SCMRateLimited`` says until when nothing will be sent,
    ``SCMUnavailable`` is worth retrying later, the others are permanent for the
    request as made."""

    def rate_budget(self) -> RateBudgetSnapshot: ...

    async def auth_state(self) -> SCMAuthState:
        """Whether a token is available (resolving it if need be); never the token."""
        ...

    async def list_open_prs(
        self, repo: RepoRef, *, etag: str | None = None, priority: SCMPriority = ...
    ) -> PRListing | NotModified: ...

    async def find_prs_for_branch(
        self, repo: RepoRef, head_owner: str, branch: str, *, priority: SCMPriority = ...
    ) -> tuple[PRSummary, ...]:
        """PRs in any state whose head is ``head_owner:branch``."""
        ...

    async def check_runs(
        self, repo: RepoRef, sha: str, *, etag: str | None = None, priority: SCMPriority = ...
    ) -> ChecksSnapshot | NotModified: ...

    async def commit_status(
        self, repo: RepoRef, sha: str, *, etag: str | None = None, priority: SCMPriority = ...
    ) -> ChecksSnapshot | NotModified: ...

    async def fetch_pull_requests(
        self, refs: Sequence[PRRef], *, priority: SCMPriority = ...
    ) -> list[PRDetail | PRMissing]:
        """One answer per ref, in order; ``PRMissing`` for one that cannot be resolved."""
        ...

    async def fetch_reviews(self, ref: PRRef, *, priority: SCMPriority = ...) -> ReviewSnapshot: ...

    async def fetch_log_tail(
        self, repo: RepoRef, job_id: int, *, priority: SCMPriority = ...
    ) -> str:
        """The cleaned tail of a CI job's log; ``SCMNotFound`` while it still runs."""
        ...

    async def merge(
        self, ref: PRRef, *, sha: str, method: MergeMethod = ..., priority: SCMPriority = ...
    ) -> MergeOutcome:
        """Merge only if the head is still ``sha``."""
        ...


class ETagStore(Protocol):
    """Validators of guard answers. The caller puts one only after everything derived
    from its answer is durable, so a 304 can never hide an update that was lost."""

    def get(self, key: ETagKey) -> str | None: ...

    def put(self, key: ETagKey, etag: str | None) -> None:
        """Remember ``etag`` for ``key``; None forgets it."""
        ...

    def clear(self) -> None:
        """Forget every validator (the token changed: they may not carry over)."""
        ...


class PRObservationSink(Protocol):
    """Where PR observations go (the lifecycle manager)."""

    async def observe_pr(self, session_id: SessionId, observation: PRObservation) -> None:
        """Apply one observation to a session's actor; returns once it is durable."""
        ...


class SCMKicker(Protocol):
    """Makes what a repository, PR or head commit covers due for observation now (a
    GitHub webhook said it changed). A hint only: the observer still polls, and is free to
    coalesce kicks and to hold them back for its rate budget."""

    async def kick(self, repo: RepoRef, pr_number: int | None, head_sha: str | None) -> None:
        """``pr_number`` None: every tracked PR of ``repo`` whose head is ``head_sha`` (or
        all of them when that is None too)."""
        ...


class PRMerger(Protocol):
    """Merges a PR on its host at a given head commit (the host refuses if the head moved)."""

    async def merge(self, pr_url: str, *, head_sha: str) -> MergeOutcome:
        """A refusal is ``MergeOutcome(merged=False, message=<the host's reason>)``; raises
        ``SCMError`` subclasses (``SCMUnavailable`` is transient) for calls that failed."""
        ...


class SCMSessionReader(Protocol):
    """What the SCM observer reads of the store: which sessions are live, on which
    branch, in which project, and which PRs each already has."""

    async def list_sessions(self, project_id: ProjectId | None = None) -> list[SessionRecord]: ...

    async def list_projects(self, *, include_archived: bool = False) -> list[Project]: ...

    async def list_pr_facts(self, session_id: SessionId) -> list[PRFacts]: ...
