"""Restore that resumes, spawns that fail before they start, ``cleanup`` and ``rm``, with a
real tmux (on a private socket) and real git worktrees.

The agents are ``custom`` agents whose launch and restore commands record their argv to
``<records>/<session id>/argv`` and then wait on their input, so a test reads exactly what
the daemon ran. The spawn checks go through the HTTP API (the real app and session
manager over a memory store), so they show the status a client sees too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import trio

from adapters.agents import agent_for
from adapters.http import SessionCommands, TokenAuthority
from orchestrator.api import API_PREFIX
from orchestrator.cleanup import PruneResult, Reclaimed
from orchestrator.config import AgentConfig
from orchestrator.domain.errors import ConflictError
from orchestrator.domain.model import (
    ActivitySignal,
    ActivityState,
    SessionState,
    SessionStatus,
    TerminationReason,
)
from orchestrator.domain.records import ChangeType, Project
from orchestrator.ports import Agent
from orchestrator.sessions import SessionManager, SpawnRequest
from tests.engine_harness import Engine
from tests.http_harness import serve_api
from tests.integration.test_real_sessions import (
    PROJECT,
    RECORDER_SCRIPT,
    Paths,
    World,
    git,
    hook_environment,
    lifecycle_of,
    open_world,
    paths,
    wait_until,
)
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]
__all__ = ["paths"]  # the fixture, shared with test_real_sessions.py

# "$1" says which command ran (launch or resume); the rest are the daemon's arguments.
ARGV_SCRIPT = (
    'd="$RECORDS/$ORCHESTRATOR_SESSION_ID"; mkdir -p "$d"; '
    'printf \'%s\\n\' "$@" > "$d/argv.tmp" && mv "$d/argv.tmp" "$d/argv"; '
    'exec cat > "$d/stdin"'
)
MISSING_BINARY = "orchestrator-test-agent-that-is-not-installed"


def agents(records: Path) -> Callable[[str], Agent]:
    env = {"RECORDS": str(records)}

    def recording(*args: str) -> tuple[str, ...]:
        return ("sh", "-c", ARGV_SCRIPT, "agent", *args)

    custom = {
        # Takes a conversation id at launch (like claude --session-id): one is chosen.
        "chooser": AgentConfig(
            command=recording("launch", "{agent_session_id}", "{prompt}"),
            restore_command=recording("resume", "--conversation={agent_session_id}"),
            env=env,
        ),
        # Picks its own id, which its hook reports; the restore command gets it appended.
        "hooked": AgentConfig(
            command=recording("launch", "{prompt}"),
            restore_command=recording("resume"),
            env=env,
        ),
        "recorder": AgentConfig(
            command=("sh", "-c", RECORDER_SCRIPT, "recorder", "{prompt}"), env=env
        ),
        "missing": AgentConfig(command=(MISSING_BINARY, "{prompt}")),
    }
    return lambda name: agent_for(name, custom)


@pytest.fixture
async def world(paths: Paths) -> AsyncIterator[World]:
    async with open_world(paths) as opened:
        opened.sessions = opened.session_manager(opened.engine.manager, agents(paths.records))
        yield opened


async def spawn(world: World, agent: str = "recorder", *, prompt: str = "") -> str:
    request = SpawnRequest(project_id=PROJECT, agent=agent, prompt=prompt)
    return (await world.sessions.spawn(request)).record.id


async def argv(world: World, session_id: str) -> list[str]:
    """The argv the session's agent last started with (waits for it)."""
    path = world.agent_records(session_id) / "argv"
    await wait_until(path.exists)
    return (await path.read_text()).splitlines()


async def lose_pane(world: World, session_id: str) -> None:
    """The pane is killed and the reaper ends the session."""
    await world.tmux("kill-session", "-t", f"={session_id}")
    await world.reaper().sweep()
    assert await lifecycle_of(world, session_id) == (
        SessionState.TERMINATED,
        TerminationReason.RUNTIME_LOST,
    )
    await trio.to_thread.run_sync(shutil.rmtree, world.paths.records / session_id)


# --- restore resumes -------------------------------------------------------------------------


