"""The engine's view of the world: every port is a ``typing.Protocol``.

Adapters (``adapters/``) implement these; ``adapters/memory.py`` holds in-memory versions
that pass the same contract tests. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from orchestrator.domain.model import (
    AgentHarness,
    CheckStatus,
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
from orchestrator.domain.records import (
    ChangeEvent,
    CommitUnit,
    Notification,
    OutboxEntry,
    Project,
    Tracker,
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

    async def archive_project(self, project_id: ProjectId, at: datetime | None) -> None: ...

    async def create_session(
        self,
        project_id: ProjectId,
        *,
        now: datetime,
        issue_id: str = "",
        kind: SessionKind = SessionKind.WORKER,
        harness: AgentHarness = AgentHarness.NONE,
    ) -> SessionRecord:
        """Insert a fresh ``not_started`` row with the next id ``{project}-{n}``."""
        ...

    async def get_session(self, session_id: SessionId) -> SessionRecord | None: ...

    async def list_sessions(self, project_id: ProjectId | None = None) -> list[SessionRecord]:
        """Sessions ordered by (project_id, num)."""
        ...

    async def commit(self, unit: CommitUnit) -> None:
        """Apply the unit atomically. Raises ``StoreError`` and keeps nothing on failure."""
        ...

    async def list_trackers(self, session_id: SessionId) -> list[Tracker]: ...


class PRWriter(Protocol):
    """PR rows, check history and comments."""

    async def write_pr_observation(
        self, session_id: SessionId, observation: PRObservation, now: datetime
    ) -> None:
        """PR row, check upserts and the replacement comment set in one transaction."""
        ...

    async def pr_facts_for_session(self, session_id: SessionId) -> PRFacts:
        """The PR that speaks for the session (reference §6.7 selection rule)."""
        ...

    async def list_pr_facts(self, session_id: SessionId) -> list[PRFacts]:
        """Facts of every PR of the session, most recently updated first."""
        ...

    async def recent_check_runs(self, pr_url: str, check_name: str, limit: int) -> list[PRCheck]:
        """Like ``recent_check_statuses`` but with each run's commit and first-seen time."""
        ...

    async def recent_check_statuses(
        self, pr_url: str, check_name: str, limit: int
    ) -> list[CheckStatus]:
        """The last ``limit`` runs of a check on a PR, newest first by first-seen time."""
        ...


class OutboxStore(Protocol):
    """Delivery bookkeeping for committed reactions (DESIGN §4)."""

    async def pending_outbox(self, *, now: datetime, limit: int) -> list[OutboxEntry]:
        """Undelivered, unfailed rows whose next attempt is due, oldest first."""
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
        self, *, project_id: ProjectId | None = None, limit: int = 100
    ) -> list[Notification]: ...


class ChangeLog(Protocol):
    """Reads of the trigger-written change log (reference §6.8)."""

    async def changes_after(
        self, seq: int, *, limit: int, project_id: ProjectId | None = None
    ) -> list[ChangeEvent]: ...

    async def max_change_seq(self) -> int: ...


# --- delivery ------------------------------------------------------------------------


class Notifier(Protocol):
    """Tells a human. Raises ``TransientError`` for failures worth retrying."""

    async def notify(self, event: NotificationEvent) -> None: ...


class AgentMessenger(Protocol):
    """Types a message into a session's agent. Raises ``TransientError`` to be retried."""

    async def send(self, session_id: SessionId, message: str) -> None: ...


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


class LaunchConfig(Model, frozen=True, kw_only=True):
    session_id: SessionId
    workspace_path: str
    prompt: str = ""


class Agent(Protocol):
    """How to start (and resume) one kind of coding agent."""

    name: str

    def launch_command(self, config: LaunchConfig) -> Sequence[str]: ...

    def restore_command(self, agent_session_id: str) -> Sequence[str]: ...

    def environment(self, config: LaunchConfig) -> Mapping[str, str]: ...


class EngineStore(SessionStore, PRWriter, Protocol):
    """What the lifecycle engine needs of persistence."""


class Store(EngineStore, OutboxStore, ChangeLog, Protocol):
    """A complete store: what the daemon wires up (SQLite, or memory in tests)."""
