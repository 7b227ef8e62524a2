"""The Session Manager: spawn, kill, restore, cleanup, send, get and list sessions, and the
boot-time reconcile.

The lifecycle manager is the only writer of lifecycle state; this module creates rows and
drives the runtime (tmux), the workspace (git worktree) and the agent around it. Rules:

- **No phantom rows.** A spawn that fails after its row exists leaves that row terminated
  with ``error_in_process`` (no notification), never ``spawning``. The undo runs shielded
  from cancellation, so a client that goes away mid-spawn leaves no half-made session.
- **Never destroy work on failure.** Undo only removes what this very call created; restore
  and kill never force a workspace removal, and a workspace with uncommitted changes is kept
  (``ConflictError`` saying so).
- **Errors name the step:** ``spawn: create: …``, ``spawn <id>: workspace|runtime|completed:
  …``, ``kill <id>: runtime|workspace: …``, ``restore <id>: …``, ``send <id>: …``. The
  error's kind (``NotFoundError``, ``ConflictError``, ``TransientError``…) is kept.
- **Unknown ids are 404s** for commands (docs/design.md, D-11): kill, restore, send and get raise
  ``NotFoundError``; send to a terminal session raises ``ConflictError``.
- Commands on one session (spawn's completion, kill, restore, cleanup) take turns: a kill
  that arrives while the session is still spawning waits for the spawn, then kills it.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import trio

from orchestrator.domain.errors import (
    ConflictError,
    DeliveryError,
    InvalidInputError,
    NotFoundError,
    OrchestratorError,
    OverloadedError,
    StoreError,
    TransientError,
)
from orchestrator.domain.model import (
    AgentHarness,
    ProbeResult,
    ProjectId,
    SessionId,
    SessionKind,
    SessionRecord,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.domain.records import Project
from orchestrator.lifecycle.manager import SessionView
from orchestrator.ports import (
    Agent,
    AgentMessenger,
    Clock,
    LaunchConfig,
    Runtime,
    RuntimeHandle,
    RuntimeProbe,
    RuntimeSpec,
    SessionStore,
    Workspace,
    WorkspaceInfo,
)
from orchestrator.reaper import Reaper, ReaperLifecycle, runtime_handle

__all__ = [
    "ReconcileReport",
    "RuntimeInventory",
    "RuntimeSnapshot",
    "SessionLifecycle",
    "SessionManager",
    "SpawnRequest",
]

log = logging.getLogger(__name__)

UNDO_TIMEOUT: Final = 30.0
"""How long a rollback may take once shielded from cancellation."""

_HARNESSES: Final = {h.value: h for h in AgentHarness if h is not AgentHarness.NONE}
# The error kinds callers act on; an adapter's own subclass is reported as its nearest one.
_PUBLIC_ERRORS: Final[tuple[type[OrchestratorError], ...]] = (
    NotFoundError,
    ConflictError,
    InvalidInputError,
    StoreError,
    OverloadedError,
    DeliveryError,
    TransientError,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpawnRequest:
    """What a spawn asks for. ``agent`` names the agent (``claude-code``, a custom agent…);
    ``prompt`` and ``agent_rules`` are joined with a blank line. The HTTP API checks its own
    body (``orchestrator.api.SpawnIn``) and converts it to this at the route."""

    project_id: ProjectId
    agent: str
    issue_id: str = ""
    kind: SessionKind = SessionKind.WORKER
    branch: str = ""
    prompt: str = ""
    agent_rules: str = ""


class SessionLifecycle(ReaperLifecycle, Protocol):
    """What the Session Manager needs of the lifecycle manager."""

    async def on_spawn_completed(
        self, session_id: SessionId, outcome: SpawnOutcome
    ) -> SessionRecord: ...

    async def on_restored(self, session_id: SessionId, outcome: SpawnOutcome) -> SessionRecord: ...

    async def on_kill_requested(
        self, session_id: SessionId, reason: TerminationReason = TerminationReason.NONE
    ) -> SessionRecord: ...

    async def get(self, session_id: SessionId) -> SessionView: ...

    async def list(self, project_id: ProjectId | None = None) -> builtins.list[SessionView]: ...


class RuntimeInventory(Protocol):
    """Every runtime handle on the daemon's own runtime (our private tmux socket)."""

    async def list_handles(self) -> list[RuntimeHandle]: ...


