"""The Session Manager: spawn, kill, restore, cleanup, rm, send, get and list sessions, and
the boot-time reconcile (``orchestrator.reconcile``).

The lifecycle manager is the only writer of lifecycle state; this module creates rows and
drives the runtime (tmux), the workspace (git worktree) and the agent around it. Rules:

- **Fail before starting.** A spawn first checks what would make it fail
  (``orchestrator.preflight``: the agent's executable, the project's repository, the
  branch), so such a spawn takes no session number and leaves no row, branch or worktree.
- **No phantom rows.** A spawn that fails after its row exists leaves that row terminated
  with ``error_in_process`` (no notification), never ``spawning``. The undo runs shielded
  from cancellation, so a client that goes away mid-spawn leaves no half-made session.
- **Never destroy work on failure.** Undo only removes what this very call created; restore
  and kill never force a workspace removal, and a workspace with uncommitted changes is kept
  (``ConflictError`` saying so); cleanup and rm keep it too (``orchestrator.cleanup``).
- **Restore resumes.** It runs the agent's resume command with the conversation id the
  session recorded (chosen at spawn, or reported by the agent's hook); without one it says
  so, and relaunches the recorded prompt only when asked (``fresh``).
- **Errors name the step:** ``spawn: …`` (a check), ``spawn: create: …``, ``spawn <id>:
  workspace|runtime|completed: …``, ``kill <id>: runtime|workspace: …``, ``restore <id>:
  …``, ``cleanup <id>: …``, ``rm <id>: …``, ``send <id>: …``. The error's kind
  (``NotFoundError``, ``ConflictError``, ``TransientError``…) is kept.
- **Unknown ids are 404s** for commands (docs/design.md, D-11): kill, restore, rm, send and
  get raise ``NotFoundError``; send to a terminal session raises ``ConflictError``.
- Commands on one session (spawn's completion, kill, restore, cleanup, rm) take turns: a
  kill that arrives while the session is still spawning waits for the spawn, then kills it.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, Protocol

import trio

from orchestrator.cleanup import CleanupReport, Reclaimed, prune, reclaim
from orchestrator.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OrchestratorError,
)
from orchestrator.domain.model import (
    AgentHarness,
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
    RuntimeSpec,
    SessionStore,
    Workspace,
    WorkspaceInfo,
)
from orchestrator.preflight import check_resumable, check_spawn, require_terminated, with_context
from orchestrator.reaper import ReaperLifecycle
from orchestrator.reconcile import ReconcileReport, RuntimeInventory, reconcile

__all__ = [
    "ReconcileReport",
    "RuntimeInventory",
    "SessionLifecycle",
    "SessionManager",
    "SpawnRequest",
]

log = logging.getLogger(__name__)

UNDO_TIMEOUT: Final = 30.0
"""How long a rollback may take once shielded from cancellation."""

_HARNESSES: Final = {h.value: h for h in AgentHarness if h is not AgentHarness.NONE}


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

    async def remove(self, session_id: SessionId) -> None: ...

    async def get(self, session_id: SessionId) -> SessionView: ...

    async def list(self, project_id: ProjectId | None = None) -> builtins.list[SessionView]: ...


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
        """Check the spawn can work, then create the row, the workspace and the runtime,
        and report the spawn completed. Returns the new session (status ``spawning``).
        See the module doc for the checks and the rollback."""
        project = await self._project("spawn", request.project_id)
        agent = self._agents(request.agent)  # an unknown agent fails before any row exists
        await check_spawn(self._store, self._workspace, project, agent, request.branch)
        try:
            record = await self._store.create_session(
                project.id,
                now=self._clock.now(),
                issue_id=request.issue_id,
                kind=request.kind,
                harness=_HARNESSES.get(request.agent, AgentHarness.NONE),
            )
        except Exception as error:
            raise with_context("spawn: create", error) from error
        session_id = record.id
        async with self._locks.hold(session_id):
            await self._bring_up(record, project, agent, request)
        return await self.get(session_id)

    async def check_project_path(self, path: str) -> None:
        """Refuse a project path no session could be spawned from (missing, not a
        directory, not a git work tree): ``InvalidInputError`` saying what to do."""
        await self._workspace.check_repository(path, require_commit=False)

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
            config = LaunchConfig(
                session_id=session_id,
                workspace_path=ws.path,
                prompt=prompt,
                agent_session_id=agent.choose_session_id(),
            )
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
                    agent_session_id=config.agent_session_id,
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
                raise with_context(f"spawn {session_id}: {step}", error) from error
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
                raise with_context(f"kill {session_id}", error) from error
            try:
                await self._runtime.destroy(self._handle(record))
            except Exception as error:
                raise with_context(
                    f"kill {session_id}: runtime", error
                ) from error  # workspace kept: the agent may still be writing to it
            try:
                await self._workspace.destroy(metadata.workspace_path)
            except ConflictError as error:
                raise ConflictError(
                    f"kill {session_id}: workspace: {error} — the session is terminated and "
                    f"its runtime removed; the workspace was kept so no work is lost "
                    f"(commit or discard the changes, then run `orchestrator cleanup`)"
                ) from error
            except Exception as error:
                raise with_context(f"kill {session_id}: workspace", error) from error
            return True

    def _handle(self, record: SessionRecord) -> RuntimeHandle:
        return RuntimeHandle(
            id=record.metadata.runtime_handle_id,
            runtime_name=record.metadata.runtime_name or self._runtime.name,
        )

    # --- restore -------------------------------------------------------------------------

    async def restore(
        self, session_id: SessionId, *, agent: str | None = None, fresh: bool = False
    ) -> SessionView:
        """Bring a terminal session back in its workspace, resuming the agent's own
        conversation by the id the session recorded.

        Without a known conversation id (or for an agent that cannot resume) this refuses
        with ``ConflictError`` saying so; ``fresh`` relaunches the agent with the recorded
        prompt instead, in a new conversation. ``agent`` overrides the agent the session
        recorded; it is needed only for sessions spawned before agents were recorded whose
        harness is not known either. All fallible I/O happens before the lifecycle write,
        so a failure never resurrects the row and never touches the workspace; only a failed
        lifecycle write removes the runtime this call created. Returns the session (status
        ``spawning``)."""
        async with self._locks.hold(session_id):
            record = await self._store.get_session(session_id)
            if record is None:
                raise NotFoundError(f"restore {session_id}: session not found")
            if not record.lifecycle.state.is_terminal:
                raise ConflictError(f"restore {session_id}: session: not restorable (not terminal)")
            metadata = record.metadata
            agent_name = agent or metadata.agent or record.lifecycle.harness.value
            if not agent_name:
                raise InvalidInputError(
                    f"restore {session_id}: the session's agent is not recorded; "
                    "name the agent to restore it with"
                )
            chosen = self._agents(agent_name)
            if not fresh:
                check_resumable(session_id, chosen, metadata.agent_session_id)
            try:
                chosen.check_installed(resume=not fresh)
            except Exception as error:
                raise with_context(f"restore {session_id}", error) from error
            project = await self._project(f"restore {session_id}", record.project_id)
            await self._remove_old_runtime(record)
            try:
                ws = await self._workspace.restore(project, session_id, metadata.branch)
            except Exception as error:
                raise with_context(f"restore {session_id}: workspace", error) from error
            config = LaunchConfig(
                session_id=session_id,
                workspace_path=ws.path,
                prompt=metadata.prompt,
                agent_session_id=chosen.choose_session_id() if fresh else "",
            )
            agent_session_id = config.agent_session_id if fresh else metadata.agent_session_id
            try:
                command = (
                    chosen.launch_command(config)
                    if fresh
                    else chosen.restore_command(metadata.agent_session_id)
                )
                handle = await self._runtime.create(
                    self._runtime_spec(record, ws, chosen, config, command)
                )
            except Exception as error:
                raise with_context(f"restore {session_id}: runtime", error) from error
            try:
                await self._lifecycle.on_restored(
                    session_id,
                    SpawnOutcome(
                        branch=ws.branch,
                        workspace_path=ws.path,
                        runtime_handle_id=handle.id,
                        runtime_name=handle.runtime_name,
                        agent_session_id=agent_session_id,
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
                    raise with_context(f"restore {session_id}: completed", error) from error
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
            raise with_context(
                f"restore {record.id}: runtime: could not remove the previous runtime", error
            ) from error

    # --- cleanup and removal -------------------------------------------------------------

    async def cleanup(
        self, *, session_id: SessionId | None = None, dry_run: bool = False
    ) -> CleanupReport:
        """Free the panes and worktrees of terminated sessions (every one, or just
        ``session_id``) where nothing is lost, then prune git's records of worktrees whose
        directories are gone; with ``dry_run`` only say what would go. Live sessions are
        never touched (``ConflictError`` when named). See ``orchestrator.cleanup``."""
        if session_id is not None:
            record = await self._store.get_session(session_id)
            if record is None:
                raise NotFoundError(f"cleanup {session_id}: session not found")
            require_terminated("cleanup", record)
            candidates = [record]
            projects = [await self._project(f"cleanup {session_id}", record.project_id)]
        else:
            candidates = await self._store.list_sessions()
            projects = await self._store.list_projects()
        # Prune first: removing a worktree prunes as well, which would hide what was stale.
        pruned = [await prune(p, self._workspace, dry_run=dry_run) for p in projects]
        reclaimed: list[Reclaimed] = []
        for candidate in candidates:
            if not candidate.lifecycle.state.is_terminal:
                continue
            async with self._locks.hold(candidate.id):
                record = await self._store.get_session(candidate.id)
                if record is None or not record.lifecycle.state.is_terminal:
                    continue  # removed or restored meanwhile
                try:
                    done = await reclaim(record, self._runtime, self._workspace, dry_run=dry_run)
                except OrchestratorError as error:  # reported; the other sessions go on
                    log.warning("cleanup %s: %s", record.id, error)
                    kept = record.metadata.workspace_path
                    done = Reclaimed(session_id=record.id, kept=kept, reason=str(error))
                if done.anything:
                    reclaimed.append(done)
        return CleanupReport(dry_run=dry_run, sessions=tuple(reclaimed), pruned=tuple(pruned))

    async def remove(self, session_id: SessionId) -> Reclaimed:
        """Delete a terminated session: free its pane and worktree as cleanup would, then
        its row (its history stays in the change log). Refuses (``ConflictError``) a live
        session, and one whose worktree holds work; returns what was freed."""
        async with self._locks.hold(session_id):
            record = await self._store.get_session(session_id)
            if record is None:
                raise NotFoundError(f"rm {session_id}: session not found")
            require_terminated("rm", record)
            try:
                freed = await reclaim(record, self._runtime, self._workspace, dry_run=False)
            except Exception as error:
                raise with_context(f"rm {session_id}", error) from error
            if freed.kept:
                raise ConflictError(
                    f"rm {session_id}: kept its worktree, {freed.reason}; commit or discard "
                    "the changes, then remove the session again"
                )
            try:
                await self._lifecycle.remove(session_id)
            except Exception as error:
                raise with_context(f"rm {session_id}", error) from error
            return freed

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
            raise with_context(f"send {session_id}", error) from error

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
        """The boot reconcile (``orchestrator.reconcile``) over this manager's runtime."""
        return await reconcile(
            self._lifecycle,
            self._runtime,
            self._clock,
            inventory=inventory,
            probe_timeout=probe_timeout,
            concurrency=concurrency,
        )
