"""What the HTTP app needs of the engine, and the intake switch the daemon flips to drain."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Protocol

import trio

from adapters.http.auth import TokenAuthority
from adapters.http.sse import DEFAULT_HEARTBEAT
from adapters.http.webhooks import GitHubWebhooks
from orchestrator.changefeed import ChangeFeed
from orchestrator.cleanup import CleanupReport, Reclaimed
from orchestrator.clock import SystemClock
from orchestrator.domain.model import (
    ActivitySignal,
    PRObservation,
    ProjectId,
    SessionId,
    TerminationReason,
)
from orchestrator.lifecycle.manager import SessionView
from orchestrator.ports import Clock, Store
from orchestrator.pr_actions import Claimed, Merged
from orchestrator.sessions import SpawnRequest


class SessionCommands(Protocol):
    """The session manager's commands the API uses (``orchestrator.sessions``)."""

    async def spawn(self, request: SpawnRequest, /) -> SessionView: ...

    async def kill(self, session_id: SessionId, reason: TerminationReason, /) -> bool: ...

    async def restore(
        self, session_id: SessionId, /, *, agent: str | None = None, fresh: bool = False
    ) -> SessionView: ...

    async def send(self, session_id: SessionId, message: str, /) -> object: ...

    async def cleanup(
        self, *, session_id: SessionId | None = None, dry_run: bool = False
    ) -> CleanupReport: ...

    async def remove(self, session_id: SessionId, /) -> Reclaimed: ...

    async def check_project_path(self, path: str, /) -> None: ...


class LifecycleCommands(Protocol):
    """The lifecycle manager's reads and observation entry points the API uses."""

    async def exists(self, session_id: SessionId, /) -> bool: ...

    async def get(self, session_id: SessionId, /) -> SessionView: ...

    async def list(self, project_id: ProjectId | None = None, /) -> builtins.list[SessionView]: ...

    async def apply_activity_signal(
        self, session_id: SessionId, signal: ActivitySignal, /
    ) -> None: ...

    async def apply_pr_observation(
        self, session_id: SessionId, observation: PRObservation, /
    ) -> None: ...

    async def claim_pr(
        self, session_id: SessionId, url: str, number: int, /
    ) -> SessionId | None: ...


class PRCommands(Protocol):
    """Claims and on-demand merges (``orchestrator.pr_actions.PRActions``)."""

    async def claim(self, session_id: SessionId, *, url: str = "", number: int = 0) -> Claimed: ...

    async def merge(self, session_id: SessionId) -> Merged: ...


class DrainSwitch:
    """Intake control: once ``begin()`` is called the API refuses new work (503) and ends
    its event streams. Create and flip it from the trio thread."""

    def __init__(self) -> None:
        self._event = trio.Event()

    @property
    def draining(self) -> bool:
        return self._event.is_set()

    def begin(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


@dataclass(frozen=True, slots=True)
class ApiServices:
    """Everything the routes use. The daemon builds one; tests build theirs."""

    store: Store
    lifecycle: LifecycleCommands
    sessions: SessionCommands
    changefeed: ChangeFeed
    auth: TokenAuthority
    drain: DrainSwitch = field(default_factory=DrainSwitch)
    clock: Clock = field(default_factory=SystemClock)
    version: str = ""
    heartbeat: float = DEFAULT_HEARTBEAT
    """Seconds between ``: ping`` comments on an idle event stream."""
    replay_batch: int = 512
    sse_buffer: int | None = None
    """Per-stream subscriber buffer; None uses the change feed's."""
    pr_actions: PRCommands | None = None
    """None: claims through ``lifecycle``, and merges refused (no GitHub)."""
    github_webhooks: GitHubWebhooks | None = None
    """None (no webhook secret configured): the webhook route answers 404."""


__all__ = ["ApiServices", "DrainSwitch", "LifecycleCommands", "PRCommands", "SessionCommands"]