@runtime_checkable
class RuntimeSnapshot(Protocol):
    """A runtime that can read all its sessions at once (tmux: one call for all panes)."""

    async def probe_all(self) -> Mapping[str, RuntimeProbe]:
        """What ``probe`` would say of each handle id the runtime has; ``ProbeError`` when
        it cannot tell."""
        ...


class _SnapshotRuntime:
    """``runtime``, with probes answered from one reading of all its sessions taken before;
    a handle that reading does not list is probed for real, so "gone" is always the
    runtime's own answer."""

    def __init__(self, runtime: Runtime, readings: Mapping[str, RuntimeProbe]) -> None:
        self.name = runtime.name
        self._runtime = runtime
        self._readings = readings

    async def create(self, spec: RuntimeSpec) -> RuntimeHandle:
        return await self._runtime.create(spec)

    async def probe(self, handle: RuntimeHandle) -> RuntimeProbe:
        reading = self._readings.get(handle.id)
        return reading if reading is not None else await self._runtime.probe(handle)

    async def destroy(self, handle: RuntimeHandle) -> None:
        await self._runtime.destroy(handle)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What the boot reconcile found and did.

    ``adopted``: probed alive and kept. ``dead``: the probe said the agent is gone (runtime
    down, or pane up with the agent exited); reported, so the lifecycle terminates it unless
    it was active within the last minute. ``quarantined``: the probe could not tell; reported
    as failed, so the session enters the detecting quarantine. ``interrupted``: running
    sessions with no runtime handle — a spawn the previous daemon never finished — now
    terminated ``error_in_process``. ``unprobeable``: sessions on a runtime this daemon does
    not run, left alone. ``orphans``: handles on our runtime that belong to no live session,
    reported and left running. ``inventory_error`` is set when the handles could not be
    listed."""

    adopted: tuple[SessionId, ...] = ()
    dead: tuple[SessionId, ...] = ()
    quarantined: tuple[SessionId, ...] = ()
    interrupted: tuple[SessionId, ...] = ()
    unprobeable: tuple[SessionId, ...] = ()
    orphans: tuple[RuntimeHandle, ...] = ()
    inventory_error: str = ""


def _failure(context: str, error: Exception) -> OrchestratorError:
    """``error`` re-raised as ``<context>: <error>``, keeping its public kind."""
    for kind in _PUBLIC_ERRORS:
        if isinstance(error, kind):
            return kind(f"{context}: {error}")
    return OrchestratorError(f"{context}: {error}")


def _join_prompt(prompt: str, agent_rules: str) -> str:
    return "\n\n".join(part for part in (prompt, agent_rules) if part)


class _SessionLocks:
    """One lock per session id, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[SessionId, tuple[trio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, session_id: SessionId) -> AsyncIterator[None]:
        lock, users = self._locks.get(session_id, (trio.Lock(), 0))
        self._locks[session_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[session_id]
            if users == 1:
                del self._locks[session_id]
            else:
                self._locks[session_id] = (lock, users - 1)


class SessionManager:
    """Spawns and tears down sessions around the lifecycle manager; see the module doc."""

    def __init__(
        self,
        store: SessionStore,
        lifecycle: SessionLifecycle,
        *,
        runtime: Runtime,
        workspace: Workspace,
        agents: Callable[[str], Agent],
        messenger: AgentMessenger,
        clock: Clock,
        hook_environment: Callable[[SessionRecord], Mapping[str, str]],
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._runtime = runtime
        self._workspace = workspace
        self._agents = agents
        self._messenger = messenger
        self._clock = clock
        self._hook_environment = hook_environment
        self._locks = _SessionLocks()

    # --- spawn ---------------------------------------------------------------------------

    async def spawn(self, request: SpawnRequest) -> SessionView:
        """Create the row, the workspace and the runtime, then report the spawn completed.
        Returns the new session (status ``spawning``). See the module doc for rollback."""
        project = await self._project("spawn", request.project_id)
        agent = self._agents(request.agent)  # an unknown agent fails before any row exists
        try:
            record = await self._store.create_session(
                project.id,
                now=self._clock.now(),
                issue_id=request.issue_id,
                kind=request.kind,
                harness=_HARNESSES.get(request.agent, AgentHarness.NONE),
            )
        except Exception as error:
            raise _failure("spawn: create", error) from error
        session_id = record.id
        async with self._locks.hold(session_id):
            await self._bring_up(record, project, agent, request)
        return await self.get(session_id)

    async def _bring_up(
        self, record: SessionRecord, project: Project, agent: Agent, request: SpawnRequest
    ) -> None:
        session_id = record.id
        undo: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        step = "workspace"
        try:
            ws = await self._workspace.create(project, session_id, request.branch)
            undo.append((f"workspace {ws.path}", lambda: self._workspace.destroy(ws.path)))
            step = "runtime"
            prompt = _join_prompt(request.prompt, request.agent_rules)
            config = LaunchConfig(session_id=session_id, workspace_path=ws.path, prompt=prompt)
            handle = await self._runtime.create(
                self._runtime_spec(record, ws, agent, config, agent.launch_command(config))
            )
            undo.append((f"runtime {handle.id}", lambda: self._runtime.destroy(handle)))
            step = "completed"
            await self._lifecycle.on_spawn_completed(
                session_id,
                SpawnOutcome(
                    branch=ws.branch,
                    workspace_path=ws.path,
                    runtime_handle_id=handle.id,
                    runtime_name=handle.runtime_name,
                    prompt=prompt,
                    agent=request.agent,
                ),
            )
        except BaseException as error:
            with trio.move_on_after(UNDO_TIMEOUT, shield=True) as scope:
                await self._roll_back(session_id, undo)
            if scope.cancelled_caught:
                log.exception("spawn %s: rollback timed out; leftovers may remain", session_id)
            if isinstance(error, Exception):
                raise _failure(f"spawn {session_id}: {step}", error) from error
            raise

    async def _roll_back(
        self, session_id: SessionId, undo: list[tuple[str, Callable[[], Awaitable[None]]]]
    ) -> None:
        """End the row first (so no undo that hangs can leave it ``spawning``), then undo
        what the failed spawn created, newest first. Undo errors are logged, never raised:
        the spawn's own error is what the caller needs."""
        try:
            await self._lifecycle.on_kill_requested(session_id, TerminationReason.ERROR_IN_PROCESS)
        except Exception:
            log.exception("spawn %s: could not mark the failed spawn errored", session_id)
        for what, action in reversed(undo):
            try:
                await action()
            except Exception:
                log.exception(
                    "spawn %s: rollback could not remove %s; left in place", session_id, what
                )

    def _runtime_spec(
        self,
        record: SessionRecord,
        ws: WorkspaceInfo,
        agent: Agent,
        config: LaunchConfig,
        command: Sequence[str],
    ) -> RuntimeSpec:
        env = {**agent.environment(config), **self._hook_environment(record)}
        return RuntimeSpec(
            session_id=record.id,
            workspace_path=ws.path,
            launch_command=tuple(command),
            env=env,
        )

    # --- kill ----------------------------------------------------------------------------

    async def kill(
        self, session_id: SessionId, reason: TerminationReason = TerminationReason.NONE
    ) -> bool:
        """Terminate the session, then remove its runtime and its workspace.

        Returns True once both are gone, False for a terminal session that never got either
        (a failed spawn: nothing to free). The row is terminated before any teardown, so a
        teardown error leaves a terminated session whose leftovers a later kill or cleanup
        reclaims. A workspace with uncommitted changes is kept: ``ConflictError`` says so.
        """
        async with self._locks.hold(session_id):
            record = await self._store.get_session(session_id)
            if record is None:
                raise NotFoundError(f"kill {session_id}: session not found")
            metadata = record.metadata
            if not metadata.runtime_handle_id or not metadata.workspace_path:
                if record.lifecycle.state.is_terminal and not (
                    metadata.runtime_handle_id or metadata.workspace_path
                ):
                    return False
                raise ConflictError(f"kill {session_id}: session: incomplete teardown handle")
            try:
                await self._lifecycle.on_kill_requested(session_id, reason)
            except Exception as error:
                raise _failure(f"kill {session_id}", error) from error
            try:
                await self._runtime.destroy(self._handle(record))
            except Exception as error:
                raise _failure(
                    f"kill {session_id}: runtime", error
                ) from error  # workspace kept: the agent may still be writing to it
            try:
                await self._workspace.destroy(metadata.workspace_path)
            except ConflictError as error:
                raise ConflictError(
                    f"kill {session_id}: workspace: {error} — the session is terminated and "
                    f"its runtime removed; the workspace was kept so no work is lost "
                    f"(commit or discard the changes, then run cleanup)"
                ) from error
            except Exception as error:
                raise _failure(f"kill {session_id}: workspace", error) from error
            return True

    def _handle(self, record: SessionRecord) -> RuntimeHandle:
        return RuntimeHandle(
            id=record.metadata.runtime_handle_id,
            runtime_name=record.metadata.runtime_name or self._runtime.name,
        )

    # --- restore -------------------------------------------------------------------------

    async def restore(self, session_id: SessionId, *, agent: str | None = None) -> SessionView:
        """Bring a terminal session back in its workspace: resume the agent's own session
        when its id is known, else relaunch it with the recorded prompt.

        ``agent`` overrides the agent the session recorded; it is needed only for sessions
        spawned before agents were recorded whose harness is not known either.
        All fallible I/O happens before the lifecycle write, so a failure never resurrects
        the row and never touches the workspace; only a failed lifecycle write removes the
        runtime this call created. Returns the session (status ``spawning``)."""
        async with self._locks.hold(session_id):
            record = await self._store.get_session(session_id)
            if record is None:
                raise NotFoundError(f"restore {session_id}: session not found")
            if not record.lifecycle.state.is_terminal:
                raise ConflictError(f"restore {session_id}: session: not restorable (not terminal)")
            metadata = record.metadata
            if not metadata.agent_session_id and not metadata.prompt:
                raise ConflictError(f"restore {session_id}: nothing to resume from")
            agent_name = agent or metadata.agent or record.lifecycle.harness.value
            if not agent_name:
                raise InvalidInputError(
                    f"restore {session_id}: the session's agent is not recorded; "
                    "name the agent to restore it with"
                )
            chosen = self._agents(agent_name)
            project = await self._project(f"restore {session_id}", record.project_id)
            await self._remove_old_runtime(record)
            try:
                ws = await self._workspace.restore(project, session_id, metadata.branch)
            except Exception as error:
                raise _failure(f"restore {session_id}: workspace", error) from error
            config = LaunchConfig(
                session_id=session_id, workspace_path=ws.path, prompt=metadata.prompt
            )
            try:
                command = (
                    chosen.restore_command(metadata.agent_session_id)
                    if metadata.agent_session_id
                    else chosen.launch_command(config)
                )
                handle = await self._runtime.create(
                    self._runtime_spec(record, ws, chosen, config, command)
                )
            except Exception as error:
                raise _failure(f"restore {session_id}: runtime", error) from error
            try:
                await self._lifecycle.on_restored(
                    session_id,
                    SpawnOutcome(
                        branch=ws.branch,
                        workspace_path=ws.path,
                        runtime_handle_id=handle.id,
                        runtime_name=handle.runtime_name,
                        agent_session_id=metadata.agent_session_id,
                        prompt=metadata.prompt,
                        agent=agent_name,
                    ),
                )
            except BaseException as error:
                with trio.move_on_after(UNDO_TIMEOUT, shield=True):
                    try:
                        await self._runtime.destroy(handle)
                    except Exception:
                        log.exception(
                            "restore %s: could not remove runtime %s", session_id, handle.id
                        )
                if isinstance(error, Exception):
                    raise _failure(f"restore {session_id}: completed", error) from error
                raise
        return await self.get(session_id)

    async def _remove_old_runtime(self, record: SessionRecord) -> None:
        """A terminal session's pane may outlive it (a merged PR ends the session, not the
        pane); it would collide with the new one. Only our own runtime's handles."""
        metadata = record.metadata
        if not metadata.runtime_handle_id or metadata.runtime_name not in (
            "",
            self._runtime.name,
        ):
            return
        try:
            await self._runtime.destroy(self._handle(record))
        except Exception as error:
            raise _failure(
                f"restore {record.id}: runtime: could not remove the previous runtime", error
            ) from error

    # --- cleanup -------------------------------------------------------------------------

    async def cleanup(self, project_id: ProjectId) -> list[SessionId]:
        """Reclaim the runtime and workspace of every terminal session of the project.
        Returns the ids whose workspace was removed; live sessions are never touched, and a
        workspace that refuses (uncommitted work) is kept and skipped."""
        await self._project("cleanup", project_id)
        cleaned: list[SessionId] = []
        for candidate in await self._store.list_sessions(project_id):
            if not candidate.lifecycle.state.is_terminal or not candidate.metadata.workspace_path:
                continue
            async with self._locks.hold(candidate.id):
                record = await self._store.get_session(candidate.id)
                if record is None or not record.lifecycle.state.is_terminal:
                    continue  # restored meanwhile
                if await self._reclaim(record):
                    cleaned.append(record.id)
        return cleaned

    async def _reclaim(self, record: SessionRecord) -> bool:
        metadata = record.metadata
        if metadata.runtime_handle_id:
            try:
                await self._runtime.destroy(self._handle(record))
            except OrchestratorError as error:
                log.warning("cleanup %s: runtime not removed (best effort): %s", record.id, error)
            except Exception:
                log.exception("cleanup %s: runtime not removed (best effort)", record.id)
        try:
            await self._workspace.destroy(metadata.workspace_path)
        except ConflictError as error:
            log.info("cleanup %s: workspace kept: %s", record.id, error)
            return False
        except OrchestratorError as error:
            log.warning("cleanup %s: workspace not removed: %s", record.id, error)
            return False
        except Exception:
            log.exception("cleanup %s: workspace not removed", record.id)
            return False
        return True

    # --- send and reads ------------------------------------------------------------------

    async def send(self, session_id: SessionId, message: str) -> None:
        """Type ``message`` into the session's agent."""
        if not message.strip():
            raise InvalidInputError(f"send {session_id}: the message is empty")
        record = await self._store.get_session(session_id)
        if record is None:
            raise NotFoundError(f"send {session_id}: session not found")
        lifecycle = record.lifecycle
        if lifecycle.state.is_terminal:
            reason = f" ({lifecycle.termination_reason})" if lifecycle.termination_reason else ""
            raise ConflictError(
                f"send {session_id}: session is {lifecycle.state}{reason}; restore it first"
            )
        try:
            await self._messenger.send(session_id, message)
        except Exception as error:
            raise _failure(f"send {session_id}", error) from error

    async def get(self, session_id: SessionId) -> SessionView:
        try:
            return await self._lifecycle.get(session_id)
        except NotFoundError:
            raise NotFoundError(f"get {session_id}: session not found") from None

    async def list(self, project_id: ProjectId | None = None) -> builtins.list[SessionView]:
        """Sessions (of one project, or all) with their derived status, by (project, num)."""
        if project_id is not None:
            await self._project("list", project_id)
        return await self._lifecycle.list(project_id)

    async def _project(self, op: str, project_id: ProjectId) -> Project:
        project = await self._store.get_project(project_id)
        if project is None:
            raise NotFoundError(f"{op}: project {project_id!r} not found")
        return project

    # --- boot reconcile ------------------------------------------------------------------

    async def reconcile(
        self,
        *,
        inventory: RuntimeInventory | None,
        probe_timeout: float,
        concurrency: int,
    ) -> ReconcileReport:
        """Run once at daemon start, before taking requests.

        Ends spawns the previous daemon never finished, probes every running session once
        (alive: adopted; dead or exited: reported, so the lifecycle terminates it per its
        rules; could not tell: reported failed, so it is quarantined), then lists the
        handles on our runtime that belong to no live session: returned and logged as
        orphans, never killed (a person decides). It probes like the reaper: pass the
        reaper's configured ``probe_timeout`` (seconds) and ``concurrency``. A runtime that
        can read all its sessions at once (``RuntimeSnapshot``) is read once, within
        ``probe_timeout``, and that reading answers every probe: a thousand live sessions
        are adopted without a thousand tmux processes."""
        interrupted: list[SessionId] = []
        for record in await self._lifecycle.running_sessions():
            if runtime_handle(record) is not None:
                continue
            try:
                await self._lifecycle.on_kill_requested(
                    record.id, TerminationReason.ERROR_IN_PROCESS
                )
            except Exception:
                log.exception("reconcile: could not end interrupted spawn %s", record.id)
                continue
            log.warning(
                "reconcile: session %s never finished spawning before the last shutdown; "
                "marked errored (its workspace, if any, is kept)",
                record.id,
            )
            interrupted.append(record.id)

        runtime = await self._boot_runtime(probe_timeout)
        reaper = Reaper(
            self._lifecycle,
            {runtime.name: runtime},
            self._clock,
            concurrency=concurrency,
            probe_timeout=probe_timeout,
        )
        sweep = await reaper.sweep()
        adopted = sweep.ids_where(ProbeResult.ALIVE, ProbeResult.ALIVE)
        quarantined = set(sweep.failed)
        dead = [s for s in sweep.observed if s not in quarantined and s not in adopted]

        orphans: list[RuntimeHandle] = []
        inventory_error = ""
        if inventory is not None:
            try:
                handles = await inventory.list_handles()
            except Exception as error:
                log.exception("reconcile: could not list runtime handles")
                inventory_error = str(error) or type(error).__name__
            else:
                live = {
                    (h.runtime_name, h.id)
                    for h in map(runtime_handle, await self._lifecycle.running_sessions())
                    if h is not None
                }
                orphans = [h for h in handles if (h.runtime_name, h.id) not in live]
                for handle in orphans:
                    log.warning(
                        "reconcile: runtime %s %r belongs to no live session; left running",
                        handle.runtime_name,
                        handle.id,
                    )
        log.info(
            "reconcile: %d adopted, %d dead, %d quarantined, %d interrupted, %d orphans",
            len(adopted),
            len(dead),
            len(quarantined),
            len(interrupted),
            len(orphans),
        )
        return ReconcileReport(
            adopted=tuple(adopted),
            dead=tuple(dead),
            quarantined=tuple(s for s in sweep.observed if s in quarantined),
            interrupted=tuple(interrupted),
            unprobeable=sweep.skipped,
            orphans=tuple(orphans),
            inventory_error=inventory_error,
        )

    async def _boot_runtime(self, probe_timeout: float) -> Runtime:
        """The runtime the boot reconcile probes: answered from one reading of all its
        sessions when it can take one in time, else (or when that fails) itself."""
        runtime = self._runtime
        if not isinstance(runtime, RuntimeSnapshot):
            return runtime
        with trio.move_on_after(probe_timeout):
            try:
                readings = await runtime.probe_all()
            except OrchestratorError as error:
                log.warning("reconcile: cannot read all sessions at once (%s); probing each", error)
                return runtime
            except Exception:
                log.exception("reconcile: reading all sessions at once failed; probing each")
                return runtime
            return _SnapshotRuntime(runtime, readings)
        log.warning("reconcile: reading all sessions at once timed out; probing each")
        return runtime