async def test_restore_resumes_the_conversation_chosen_at_spawn(world: World) -> None:
    sid = await spawn(world, "chooser", prompt="Fix the flaky test")
    await world.spawn()  # a bystander, so the tmux server outlives the lost pane
    launched = await argv(world, sid)
    assert launched[0] == "launch"
    chosen = launched[1]
    assert len(chosen) == 36  # a uuid, chosen for the agent
    assert launched[2:] == ["Fix the flaky test"]
    assert (await world.record(sid)).metadata.agent_session_id == chosen
    await lose_pane(world, sid)

    view = await world.sessions.restore(sid)

    assert view.status is SessionStatus.SPAWNING
    assert await argv(world, sid) == ["resume", f"--conversation={chosen}"]
    assert await world.pane_cwd(sid) == world.worktree(sid)
    assert (await world.record(sid)).metadata.agent_session_id == chosen


async def test_restore_resumes_the_conversation_the_agent_s_hook_reported(
    world: World,
) -> None:
    sid = await spawn(world, "hooked", prompt="Add a feature")
    await world.spawn()
    assert await argv(world, sid) == ["launch", "Add a feature"]
    assert (await world.record(sid)).metadata.agent_session_id == ""
    await world.engine.manager.apply_activity_signal(
        sid,
        ActivitySignal(
            state=ActivityState.ACTIVE,
            timestamp=world.engine.clock.now(),
            agent_session_id="ses_01JX9abc",
        ),
    )
    # Active a moment ago, so a lost pane would first be quarantined: kill it instead.
    assert await world.sessions.kill(sid) is True
    await trio.to_thread.run_sync(shutil.rmtree, world.paths.records / sid)

    await world.sessions.restore(sid)

    assert await argv(world, sid) == ["resume", "ses_01JX9abc"]
    # The change log recorded the id when the hook reported it.
    rows = await world.store.changes_after(0, limit=1000)
    reported = [json.loads(r.payload).get("agentSessionId") for r in rows if r.session_id == sid]
    assert "ses_01JX9abc" in reported


async def test_restore_without_a_known_conversation_says_so_and_starts_nothing(
    world: World,
) -> None:
    sid = await spawn(world, "hooked", prompt="Add a feature")
    await world.spawn()
    await argv(world, sid)
    await lose_pane(world, sid)
    panes = await world.panes()

    with pytest.raises(ConflictError, match=r"no conversation id of agent hooked is recorded"):
        await world.sessions.restore(sid)

    assert await world.panes() == panes
    assert (await world.record(sid)).lifecycle.state is SessionState.TERMINATED
    await world.sessions.restore(sid, fresh=True)  # asked for: the original prompt again
    assert await argv(world, sid) == ["launch", "Add a feature"]


# --- spawns that cannot work fail before they start --------------------------------------------


async def _git_init(path: Path, *, commit: bool) -> None:
    await trio.Path(path).mkdir()
    await git(path, "init", "-q", "-b", "main")
    if commit:
        await git(path, "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-q",
                  "--allow-empty", "-m", "init")  # fmt: skip


def _real_sessions(world: World) -> Callable[[Engine, TokenAuthority], SessionCommands]:
    def build(engine: Engine, auth: TokenAuthority) -> SessionCommands:
        return SessionManager(
            engine.store,
            engine.manager,
            runtime=world.runtime,
            workspace=world.workspace,
            agents=agents(world.paths.records),
            messenger=world.messenger,
            clock=engine.clock,
            hook_environment=hook_environment,
        )

    return build


