"""The Session Manager over the real lifecycle engine with in-memory ports: spawn and its
rollback at each step, kill, restore, cleanup, send, reads, and the boot reconcile
(reference §5 with DESIGN's improvements: no phantom rows, never destroy work, D-11)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import pytest
import trio
import trio.testing

from adapters.memory import (
    MemoryStore,
    MemoryWorkspace,
    RecordingMessenger,
    Script,
    ScriptedRuntime,
    StubAgent,
)
from orchestrator.cleanup import PruneResult, Reclaimed
from orchestrator.clock import TrioClock
from orchestrator.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StoreError,
    TransientError,
)
from orchestrator.domain.model import (
    ActivityState,
    AgentHarness,
    CheckStatus,
    CIState,
    PRCheck,
    PRObservation,
    SessionRecord,
    SessionState,
    SessionStatus,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.ports import Agent, RuntimeHandle, RuntimeSpec
from orchestrator.reaper import Reaper
from orchestrator.sessions import SessionManager, SpawnRequest
from tests.engine_harness import Engine, running_engine

ROOT = "/memory-workspaces/mer"


def hook_environment(record: SessionRecord) -> Mapping[str, str]:
    return {
        "ORCHESTRATOR_SESSION_ID": record.id,
        "ORCHESTRATOR_PROJECT_ID": record.project_id,
        "ORCHESTRATOR_HOOK_TOKEN": f"token-for-{record.id}",
        "SHARED": "from-hooks",
    }


def agents(name: str) -> Agent:
    if name == "nope":
        raise InvalidInputError("unknown agent 'nope'")
    return StubAgent(name, env={"AGENT_ONLY": "1", "SHARED": "from-agent"})


@dataclass
class World:
    engine: Engine
    runtime: ScriptedRuntime
    workspace: MemoryWorkspace
    sessions: SessionManager

    @property
    def messenger(self) -> RecordingMessenger:
        return self.engine.messenger

    async def spawn(self, agent: str = "claude-code", *, branch: str = "", prompt: str = "") -> str:
        await self.engine.project()
        request = SpawnRequest(project_id="mer", agent=agent, branch=branch, prompt=prompt)
        return (await self.sessions.spawn(request)).record.id

    async def record(self, session_id: str) -> SessionRecord:
        return await self.engine.state(session_id)

    async def status(self, session_id: str) -> SessionStatus:
        return (await self.sessions.get(session_id)).status


def session_manager(
    engine: Engine, runtime: ScriptedRuntime, workspace: MemoryWorkspace
) -> SessionManager:
    return SessionManager(
        engine.store,
        engine.manager,
        runtime=runtime,
        workspace=workspace,
        agents=agents,
        messenger=engine.messenger,
        clock=engine.clock,
        hook_environment=hook_environment,
    )


def session_manager_with(world: World, agents: Callable[[str], Agent]) -> SessionManager:
    return SessionManager(
        world.engine.store,
        world.engine.manager,
        runtime=world.runtime,
        workspace=world.workspace,
        agents=agents,
        messenger=world.engine.messenger,
        clock=world.engine.clock,
        hook_environment=hook_environment,
    )


async def handle_id(store: MemoryStore, session_id: str) -> str:
    record = await store.get_session(session_id)
    assert record is not None
    return record.metadata.runtime_handle_id


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with running_engine(MemoryStore()) as engine:
        runtime, workspace = ScriptedRuntime(), MemoryWorkspace()
        yield World(engine, runtime, workspace, session_manager(engine, runtime, workspace))


# --- spawn ---------------------------------------------------------------------------------


async def test_spawn_creates_workspace_and_runtime_and_reports_spawning(world: World) -> None:
    await world.engine.project()
    view = await world.sessions.spawn(
        SpawnRequest(
            project_id="mer",
            agent="claude-code",
            issue_id="#12",
            prompt="Fix the flaky test",
            agent_rules="Run the tests first",
        )
    )
    assert (view.record.id, view.status) == ("mer-1", SessionStatus.SPAWNING)
    [spec] = world.runtime.created
    assert spec.session_id == "mer-1"
    assert spec.workspace_path == f"{ROOT}/mer-1"
    assert spec.launch_command == (
        "stub-agent",
        "--session",
        "mer-1",
        "Fix the flaky test\n\nRun the tests first",
    )
    assert spec.env == {
        "AGENT_ONLY": "1",
        "SHARED": "from-hooks",  # the hook environment wins over the agent's
        "ORCHESTRATOR_SESSION_ID": "mer-1",
        "ORCHESTRATOR_PROJECT_ID": "mer",
        "ORCHESTRATOR_HOOK_TOKEN": "token-for-mer-1",
    }
    record = await world.record("mer-1")
    assert record.issue_id == "#12"
    assert record.metadata.workspace_path == f"{ROOT}/mer-1"
    assert record.metadata.branch == "orchestrator/mer-1"
    assert (record.metadata.runtime_handle_id, record.metadata.runtime_name) == (
        "mer-1#1",
        "scripted",
    )
    assert record.metadata.prompt == "Fix the flaky test\n\nRun the tests first"
    lc = record.lifecycle
    assert (lc.state, lc.is_alive, lc.harness) == (
        SessionState.NOT_STARTED,
        True,
        AgentHarness.CLAUDE_CODE,
    )
    assert world.workspace.live == {f"{ROOT}/mer-1": "orchestrator/mer-1"}
    assert await world.spawn(branch="feat/x") == "mer-2"
    assert (await world.record("mer-2")).metadata.branch == "feat/x"


async def test_spawn_of_a_custom_agent_records_no_harness(world: World) -> None:
    sid = await world.spawn(agent="my-agent", prompt="hi")
    assert (await world.record(sid)).lifecycle.harness is AgentHarness.NONE


async def test_spawn_refuses_unknown_project_and_agent_before_creating_anything(
    world: World,
) -> None:
    with pytest.raises(NotFoundError, match="spawn: project 'ghost' not found"):
        await world.sessions.spawn(SpawnRequest(project_id="ghost", agent="claude-code"))
    await world.engine.project()
    with pytest.raises(InvalidInputError, match="unknown agent 'nope'"):
        await world.sessions.spawn(SpawnRequest(project_id="mer", agent="nope"))
    assert await world.engine.store.list_sessions() == []
    assert (world.workspace.live, world.runtime.created) == ({}, [])


async def test_a_spawn_that_cannot_work_fails_before_it_takes_a_number(world: World) -> None:
    await world.engine.project()
    live = await world.spawn(branch="feat/taken")
    await world.engine.manager.on_kill_requested(await world.spawn(branch="feat/old"))
    before = (await world.engine.store.list_sessions(), list(world.runtime.created))

    async def refused(kind: type[Exception], agent: str = "claude-code", branch: str = "") -> str:
        with pytest.raises(kind) as raised:
            await world.sessions.spawn(SpawnRequest(project_id="mer", agent=agent, branch=branch))
        return str(raised.value)

    assert await refused(ConflictError, branch="feat/taken") == (
        f"spawn: branch feat/taken is in use by live session {live}: choose another branch name"
    )
    assert await refused(ConflictError, branch="feat/old") == (
        "spawn: branch feat/old already exists in /repos/mer"
    )
    assert await refused(InvalidInputError, branch="-x") == "spawn: '-x' is not a valid branch name"
    world.workspace.broken_repos["/repos/mer"] = "repository /repos/mer has no commits yet: make"
    assert await refused(InvalidInputError) == (
        "spawn: project mer: repository /repos/mer has no commits yet: make"
    )
    world.workspace.broken_repos.clear()
    world.sessions = session_manager_with(world, lambda name: StubAgent(name, missing=True))
    assert await refused(InvalidInputError) == (
        "spawn: agent claude-code: `stub-agent` is not on PATH"
    )

    assert (await world.engine.store.list_sessions(), world.runtime.created) == before
    world.sessions = session_manager(world.engine, world.runtime, world.workspace)
    assert await world.spawn() == "mer-3"  # no number was used up


async def test_project_paths_are_checked_without_needing_a_commit(world: World) -> None:
    await world.sessions.check_project_path("/repos/fine")
    world.workspace.broken_repos["/repos/plain"] = "/repos/plain is not a git work tree"
    with pytest.raises(InvalidInputError, match=r"^/repos/plain is not a git work tree$"):
        await world.sessions.check_project_path("/repos/plain")


async def test_spawn_fails_cleanly_when_the_row_cannot_be_created() -> None:
    class FullStore(MemoryStore):
        async def create_session(self, *args: object, **kwargs: object) -> SessionRecord:
            raise StoreError("database or disk is full")

    async with running_engine(FullStore()) as engine:
        runtime, workspace = ScriptedRuntime(), MemoryWorkspace()
        await engine.project()
        sessions = session_manager(engine, runtime, workspace)
        with pytest.raises(StoreError, match=r"^spawn: create: database or disk is full$"):
            await sessions.spawn(SpawnRequest(project_id="mer", agent="claude-code"))
        assert await engine.store.list_sessions() == []
        assert (workspace.live, workspace.destroyed, runtime.created) == ({}, [], [])


@pytest.mark.parametrize(
    ("step", "kind", "runtime_destroyed", "workspace_destroyed"),
    [
        ("workspace", TransientError, [], []),
        ("runtime", TransientError, [], [f"{ROOT}/mer-1"]),
        ("completed", StoreError, ["mer-1#1"], [f"{ROOT}/mer-1"]),
    ],
)
async def test_a_failed_spawn_undoes_its_steps_and_leaves_an_errored_row(
    world: World,
    step: str,
    kind: type[Exception],
    runtime_destroyed: list[str],
    workspace_destroyed: list[str],
) -> None:
    if step == "workspace":
        world.workspace.fail_create = TransientError("no space left on device")
    elif step == "runtime":
        world.runtime.fail_create = TransientError("no space left on device")
    else:
        world.engine.store.fail_next_commit = StoreError("no space left on device")  # type: ignore[attr-defined]
    with pytest.raises(kind, match=f"^spawn mer-1: {step}: no space left"):
        await world.spawn()
    record = await world.record("mer-1")
    lc = record.lifecycle
    assert (lc.state, lc.termination_reason, lc.is_alive) == (
        SessionState.TERMINATED,
        TerminationReason.ERROR_IN_PROCESS,
        False,
    )
    assert await world.status("mer-1") is SessionStatus.ERRORED
    assert world.runtime.destroyed == runtime_destroyed
    assert world.workspace.destroyed == workspace_destroyed
    assert world.workspace.live == {}
    assert await world.engine.manager.running_sessions() == []  # no phantom spawning row
    await world.engine.deliver()
    assert world.engine.notified() == []  # a failed spawn is the caller's error, not a page
    assert await world.sessions.kill("mer-1") is False  # nothing was left to free


async def test_a_spawn_cancelled_midway_still_rolls_back(
    world: World, autojump_clock: trio.testing.MockClock
) -> None:
    class SlowRuntime(ScriptedRuntime):
        async def create(self, spec: RuntimeSpec) -> RuntimeHandle:
            await trio.sleep(60)
            return await super().create(spec)

    class SlowWorkspace(MemoryWorkspace):
        async def destroy(self, workspace_path: str) -> None:
            await trio.sleep(2)  # like `git worktree remove`: it takes a while
            await super().destroy(workspace_path)

    workspace = SlowWorkspace()
    sessions = session_manager(world.engine, SlowRuntime(), workspace)
    await world.engine.project()
    with trio.move_on_after(5):  # the client gave up
        await sessions.spawn(SpawnRequest(project_id="mer", agent="claude-code"))
    lc = (await world.record("mer-1")).lifecycle
    assert (lc.state, lc.termination_reason) == (
        SessionState.TERMINATED,
        TerminationReason.ERROR_IN_PROCESS,
    )
    assert workspace.live == {}
    assert workspace.destroyed == [f"{ROOT}/mer-1"]


async def test_a_failed_spawn_never_deletes_a_workspace_that_holds_work(world: World) -> None:
    world.workspace.dirty.add(f"{ROOT}/mer-1")  # e.g. an existing branch with local changes
    world.runtime.fail_create = TransientError("tmux: server exited")
    with pytest.raises(TransientError, match="spawn mer-1: runtime: tmux: server exited"):
        await world.spawn(branch="feat/existing")
    assert world.workspace.live == {f"{ROOT}/mer-1": "feat/existing"}
    assert (await world.record("mer-1")).lifecycle.state is SessionState.TERMINATED


# --- kill ----------------------------------------------------------------------------------


async def test_kill_terminates_then_frees_runtime_and_workspace(world: World) -> None:
    sid = await world.spawn()
    assert await world.sessions.kill(sid) is True
    assert world.runtime.destroyed == ["mer-1#1"]
    assert world.workspace.destroyed == [f"{ROOT}/mer-1"]
    lc = (await world.record(sid)).lifecycle
    assert (lc.state, lc.termination_reason, lc.is_alive) == (
        SessionState.TERMINATED,
        TerminationReason.MANUALLY_KILLED,
        False,
    )
    assert await world.status(sid) is SessionStatus.KILLED
    await world.engine.deliver()
    assert world.engine.notified() == []  # a kill is a human's own action
    assert await world.sessions.kill(sid, TerminationReason.AUTO_CLEANUP) is True  # idempotent
    assert (await world.record(sid)).lifecycle.termination_reason is (
        TerminationReason.MANUALLY_KILLED
    )


async def test_kill_records_the_reason_given(world: World) -> None:
    sid = await world.spawn()
    await world.sessions.kill(sid, TerminationReason.AUTO_CLEANUP)
    assert await world.status(sid) is SessionStatus.CLEANUP


async def test_kill_of_an_unknown_session_is_not_found(world: World) -> None:
    with pytest.raises(NotFoundError, match="kill mer-9: session not found"):
        await world.sessions.kill("mer-9")


async def test_kill_refuses_a_session_without_a_complete_teardown_handle(world: World) -> None:
    await world.engine.project()
    record = await world.engine.store.create_session("mer", now=world.engine.clock.now())
    with pytest.raises(ConflictError, match="kill mer-1: session: incomplete teardown handle"):
        await world.sessions.kill(record.id)
    assert (await world.record(record.id)).lifecycle.state is SessionState.NOT_STARTED
    assert (world.runtime.destroyed, world.workspace.destroyed) == ([], [])


async def test_kill_keeps_a_workspace_with_uncommitted_changes_and_says_why(
    world: World,
) -> None:
    sid = await world.spawn()
    world.workspace.dirty.add(f"{ROOT}/mer-1")
    with pytest.raises(ConflictError) as raised:
        await world.sessions.kill(sid)
    message = str(raised.value)
    assert message.startswith("kill mer-1: workspace: ")
    assert "uncommitted changes" in message
    assert "the workspace was kept" in message
    assert f"{ROOT}/mer-1" in world.workspace.live  # nothing lost
    assert world.runtime.destroyed == ["mer-1#1"]  # the agent is stopped
    assert (await world.record(sid)).lifecycle.state is SessionState.TERMINATED
    # Once the work is committed, cleanup reclaims the workspace.
    world.workspace.dirty.clear()
    report = await world.sessions.cleanup()
    assert [(r.session_id, r.workspace) for r in report.sessions] == [(sid, f"{ROOT}/mer-1")]
    assert world.workspace.live == {}


async def test_kill_keeps_the_workspace_when_the_runtime_will_not_go(world: World) -> None:
    sid = await world.spawn()
    world.runtime.fail_destroy = TransientError("tmux: timed out")
    with pytest.raises(TransientError, match=r"^kill mer-1: runtime: tmux: timed out$"):
        await world.sessions.kill(sid)
    assert (await world.record(sid)).lifecycle.state is SessionState.TERMINATED
    assert f"{ROOT}/mer-1" in world.workspace.live  # the agent may still be writing there
    world.runtime.fail_destroy = None
    assert await world.sessions.kill(sid) is True  # a retry reclaims everything
    assert world.workspace.live == {}


async def test_a_kill_during_spawn_waits_for_it_then_kills(
    world: World, autojump_clock: trio.testing.MockClock
) -> None:
    class SlowRuntime(ScriptedRuntime):
        async def create(self, spec: RuntimeSpec) -> RuntimeHandle:
            await trio.sleep(10)
            return await super().create(spec)

    slow = SlowRuntime()
    sessions = session_manager(world.engine, slow, world.workspace)
    await world.engine.project()
    freed: list[bool] = []

    async def kill_soon() -> None:
        await trio.sleep(1)  # the row exists, the runtime does not yet
        freed.append(await sessions.kill("mer-1"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(kill_soon)
        view = await sessions.spawn(SpawnRequest(project_id="mer", agent="claude-code"))
    assert view.status is SessionStatus.SPAWNING
    assert freed == [True]
    assert slow.destroyed == ["mer-1#1"]
    assert (await world.record("mer-1")).lifecycle.state is SessionState.TERMINATED


# --- restore -------------------------------------------------------------------------------


async def test_restore_resumes_the_agent_s_own_session(world: World) -> None:
    sid = await world.spawn(prompt="Fix it")
    # The agent's hook told us its own session id while it ran.
    await world.engine.manager.on_spawn_completed(sid, SpawnOutcome(agent_session_id="abc-123"))
    await world.engine.activity(sid, ActivityState.ACTIVE)
    await world.sessions.kill(sid)

    view = await world.sessions.restore(sid)

    assert view.status is SessionStatus.SPAWNING
    spec = world.runtime.created[-1]
    assert spec.launch_command == ("stub-agent", "--resume", "abc-123")
    assert spec.workspace_path == f"{ROOT}/mer-1"
    assert spec.env["ORCHESTRATOR_SESSION_ID"] == sid
    record = await world.record(sid)
    assert record.metadata.runtime_handle_id == "mer-1#2"
    assert record.metadata.agent_session_id == "abc-123"
    assert (record.lifecycle.state, record.lifecycle.is_alive) == (SessionState.NOT_STARTED, True)
    assert world.workspace.live == {f"{ROOT}/mer-1": "orchestrator/mer-1"}


async def test_restore_without_a_conversation_id_says_so_and_relaunches_only_when_fresh(
    world: World,
) -> None:
    sid = await world.spawn(prompt="Fix it")
    await world.sessions.kill(sid)
    with pytest.raises(ConflictError) as raised:
        await world.sessions.restore(sid)
    assert str(raised.value) == (
        "restore mer-1: no conversation id of agent claude-code is recorded (its hook never "
        "reported agentSessionId); restore it fresh (--fresh) to relaunch the agent with its "
        "original prompt in a new conversation"
    )
    assert len(world.runtime.created) == 1  # nothing was started
    assert (await world.record(sid)).lifecycle.state is SessionState.TERMINATED

    await world.sessions.restore(sid, fresh=True)
    assert world.runtime.created[-1].launch_command == ("stub-agent", "--session", sid, "Fix it")


async def test_a_fresh_restore_starts_a_new_conversation_when_the_launcher_chooses_it(
    world: World,
) -> None:
    def choosing(name: str) -> Agent:
        return StubAgent(name, chosen_session_id=f"conv-{len(world.runtime.created) + 1}")

    world.sessions = session_manager_with(world, choosing)
    sid = await world.spawn(prompt="Fix it")
    assert world.runtime.created[-1].launch_command == (
        "stub-agent", "--session", sid, "--agent-session", "conv-1", "Fix it"
    )  # fmt: skip
    assert (await world.record(sid)).metadata.agent_session_id == "conv-1"
    await world.sessions.kill(sid)

    await world.sessions.restore(sid)  # resumes the conversation chosen at spawn
    assert list(world.runtime.created[-1].launch_command) == ["stub-agent", "--resume", "conv-1"]
    await world.sessions.kill(sid)
    await world.sessions.restore(sid, fresh=True)  # a new one, recorded in its place
    assert world.runtime.created[-1].launch_command == (
        "stub-agent", "--session", sid, "--agent-session", "conv-3", "Fix it"
    )  # fmt: skip
    assert (await world.record(sid)).metadata.agent_session_id == "conv-3"


async def test_restore_of_an_agent_that_cannot_resume_says_why(world: World) -> None:
    world.sessions = session_manager_with(
        world, lambda name: StubAgent(name, unsupported="aider has no conversation ids to resume")
    )
    sid = await world.spawn(agent="aider", prompt="Fix it")
    await world.engine.manager.on_spawn_completed(sid, SpawnOutcome(agent_session_id="x-1"))
    await world.sessions.kill(sid)
    with pytest.raises(ConflictError, match=r"^restore mer-1: aider has no conversation ids to "):
        await world.sessions.restore(sid)
    assert (await world.sessions.restore(sid, fresh=True)).status is SessionStatus.SPAWNING


async def test_restore_refuses_an_agent_that_is_no_longer_installed(world: World) -> None:
    sid = await world.spawn(prompt="Fix it")
    await world.sessions.kill(sid)
    world.sessions = session_manager_with(world, lambda name: StubAgent(name, missing=True))
    with pytest.raises(InvalidInputError, match=r"^restore mer-1: agent claude-code: `stub-agent`"):
        await world.sessions.restore(sid, fresh=True)
    assert len(world.runtime.created) == 1


async def test_restore_relaunches_the_agent_the_session_recorded(world: World) -> None:
    asked: list[str] = []

    def recording_agents(name: str) -> Agent:
        asked.append(name)
        return agents(name)

    world.sessions = session_manager_with(world, recording_agents)
    sid = await world.spawn(agent="my-agent", prompt="Fix it")  # custom: no harness
    assert (await world.record(sid)).metadata.agent == "my-agent"
    await world.sessions.kill(sid)

    assert (await world.sessions.restore(sid, fresh=True)).status is SessionStatus.SPAWNING
    assert asked == ["my-agent", "my-agent"]
    assert (await world.record(sid)).metadata.agent == "my-agent"


async def test_restore_needs_the_agent_named_when_none_was_recorded(world: World) -> None:
    """A session from before agents were recorded, of an agent with no known harness."""
    project = await world.engine.project()
    record = await world.engine.store.create_session(project.id, now=world.engine.clock.now())
    await world.engine.manager.on_spawn_completed(
        record.id, SpawnOutcome(branch=f"orchestrator/{record.id}", prompt="Fix it")
    )
    await world.engine.manager.on_kill_requested(record.id)
    with pytest.raises(InvalidInputError, match="name the agent"):
        await world.sessions.restore(record.id)
    restored = await world.sessions.restore(record.id, agent="my-agent", fresh=True)
    assert restored.status is SessionStatus.SPAWNING
    assert (await world.record(record.id)).metadata.agent == "my-agent"  # known from now on


async def test_restore_refuses_live_unknown_and_unresumable_sessions(world: World) -> None:
    live = await world.spawn(prompt="Fix it")
    with pytest.raises(ConflictError, match="restore mer-1: session: not restorable"):
        await world.sessions.restore(live)
    with pytest.raises(NotFoundError, match="restore mer-9: session not found"):
        await world.sessions.restore("mer-9")
    bare = await world.spawn()  # no prompt, no agent session id
    await world.sessions.kill(bare)
    with pytest.raises(ConflictError, match="restore mer-2: no conversation id of agent"):
        await world.sessions.restore(bare)
    assert len(world.runtime.created) == 2


async def test_a_failed_restore_leaves_the_session_terminated_and_its_work_in_place(
    world: World,
) -> None:
    sid = await world.spawn(prompt="Fix it")
    world.workspace.dirty.add(f"{ROOT}/mer-1")
    with pytest.raises(ConflictError):
        await world.sessions.kill(sid)  # the workspace with its changes stays
    world.runtime.fail_create = TransientError("tmux: server exited")
    with pytest.raises(TransientError, match=r"^restore mer-1: runtime: tmux: server exited$"):
        await world.sessions.restore(sid, fresh=True)
    assert (await world.record(sid)).lifecycle.state is SessionState.TERMINATED
    assert f"{ROOT}/mer-1" in world.workspace.live

    world.runtime.fail_create = None
    world.engine.store.fail_next_commit = StoreError("disk I/O error")  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match=r"^restore mer-1: completed: disk I/O error$"):
        await world.sessions.restore(sid, fresh=True)
    assert (await world.record(sid)).lifecycle.state is SessionState.TERMINATED
    assert world.runtime.destroyed[-1] == "mer-1#2"  # only the runtime this call created
    assert f"{ROOT}/mer-1" in world.workspace.live

    assert (await world.sessions.restore(sid, fresh=True)).status is SessionStatus.SPAWNING


async def test_restore_replaces_a_pane_that_outlived_its_session(world: World) -> None:
    sid = await world.spawn(prompt="Fix it")
    merged = PRObservation(url="https://github.com/acme/app/pull/1", number=1, merged=True)
    await world.engine.manager.apply_pr_observation(sid, merged)  # ends the session, not the pane
    await world.sessions.restore(sid, fresh=True)
    assert world.runtime.destroyed == ["mer-1#1"]
    assert (await world.record(sid)).metadata.runtime_handle_id == "mer-1#2"


# --- cleanup -------------------------------------------------------------------------------


async def test_cleanup_reclaims_only_terminal_sessions_workspaces(world: World) -> None:
    live = await world.spawn()
    lost = await world.spawn()
    dirty = await world.spawn()
    world.workspace.fail_create = TransientError("disk full")
    with pytest.raises(TransientError):
        await world.spawn()  # mer-4: errored, with nothing to reclaim
    world.workspace.fail_create = None
    await world.engine.manager.on_kill_requested(lost, TerminationReason.RUNTIME_LOST)
    await world.engine.manager.on_kill_requested(dirty)
    world.workspace.dirty.add(f"{ROOT}/{dirty}")
    handles = [(await world.record(s)).metadata.runtime_handle_id for s in (lost, dirty)]

    dry = await world.sessions.cleanup(dry_run=True)
    assert (world.runtime.destroyed, world.workspace.destroyed) == ([], [])  # nothing moved
    report = await world.sessions.cleanup()

    expected = (
        Reclaimed(session_id=lost, pane=handles[0], workspace=f"{ROOT}/{lost}"),
        Reclaimed(
            session_id=dirty,
            pane=handles[1],
            kept=f"{ROOT}/{dirty}",
            reason="it has uncommitted changes",
        ),
    )
    assert (dry.dry_run, dry.sessions) == (True, expected)
    assert (report.dry_run, report.sessions) == (False, expected)
    assert world.runtime.destroyed == handles  # the panes go, dirty or not
    assert set(world.workspace.live) == {f"{ROOT}/{live}", f"{ROOT}/{dirty}"}
    assert (await world.record(live)).lifecycle.state is SessionState.NOT_STARTED
    # Run again, there is nothing left but the kept worktree.
    assert [r.session_id for r in (await world.sessions.cleanup()).sessions] == [dirty]


async def test_cleanup_of_one_session_and_its_refusals(world: World) -> None:
    live = await world.spawn()
    done = await world.spawn()
    other = await world.spawn()
    for sid in (done, other):
        await world.engine.manager.on_kill_requested(sid)
    world.workspace.stale["mer"] = ["Removing worktrees/mer-9: gitdir file points nowhere"]

    report = await world.sessions.cleanup(session_id=done)
    assert [r.session_id for r in report.sessions] == [done]
    assert f"{ROOT}/{other}" in world.workspace.live
    assert report.pruned == (
        PruneResult(
            project_id="mer", entries=("Removing worktrees/mer-9: gitdir file points nowhere",)
        ),
    )
    with pytest.raises(ConflictError, match=f"cleanup {live}: the session is live"):
        await world.sessions.cleanup(session_id=live)
    with pytest.raises(NotFoundError, match="cleanup mer-9: session not found"):
        await world.sessions.cleanup(session_id="mer-9")
    assert f"{ROOT}/{live}" in world.workspace.live


async def test_remove_frees_and_deletes_a_terminated_session(world: World) -> None:
    sid = await world.spawn()
    live = await world.spawn()
    dirty = await world.spawn()
    for ended in (sid, dirty):
        await world.engine.manager.on_kill_requested(ended)
    world.workspace.dirty.add(f"{ROOT}/{dirty}")

    freed = await world.sessions.remove(sid)
    assert freed == Reclaimed(session_id=sid, pane="mer-1#1", workspace=f"{ROOT}/{sid}")
    assert await world.engine.store.get_session(sid) is None
    with pytest.raises(NotFoundError, match=f"get {sid}: session not found"):
        await world.sessions.get(sid)
    with pytest.raises(NotFoundError, match=f"rm {sid}: session not found"):
        await world.sessions.remove(sid)
    with pytest.raises(ConflictError) as raised:
        await world.sessions.remove(live)
    assert str(raised.value) == (
        f"rm {live}: the session is live (not_started); kill it first (`orchestrator kill {live}`)"
    )
    with pytest.raises(ConflictError, match=f"rm {dirty}: kept its worktree, it has uncommitted"):
        await world.sessions.remove(dirty)
    assert await world.engine.store.get_session(dirty) is not None
    assert [v.record.id for v in await world.sessions.list()] == [live, dirty]
    assert await world.spawn() == "mer-4"  # the removed number is not handed out again


# --- send and reads ------------------------------------------------------------------------


async def test_send_types_into_live_sessions_only(world: World) -> None:
    sid = await world.spawn()
    await world.sessions.send(sid, "please rebase")
    assert world.messenger.sent == [(sid, "please rebase")]
    with pytest.raises(NotFoundError, match="send mer-9: session not found"):
        await world.sessions.send("mer-9", "hello")
    with pytest.raises(InvalidInputError, match="empty"):
        await world.sessions.send(sid, "  ")
    world.messenger.fail_times = 1
    with pytest.raises(TransientError, match=r"^send mer-1: agent unreachable$"):
        await world.sessions.send(sid, "again")
    await world.sessions.kill(sid)
    with pytest.raises(ConflictError, match="session is terminated \\(manually_killed\\)"):
        await world.sessions.send(sid, "hello?")
    assert world.messenger.sent == [(sid, "please rebase")]


async def test_get_and_list_derive_status_from_pr_facts(world: World) -> None:
    a, b = await world.spawn(), await world.spawn()
    await world.engine.activity(a, ActivityState.ACTIVE)
    failing = PRObservation(
        url="https://github.com/acme/app/pull/7",
        number=7,
        ci=CIState.FAILING,
        checks=(PRCheck(name="test", commit="c1", status=CheckStatus.FAILED),),
    )
    await world.engine.manager.apply_pr_observation(a, failing)
    assert (await world.sessions.get(a)).status is SessionStatus.CI_FAILED
    assert [(v.record.id, v.status) for v in await world.sessions.list("mer")] == [
        (a, SessionStatus.CI_FAILED),
        (b, SessionStatus.SPAWNING),
    ]
    assert len(await world.sessions.list()) == 2
    with pytest.raises(NotFoundError, match="get mer-9: session not found"):
        await world.sessions.get("mer-9")
    with pytest.raises(NotFoundError, match="list: project 'ghost' not found"):
        await world.sessions.list("ghost")


# --- boot reconcile ------------------------------------------------------------------------


async def test_reconcile_adopts_live_panes_ends_dead_ones_and_reports_orphans(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, clock = MemoryStore(), TrioClock()
    runtime, workspace = ScriptedRuntime(), MemoryWorkspace()
    async with running_engine(store, clock=clock) as before:
        sessions = session_manager(before, runtime, workspace)
        await before.project()
        ids = [
            (await sessions.spawn(SpawnRequest(project_id="mer", agent="claude-code"))).record.id
            for _ in range(4)
        ]
        alive, dead, hung, killed = ids
        for sid in ids:
            await before.activity(sid, ActivityState.ACTIVE)
        await before.manager.on_kill_requested(killed)  # ended, but its pane was left behind
        interrupted = (await store.create_session("mer", now=clock.now())).id  # crash mid-spawn
        ghost = await runtime.create(
            RuntimeSpec(session_id="ghost", workspace_path="/tmp", launch_command=("sh",))
        )

    # The daemon is down for two minutes; one pane dies, one stops answering.
    await trio.sleep(120)
    runtime.script[await handle_id(store, dead)] = Script.DEAD
    runtime.script[await handle_id(store, hung)] = Script.TIMEOUT

    async with running_engine(store, clock=clock) as after:
        sessions = session_manager(after, runtime, workspace)
        report = await sessions.reconcile(inventory=runtime, probe_timeout=2.0, concurrency=64)

        assert report.adopted == (alive,)
        assert report.dead == (dead,)
        assert report.quarantined == (hung,)
        assert report.interrupted == (interrupted,)
        assert set(report.orphans) == {
            ghost,
            RuntimeHandle(id=await handle_id(store, killed), runtime_name="scripted"),
        }
        assert report.inventory_error == ""

        async def state(sid: str) -> tuple[SessionState, TerminationReason]:
            lc = (await after.state(sid)).lifecycle
            return lc.state, lc.termination_reason

        assert await state(alive) == (SessionState.WORKING, TerminationReason.NONE)
        assert await state(dead) == (SessionState.TERMINATED, TerminationReason.RUNTIME_LOST)
        assert await state(hung) == (SessionState.DETECTING, TerminationReason.NONE)
        assert await state(interrupted) == (
            SessionState.TERMINATED,
            TerminationReason.ERROR_IN_PROCESS,
        )
        assert runtime.destroyed == []  # orphans are reported, never killed
        await after.deliver()
        assert after.notified() == ["reaction.agent-exited"]


async def test_reconcile_leaves_a_recently_active_dead_session_to_the_reaper(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Dead panes are reported, and the lifecycle terminates them once the 60 s activity
    window has passed (D-8): right after a quick restart that means the next ticks."""
    store, clock = MemoryStore(), TrioClock()
    runtime, workspace = ScriptedRuntime(), MemoryWorkspace()
    async with running_engine(store, clock=clock) as engine:
        sessions = session_manager(engine, runtime, workspace)
        await engine.project()
        sid = (await sessions.spawn(SpawnRequest(project_id="mer", agent="aider"))).record.id
        await engine.activity(sid, ActivityState.ACTIVE)
        runtime.script[await handle_id(store, sid)] = Script.DEAD
        await trio.sleep(10)
        report = await sessions.reconcile(inventory=None, probe_timeout=5.0, concurrency=64)
        assert report.dead == (sid,)
        assert (await engine.state(sid)).lifecycle.state is SessionState.DETECTING
        await trio.sleep(55)
        await Reaper(
            engine.manager, {"scripted": runtime}, clock, concurrency=64, probe_timeout=5.0
        ).sweep()
        lc = (await engine.state(sid)).lifecycle
        assert (lc.state, lc.termination_reason) == (
            SessionState.TERMINATED,
            TerminationReason.RUNTIME_LOST,
        )


async def test_reconcile_survives_an_inventory_that_cannot_be_listed(world: World) -> None:
    class BrokenInventory:
        async def list_handles(self) -> list[RuntimeHandle]:
            raise TransientError("tmux: no server running on /data/tmux.sock")

    sid = await world.spawn()
    report = await world.sessions.reconcile(
        inventory=BrokenInventory(), probe_timeout=5.0, concurrency=64
    )
    assert report.adopted == (sid,)
    assert report.orphans == ()
    assert "no server running" in report.inventory_error


async def test_reconcile_leaves_sessions_of_other_runtimes_alone(world: World) -> None:
    await world.engine.project()
    sid = (await world.engine.store.create_session("mer", now=world.engine.clock.now())).id
    await world.engine.manager.on_spawn_completed(
        sid, SpawnOutcome(runtime_handle_id="z-1", runtime_name="zellij", workspace_path="/w")
    )
    report = await world.sessions.reconcile(
        inventory=world.runtime, probe_timeout=5.0, concurrency=64
    )
    assert report.unprobeable == (sid,)
    assert (await world.record(sid)).lifecycle.state is SessionState.NOT_STARTED
