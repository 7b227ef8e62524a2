"""In-memory implementations of every port, for tests and for trying the engine out.

``MemoryStore`` passes the same contract tests as the SQLite store, including the change-log
rows its triggers would write. The recording notifier and messenger can be told to fail;
the scripted runtime answers alive/dead/error/timeout per handle.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import trio

from adapters.memory_scm import FakeSCMProvider
from adapters.memory_store import MemoryStore
from orchestrator.domain.errors import (
    ConflictError,
    InvalidInputError,
    ProbeError,
    TransientError,
)
from orchestrator.domain.model import (
    NotificationEvent,
    ProbeResult,
    ProjectId,
    SessionId,
)
from orchestrator.domain.records import (
    Project,
)
from orchestrator.ports import (
    LaunchConfig,
    RemovalCheck,
    RuntimeHandle,
    RuntimeProbe,
    RuntimeSpec,
    WorkspaceInfo,
)

# --- clock ---------------------------------------------------------------------------


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


# --- delivery ------------------------------------------------------------------------


class RecordingNotifier:
    """Keeps every event it was given. ``fail_times`` makes the next calls raise."""

    def __init__(self) -> None:
        self.events: list[NotificationEvent] = []
        self.calls = 0
        self.fail_times = 0
        self.failure: Callable[[], Exception] = lambda: TransientError("notifier unavailable")
        self.block: trio.Event | None = None

    async def notify(self, event: NotificationEvent) -> None:
        self.calls += 1
        if self.block is not None:
            await self.block.wait()
        if self.fail_times > 0:
            self.fail_times -= 1
            raise self.failure()
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


class RecordingMessenger:
    """Keeps every message per session. Can fail the next calls or block a session."""

    def __init__(self) -> None:
        self.sent: list[tuple[SessionId, str]] = []
        self.resent: list[tuple[SessionId, str]] = []  # the sends that were marked resend
        self.calls = 0
        self.fail_times = 0
        self.failure: Callable[[], Exception] = lambda: TransientError("agent unreachable")
        self.blocked: dict[SessionId, trio.Event] = {}

    async def send(self, session_id: SessionId, message: str, *, resend: bool = False) -> None:
        self.calls += 1
        gate = self.blocked.get(session_id)
        if gate is not None:
            await gate.wait()
        if self.fail_times > 0:
            self.fail_times -= 1
            raise self.failure()
        self.sent.append((session_id, message))
        if resend:
            self.resent.append((session_id, message))

    def messages_for(self, session_id: SessionId) -> list[str]:
        return [m for sid, m in self.sent if sid == session_id]


# --- runtime, workspace, agent ---------------------------------------------------------


class Script(StrEnum):
    """What the scripted runtime answers for a handle."""

    ALIVE = "alive"
    DEAD = "dead"
    EXITED = "exited"  # the pane is up, the agent process is gone
    ERROR = "error"
    TIMEOUT = "timeout"  # never answers; the caller's deadline must fire


class ScriptedRuntime:
    """A runtime whose probe answers come from a script per handle id."""

    def __init__(self, name: str = "scripted") -> None:
        self.name = name
        self.script: dict[str, Script] = {}
        self.created: list[RuntimeSpec] = []
        self.destroyed: list[str] = []
        self.probes = 0
        self.fail_create: Exception | None = None
        self.fail_destroy: Exception | None = None
        self.probe_delay: dict[str, float] = {}
        # What an EXITED pane shows: (exit status, last output) per handle id.
        self.exits: dict[str, tuple[int | None, str]] = {}
        self._ids = itertools.count(1)

    async def create(self, spec: RuntimeSpec) -> RuntimeHandle:
        if self.fail_create is not None:
            raise self.fail_create
        self.created.append(spec)
        handle = RuntimeHandle(id=f"{spec.session_id}#{next(self._ids)}", runtime_name=self.name)
        self.script[handle.id] = Script.ALIVE
        return handle

    async def probe(self, handle: RuntimeHandle) -> RuntimeProbe:
        self.probes += 1
        delay = self.probe_delay.get(handle.id, 0.0)
        if delay:
            await trio.sleep(delay)
        answer = self.script.get(handle.id, Script.DEAD)
        if answer is Script.TIMEOUT:
            await trio.sleep_forever()
        if answer is Script.ERROR:
            raise ProbeError(f"scripted probe error for {handle.id}")
        if answer is Script.EXITED:
            status, output = self.exits.get(handle.id, (None, ""))
            return RuntimeProbe(
                runtime=ProbeResult.ALIVE,
                process=ProbeResult.DEAD,
                exit_status=status,
                last_output=output,
            )
        result = ProbeResult.ALIVE if answer is Script.ALIVE else ProbeResult.DEAD
        return RuntimeProbe(runtime=result, process=result)

    async def destroy(self, handle: RuntimeHandle) -> None:
        if self.fail_destroy is not None:
            raise self.fail_destroy
        self.destroyed.append(handle.id)
        self.script[handle.id] = Script.DEAD

    async def list_handles(self) -> list[RuntimeHandle]:
        """Every handle whose pane is not scripted dead (a ``RuntimeInventory``)."""
        return [
            RuntimeHandle(id=handle_id, runtime_name=self.name)
            for handle_id, answer in self.script.items()
            if answer is not Script.DEAD
        ]


class MemoryWorkspace:
    """Workspaces as paths in a dict. ``dirty`` paths refuse destroy, like uncommitted work;
    ``broken_repos`` maps a project path to why ``check_repository`` refuses it; branches
    of live workspaces and ``branches`` exist already; ``stale`` is what ``prune`` forgets."""

    def __init__(self, root: str = "/memory-workspaces") -> None:
        self.root = root
        self.live: dict[str, str] = {}
        self.dirty: set[str] = set()
        self.destroyed: list[str] = []
        self.fail_create: Exception | None = None
        self.broken_repos: dict[str, str] = {}
        self.branches: set[str] = set()
        self.stale: dict[ProjectId, list[str]] = {}

    def _path(self, project: Project, session_id: SessionId) -> str:
        for bad in ("..", "/", "\\"):
            if bad in session_id or not session_id:
                raise InvalidInputError(f"invalid session id {session_id!r}")
        return f"{self.root}/{project.id}/{session_id}"

    async def create(
        self, project: Project, session_id: SessionId, branch: str = ""
    ) -> WorkspaceInfo:
        if self.fail_create is not None:
            raise self.fail_create
        path = self._path(project, session_id)
        branch = branch or f"orchestrator/{session_id}"
        self.live[path] = branch
        self.branches.add(branch)
        return WorkspaceInfo(path=path, branch=branch)

    async def restore(self, project: Project, session_id: SessionId, branch: str) -> WorkspaceInfo:
        return await self.create(project, session_id, branch)

    async def destroy(self, workspace_path: str) -> None:
        if workspace_path in self.dirty:
            raise ConflictError(f"workspace {workspace_path} has uncommitted changes; kept")
        self.live.pop(workspace_path, None)
        self.destroyed.append(workspace_path)

    async def removal_check(self, workspace_path: str) -> RemovalCheck:
        if workspace_path not in self.live:
            return RemovalCheck(exists=False)
        dirty = workspace_path in self.dirty
        return RemovalCheck(exists=True, blocker="it has uncommitted changes" if dirty else "")

    async def check_repository(self, path: str, *, require_commit: bool) -> None:
        reason = self.broken_repos.get(path)
        if reason is not None:
            raise InvalidInputError(reason)

    async def check_branch(self, project: Project, branch: str) -> None:
        if not branch or branch.startswith("-") or " " in branch:
            raise InvalidInputError(f"{branch!r} is not a valid branch name")
        if branch in self.branches:
            raise ConflictError(f"branch {branch} already exists in {project.path}")

    async def prune(self, project: Project, *, dry_run: bool = False) -> list[str]:
        stale = list(self.stale.get(project.id, []))
        if not dry_run:
            self.stale.pop(project.id, None)
        return stale


class StubAgent:
    """An agent whose commands are plain lists, for tests. ``chosen_session_id`` is what
    ``choose_session_id`` hands out (appended to the launch as ``--agent-session``);
    ``missing`` makes ``check_installed`` refuse; ``unsupported`` is why it cannot resume."""

    def __init__(
        self,
        name: str = "stub",
        env: Mapping[str, str] | None = None,
        *,
        chosen_session_id: str = "",
        missing: bool = False,
        unsupported: str = "",
    ) -> None:
        self.name = name
        self._env = dict(env or {})
        self.chosen_session_id = chosen_session_id
        self.missing = missing
        self.unsupported = unsupported

    def launch_command(self, config: LaunchConfig) -> Sequence[str]:
        chosen = ("--agent-session", config.agent_session_id) if config.agent_session_id else ()
        return ("stub-agent", "--session", config.session_id, *chosen, config.prompt)

    def restore_command(self, agent_session_id: str) -> Sequence[str]:
        if self.unsupported:
            raise InvalidInputError(self.unsupported)
        return ("stub-agent", "--resume", agent_session_id)

    def environment(self, config: LaunchConfig) -> Mapping[str, str]:
        return dict(self._env)

    def choose_session_id(self) -> str:
        return self.chosen_session_id

    def resume_unsupported(self) -> str:
        return self.unsupported

    def check_installed(self, *, resume: bool = False) -> None:
        if self.missing:
            raise InvalidInputError(f"agent {self.name}: `stub-agent` is not on PATH")


__all__ = [
    "FakeSCMProvider",
    "ManualClock",
    "MemoryStore",
    "MemoryWorkspace",
    "RecordingMessenger",
    "RecordingNotifier",
    "Script",
    "ScriptedRuntime",
    "StubAgent",
]