async def test_a_spawn_that_cannot_work_is_a_4xx_that_leaves_nothing(world: World) -> None:
    tmp = world.paths.tmp
    await _git_init(tmp / "empty", commit=False)
    await trio.Path(tmp / "plain").mkdir()
    async with serve_api(sessions=_real_sessions(world)) as api:
        for project_id, path in [
            (PROJECT, world.paths.repo),
            ("empty", tmp / "empty"),
            ("plain", tmp / "plain"),
            ("gone", tmp / "gone"),
        ]:
            await api.store.upsert_project(
                Project(id=project_id, path=str(path), registered_at=api.engine.clock.now())
            )

        async def spawn_over_http(**body: str) -> httpx.Response:
            return await api.client.post(f"{API_PREFIX}/sessions", json=body)

        live = await spawn_over_http(projectId=PROJECT, agent="recorder", branch="feat/taken")
        assert live.status_code == 201, live.text
        branches = await git(world.paths.repo, "branch", "--list")
        worktrees = await git(world.paths.repo, "worktree", "list", "--porcelain")
        panes = await world.panes()

        refusals = [
            (
                {"projectId": "empty", "agent": "recorder"},
                400,
                f"spawn: project empty: repository {tmp / 'empty'} has no commits yet: "
                "make a first commit",
            ),
            (
                {"projectId": "plain", "agent": "recorder"},
                400,
                f"spawn: project plain: {tmp / 'plain'} is not a git work tree: run `git init` "
                "there, or register the repository's checkout",
            ),
            (
                {"projectId": "gone", "agent": "recorder"},
                400,
                f"spawn: project gone: project path {tmp / 'gone'} does not exist",
            ),
            (
                {"projectId": PROJECT, "agent": "missing"},
                400,
                f"spawn: agent missing: `{MISSING_BINARY}` is not on PATH: fix "
                "agents.missing.command in the config",
            ),
            (
                {"projectId": PROJECT, "agent": "recorder", "branch": "feat/taken"},
                409,
                "spawn: branch feat/taken is in use by live session mer-1: choose another "
                "branch name",
            ),
            (
                {"projectId": PROJECT, "agent": "recorder", "branch": "main"},
                409,
                f"spawn: branch main already exists in {world.paths.repo}: choose another "
                "branch name (or restore the session that used it)",
            ),
            (
                {"projectId": PROJECT, "agent": "recorder", "branch": "bad..name"},
                400,
                "spawn: 'bad..name' is not a valid branch name",
            ),
        ]
        for body, status, message in refusals:
            response = await spawn_over_http(**body)
            assert (response.status_code, response.json()["error"]["message"]) == (
                status,
                message,
            ), body

        # No row, no branch, no worktree, no pane; and no session number was used up.
        assert [s.id for s in await api.store.list_sessions()] == ["mer-1"]
        assert await git(world.paths.repo, "branch", "--list") == branches
        assert await git(world.paths.repo, "worktree", "list", "--porcelain") == worktrees
        assert await world.panes() == panes
        for project_id in ("empty", "plain", "gone"):
            assert not await trio.Path(world.paths.worktrees / project_id).exists()
        assert not await trio.Path(tmp / "empty" / ".git" / "worktrees").exists()
        after = await spawn_over_http(projectId=PROJECT, agent="recorder")
        assert (after.status_code, after.json()["id"]) == (201, "mer-2")


async def test_project_add_refuses_a_path_that_is_no_work_tree(world: World) -> None:
    async with serve_api(sessions=_real_sessions(world)) as api:
        plain = world.paths.tmp / "plain"
        await trio.Path(plain).mkdir()
        for path, message in [
            (plain, f"{plain} is not a git work tree: run `git init` there, or register the "
             "repository's checkout"),
            (world.paths.tmp / "gone", f"project path {world.paths.tmp / 'gone'} does not exist"),
            (world.paths.repo / "README.md",
             f"project path {world.paths.repo / 'README.md'} is not a directory"),
        ]:  # fmt: skip
            response = await api.client.post(
                f"{API_PREFIX}/projects", json={"id": "p", "path": str(path)}
            )
            assert (response.status_code, response.json()["error"]["message"]) == (400, message)
        assert await api.store.list_projects() == []
        await _git_init(world.paths.tmp / "fresh", commit=False)  # no commit needed yet
        response = await api.client.post(
            f"{API_PREFIX}/projects", json={"id": "p", "path": str(world.paths.tmp / "fresh")}
        )
        assert response.status_code == 201, response.text


# --- cleanup and rm ----------------------------------------------------------------------------


async def test_cleanup_dry_run_then_cleanup(world: World) -> None:
    live = await spawn(world)
    exited = await spawn(world)  # its agent exits; the pane stays open (remain-on-exit)
    dirty = await spawn(world)  # killed with uncommitted work: the worktree was kept
    killed = await spawn(world)  # killed cleanly: nothing is left of it
    for sid in (live, exited, dirty, killed):
        await world.launched(sid)
    await world.tmux("send-keys", "-t", f"={exited}:", "C-d")  # cat reads EOF and exits

    async def pane_dead() -> bool:
        return await world.pane(exited, "#{pane_dead}") == "1"

    await wait_until(pane_dead)
    await world.reaper().sweep()
    assert (await world.record(exited)).lifecycle.state is SessionState.TERMINATED
    await trio.Path(world.worktree(dirty) / "notes.txt").write_text("half done\n")
    with pytest.raises(ConflictError):
        await world.sessions.kill(dirty)
    assert await world.sessions.kill(killed) is True
    await trio.to_thread.run_sync(
        lambda: subprocess.run(
            ["git", "-C", str(world.paths.repo), "worktree", "add", "-q",
             str(world.paths.tmp / "hand-made"), "-b", "hand-made"],
            check=True, capture_output=True,
        )
    )  # fmt: skip
    await trio.to_thread.run_sync(shutil.rmtree, world.paths.tmp / "hand-made")
    worktrees = await git(world.paths.repo, "worktree", "list", "--porcelain")
    panes = sorted(await world.panes())
    assert panes == sorted([live, exited])

    would = await world.sessions.cleanup(dry_run=True)

    expected = (
        Reclaimed(session_id=exited, pane=exited, workspace=str(world.worktree(exited))),
        Reclaimed(
            session_id=dirty,
            kept=str(world.worktree(dirty)),
            reason=f"workspace {world.worktree(dirty)}: it has uncommitted changes (notes.txt)",
        ),
    )
    pruned = (
        PruneResult(
            project_id=PROJECT,
            entries=("Removing worktrees/hand-made: gitdir file points to non-existent location",),
        ),
    )
    assert (would.dry_run, would.sessions, would.pruned) == (True, expected, pruned)
    # A dry run changes nothing.
    assert sorted(await world.panes()) == panes
    assert await trio.Path(world.worktree(exited)).is_dir()
    assert await git(world.paths.repo, "worktree", "list", "--porcelain") == worktrees

    done = await world.sessions.cleanup()

    assert (done.dry_run, done.sessions, done.pruned) == (False, expected, pruned)
    assert await world.panes() == [live]
    assert not await trio.Path(world.worktree(exited)).exists()
    assert await (trio.Path(world.worktree(dirty)) / "notes.txt").read_text() == "half done\n"
    assert await trio.Path(world.worktree(live)).is_dir()
    listed = await git(world.paths.repo, "worktree", "list", "--porcelain")
    assert "hand-made" not in listed
    assert f"worktree {world.worktree(dirty)}\n" in listed
    # Branches stay, so committed work stays reachable.
    for sid in (exited, dirty, killed):
        await git(world.paths.repo, "rev-parse", "--verify", f"refs/heads/orchestrator/{sid}")
    # Nothing is left to do but the kept worktree.
    again = await world.sessions.cleanup()
    assert ([r.session_id for r in again.sessions], again.pruned[0].entries) == ([dirty], ())


async def test_rm_removes_a_terminated_session_and_keeps_its_history(world: World) -> None:
    sid = await spawn(world)
    live = await spawn(world)
    await world.launched(sid)
    await world.tmux("send-keys", "-t", f"={sid}:", "C-d")

    async def ended() -> bool:
        await world.reaper().sweep()
        return (await world.record(sid)).lifecycle.state is SessionState.TERMINATED

    await wait_until(ended)
    await world.engine.deliver()  # its agent-exited page first: undelivered, rm would wait
    history = [e for e in await world.store.changes_after(0, limit=1000) if e.session_id == sid]

    freed = await world.sessions.remove(sid)

    assert freed == Reclaimed(session_id=sid, pane=sid, workspace=str(world.worktree(sid)))
    assert await world.store.get_session(sid) is None
    assert await world.panes() == [live]
    assert not await trio.Path(world.worktree(sid)).exists()
    await git(world.paths.repo, "rev-parse", "--verify", f"refs/heads/orchestrator/{sid}")
    rows = [e for e in await world.store.changes_after(0, limit=1000) if e.session_id == sid]
    assert rows[: len(history)] == history
    assert [e.type for e in rows[len(history) :]] == [ChangeType.SESSION_DELETED]
    with pytest.raises(ConflictError, match=f"rm {live}: the session is live"):
        await world.sessions.remove(live)
    assert await spawn(world) == "mer-3"  # its number is not reused
