"""The Session Manager, reaper, lifecycle engine and outbox end to end over the SQLite store,
with a real tmux (on a private socket) and real git worktrees (reference §4-§5).

The agent is a ``custom`` agent, ``sh`` exec'ing ``cat``: it records its working directory,
its prompt argument and its environment, then everything typed into its pane. The records
live outside the worktree (``<tmp>/records/<session id>/``), so the worktree stays clean
unless a test dirties it on purpose.

Every test gets its own tmux socket under a short /tmp directory (socket paths are limited
to ~100 bytes) and kills that server afterwards; the user's tmux server is never addressed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import trio

from adapters.agents import agent_for, session_environment
from adapters.memory import RecordingNotifier
from adapters.sqlite.store import open_sqlite_store
from adapters.tmux import TmuxMessenger, TmuxRuntime, TmuxServer
from adapters.worktree import GitWorktreeWorkspace
from orchestrator.clock import TrioClock
from orchestrator.config import AgentConfig
from orchestrator.domain.errors import ConflictError, StoreError
from orchestrator.domain.model import (
    ActivityState,
    AgentHarness,
    ProbeResult,
    ProjectId,
    RuntimeFacts,
    SessionId,
    SessionRecord,
    SessionState,
    SessionStatus,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.domain.records import Project
from orchestrator.lifecycle.manager import SessionView
from orchestrator.ports import Agent, RuntimeHandle, Store
from orchestrator.reaper import Reaper
from orchestrator.sessions import SessionLifecycle, SessionManager, SpawnRequest
from tests.engine_harness import Engine, running_engine
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

PROJECT = "mer"
HOOK_BASE = "http://127.0.0.1:8731/api/v1/sessions"

# $1 is the prompt ("{prompt}" below; dropped when empty). The env record is written last
# and atomically, so once it exists the others do too; `exec` makes the pane's process the
# agent itself, so killing it is the agent exiting.
RECORDER_SCRIPT = (
    'd="$RECORDS/$ORCHESTRATOR_SESSION_ID"; mkdir -p "$d"; '
    'pwd -P > "$d/cwd"; printf %s "$1" > "$d/prompt"; '
    'env > "$d/env.tmp" && mv "$d/env.tmp" "$d/env"; '
    'exec cat > "$d/stdin"'
)


def _tmux_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"TMUX", "TMUX_PANE"}}


def _git_sync(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def hook_environment(record: SessionRecord) -> Mapping[str, str]:
    return session_environment(
        session_id=record.id,
        project_id=record.project_id,
        issue_id=record.issue_id,
        hook_url=f"{HOOK_BASE}/{record.id}/activity",
        hook_token=f"token-for-{record.id}",
    )


def recorder_agents(records: Path) -> Callable[[str], Agent]:
    custom = {
        "recorder": AgentConfig(
            command=("sh", "-c", RECORDER_SCRIPT, "recorder", "{prompt}"),
            env={"RECORDS": str(records)},
        )
    }
    return lambda name: agent_for(name, custom)


class ShiftedClock(TrioClock):
    """Trio's clock plus an offset the test moves forward (the 60 s activity window)."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = timedelta()

    def now(self) -> datetime:
        return super().now() + self.offset


@dataclass(frozen=True)
class Paths:
    tmp: Path
    socket: Path
    repo: Path
    worktrees: Path
    records: Path
    db: Path


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Paths]:
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("TMUX_PANE", raising=False)
    sock_dir = Path(tempfile.mkdtemp(prefix="orch-rs-", dir="/tmp"))
    repo = tmp_path / "repo"
    repo.mkdir()
    _git_sync(repo, "init", "-q", "-b", "main")
    _git_sync(repo, "config", "user.email", "dev@example.com")
    _git_sync(repo, "config", "user.name", "Dev")
    (repo / "README.md").write_text("hello\n")
    _git_sync(repo, "add", "README.md")
    _git_sync(repo, "commit", "-q", "-m", "init")
    found = Paths(
        tmp=tmp_path,
        socket=sock_dir / "tmux.sock",
        repo=repo.resolve(),
        worktrees=(tmp_path / "worktrees").resolve(),
        records=tmp_path / "records",
        db=tmp_path / "engine.db",
    )
    yield found
    subprocess.run(
        ["tmux", "-S", str(found.socket), "kill-server"],
        capture_output=True,
        check=False,
        env=_tmux_env(),
    )
    shutil.rmtree(sock_dir, ignore_errors=True)


# --- helpers ---------------------------------------------------------------------------------


async def run(*argv: str) -> str:
    proc = await trio.run_process(
        argv, capture_stdout=True, capture_stderr=True, check=False, env=_tmux_env()
    )
    assert proc.returncode == 0, (argv, proc.stderr)
    return str(proc.stdout.decode())


async def git(cwd: Path, *args: str) -> str:
    return (await run("git", "-C", str(cwd), *args)).strip()


async def wait_until(predicate: Callable[[], Awaitable[bool]], *, seconds: float = 5.0) -> None:
    with trio.fail_after(seconds):
        while True:
            if await predicate():
                return
            await trio.sleep(0.02)


@dataclass
class World:
    paths: Paths
    engine: Engine
    server: TmuxServer
    runtime: TmuxRuntime
    messenger: TmuxMessenger
    workspace: GitWorktreeWorkspace
    sessions: SessionManager = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = self.session_manager(self.engine.manager)

    @property
    def store(self) -> Store:
        return self.engine.store

    def session_manager(
        self, lifecycle: SessionLifecycle, agents: Callable[[str], Agent] | None = None
    ) -> SessionManager:
        return SessionManager(
            self.store,
            lifecycle,
            runtime=self.runtime,
            workspace=self.workspace,
            agents=agents or recorder_agents(self.paths.records),
            messenger=self.messenger,
            clock=self.engine.clock,
            hook_environment=hook_environment,
        )

    def reaper(self) -> Reaper:
        return Reaper(
            self.engine.manager,
            {self.runtime.name: self.runtime},
            self.engine.clock,
            concurrency=64,
            probe_timeout=5.0,
        )

    async def project(self, project_id: str = PROJECT, path: Path | None = None) -> None:
        await self.store.upsert_project(
            Project(
                id=project_id,
                path=str(path or self.paths.repo),
                registered_at=self.engine.clock.now(),
            )
        )

    async def spawn(
        self, *, prompt: str = "", issue_id: str = "", project_id: str = PROJECT
    ) -> SessionView:
        return await self.sessions.spawn(
            SpawnRequest(project_id=project_id, agent="recorder", prompt=prompt, issue_id=issue_id)
        )

    async def record(self, session_id: SessionId) -> SessionRecord:
        return await self.engine.state(session_id)

    def worktree(self, session_id: SessionId, project_id: str = PROJECT) -> Path:
        return self.paths.worktrees / project_id / session_id

    def agent_records(self, session_id: SessionId) -> trio.Path:
        return trio.Path(self.paths.records / session_id)

    async def launched(self, session_id: SessionId) -> dict[str, str]:
        """Wait until the agent has started; its environment."""
        env_file = self.agent_records(session_id) / "env"
        await wait_until(env_file.exists)
        env: dict[str, str] = {}
        for line in (await env_file.read_text()).splitlines():
            key, sep, value = line.partition("=")
            if sep:
                env[key] = value
        return env

    async def tmux(self, *args: str) -> str:
        return await run("tmux", "-S", str(self.paths.socket), *args)

    async def panes(self) -> list[str]:
        """Session names on our private socket, asked of tmux directly ([] when no server
        runs there; asked again while a server that lost its last session is exiting)."""
        argv = ["tmux", "-S", str(self.paths.socket), "list-sessions", "-F", "#{session_name}"]
        with trio.fail_after(5):
            while True:
                proc = await trio.run_process(
                    argv, capture_stdout=True, capture_stderr=True, check=False, env=_tmux_env()
                )
                if proc.returncode == 0:
                    return proc.stdout.decode().split()
                if b"no server running" in proc.stderr or b"error connecting" in proc.stderr:
                    return []
                assert b"server exited unexpectedly" in proc.stderr, proc.stderr
                await trio.sleep(0.02)

    async def pane_cwd(self, name: str) -> Path:
        return Path(await trio.Path(await self.pane(name, "#{pane_current_path}")).resolve())

    async def pane(self, name: str, fmt: str) -> str:
        return (await self.tmux("display-message", "-p", "-t", f"={name}:", fmt)).strip()


@asynccontextmanager
async def open_world(
    paths: Paths,
    *,
    clock: TrioClock | None = None,
    notifier: RecordingNotifier | None = None,
) -> AsyncIterator[World]:
    """A daemon's worth of parts over the database and tmux socket in ``paths``; opening
    another on the same paths is a restart."""
    async with (
        open_sqlite_store(paths.db) as store,
        running_engine(store, clock=clock, notifier=notifier) as engine,
    ):
        server = TmuxServer(paths.socket)
        runtime = TmuxRuntime(server)
        messenger = TmuxMessenger(server, ready_timeout=5.0, poll_interval=0.02, submit_delay=0.05)
        workspace = GitWorktreeWorkspace(paths.worktrees)
        world = World(paths, engine, server, runtime, messenger, workspace)
        if await store.get_project(PROJECT) is None:
            await world.project()
        yield world


@pytest.fixture
async def world(paths: Paths) -> AsyncIterator[World]:
    async with open_world(paths) as opened:
        yield opened


async def lifecycle_of(world: World, sid: SessionId) -> tuple[SessionState, TerminationReason]:
    lc = (await world.record(sid)).lifecycle
    return lc.state, lc.termination_reason


# --- spawn -------------------------------------------------------------------------------------


async def test_spawn_runs_the_agent_in_its_worktree_with_the_session_environment(
    world: World,
) -> None:
    view = await world.spawn(prompt="Fix the flaky test", issue_id="#12")
    sid = view.record.id
    assert (sid, view.status) == ("mer-1", SessionStatus.SPAWNING)
    worktree = world.worktree(sid)

    # The pane exists on our socket, in the worktree, running the agent.
    assert await world.panes() == [sid]
    assert await world.pane_cwd(sid) == worktree
    assert await world.pane(sid, "#{pane_dead}") == "0"
    env = await world.launched(sid)
    assert Path((await (world.agent_records(sid) / "cwd").read_text()).strip()) == worktree
    assert await (world.agent_records(sid) / "prompt").read_text() == "Fix the flaky test"

    # The worktree is a linked worktree of the project, on the session's own branch.
    assert await git(worktree, "rev-parse", "--abbrev-ref", "HEAD") == f"orchestrator/{sid}"
    assert await git(worktree, "rev-parse", "HEAD") == await git(
        world.paths.repo, "rev-parse", "HEAD"
    )
    listed = await git(world.paths.repo, "worktree", "list", "--porcelain")
    assert f"worktree {worktree}\n" in listed
    assert f"branch refs/heads/orchestrator/{sid}" in listed

    # The agent sees who it is and where its hooks report.
    assert {k: v for k, v in env.items() if k.startswith("ORCHESTRATOR_")} == {
        "ORCHESTRATOR_SESSION_ID": sid,
        "ORCHESTRATOR_PROJECT_ID": PROJECT,
        "ORCHESTRATOR_ISSUE_ID": "#12",
        "ORCHESTRATOR_HOOK_URL": f"{HOOK_BASE}/{sid}/activity",
        "ORCHESTRATOR_HOOK_TOKEN": f"token-for-{sid}",
    }
    assert env["RECORDS"] == str(world.paths.records)  # the agent's own configured variable

    # The row knows where everything is, and the session is spawning (alive, not started).
    record = await world.record(sid)
    assert record.metadata.workspace_path == str(worktree)
    assert record.metadata.branch == f"orchestrator/{sid}"
    assert (record.metadata.runtime_handle_id, record.metadata.runtime_name) == (sid, "tmux")
    assert record.metadata.prompt == "Fix the flaky test"
    lc = record.lifecycle
    assert (lc.state, lc.is_alive, lc.harness) == (
        SessionState.NOT_STARTED,
        True,
        AgentHarness.NONE,
    )
    assert (await world.sessions.get(sid)).status is SessionStatus.SPAWNING

    # A second session gets its own worktree, branch and pane.
    second = (await world.spawn()).record.id
    assert second == "mer-2"
    assert sorted(await world.panes()) == [sid, second]
    assert await git(world.worktree(second), "rev-parse", "--abbrev-ref", "HEAD") == (
        f"orchestrator/{second}"
    )


# --- send ----------------------------------------------------------------------------------------


async def test_a_sent_message_reaches_the_agent_s_input_byte_for_byte(world: World) -> None:
    sid = (await world.spawn()).record.id
    await world.launched(sid)
    message = "Please rebase onto main.\n\tThen run: pytest -q\x07 and fix ✓ failures\nThanks"
    await world.sessions.send(sid, message)

    # The bell is stripped; the tab, the newlines and the text arrive as written, then Enter.
    expected = "Please rebase onto main.\n\tThen run: pytest -q and fix ✓ failures\nThanks\n"
    received = world.agent_records(sid) / "stdin"

    async def complete() -> bool:
        return await received.exists() and len(await received.read_bytes()) >= len(
            expected.encode()
        )

    await wait_until(complete)
    assert await received.read_bytes() == expected.encode()

    await world.sessions.send(sid, "second message")
    expected += "second message\n"
    await wait_until(complete)
    assert await received.read_bytes() == expected.encode()


# --- reaper ----------------------------------------------------------------------------------------


async def test_a_killed_pane_is_terminated_runtime_lost_with_one_agent_exited(
    world: World,
) -> None:
    sid = (await world.spawn()).record.id
    other = (await world.spawn()).record.id
    await world.launched(sid)
    reaper = world.reaper()

    healthy = await reaper.sweep()
    assert healthy.observed[sid].runtime is ProbeResult.ALIVE
    assert healthy.failed == ()
    assert (await world.record(sid)).lifecycle.is_alive is True

    await world.tmux("kill-session", "-t", f"={sid}")
    # The session never reported activity, so it is outside the 60 s window at once.
    report = await reaper.sweep()
    assert (report.observed[sid].runtime, report.observed[sid].process) == (
        ProbeResult.DEAD,
        ProbeResult.DEAD,
    )
    assert await lifecycle_of(world, sid) == (
        SessionState.TERMINATED,
        TerminationReason.RUNTIME_LOST,
    )
    assert (await world.record(sid)).lifecycle.is_alive is False
    assert (await world.sessions.get(sid)).status is SessionStatus.KILLED
    await world.engine.deliver()
    assert world.engine.notified() == ["reaction.agent-exited"]
    assert world.engine.notifier.events[0].session_id == sid

    # A second sweep does not probe the terminated session and adds nothing.
    again = await reaper.sweep()
    assert sid not in again.observed
    assert list(again.observed) == [other]
    await world.engine.deliver()
    assert world.engine.notified() == ["reaction.agent-exited"]
    # The other session and the lost session's work are untouched.
    assert await world.panes() == [other]
    assert await lifecycle_of(world, other) == (SessionState.NOT_STARTED, TerminationReason.NONE)
    assert await trio.Path(world.worktree(sid)).is_dir()


async def test_a_recently_active_session_is_terminated_only_after_the_activity_window(
    paths: Paths,
) -> None:
    clock = ShiftedClock()
    async with open_world(paths, clock=clock) as world:
        sid = (await world.spawn()).record.id
        await world.spawn()  # a bystander, so the server outlives the lost pane
        await world.launched(sid)
        await world.engine.activity(sid, ActivityState.ACTIVE)
        await world.tmux("kill-session", "-t", f"={sid}")
        reaper = world.reaper()

        report = await reaper.sweep()  # dead, but it was active moments ago (D-8)
        assert (report.observed[sid].runtime, report.observed[sid].process) == (
            ProbeResult.DEAD,
            ProbeResult.DEAD,
        )
        assert await lifecycle_of(world, sid) == (SessionState.DETECTING, TerminationReason.NONE)
        await world.engine.deliver()
        assert world.engine.notified() == []

        clock.offset = timedelta(seconds=61)
        await reaper.sweep()
        assert await lifecycle_of(world, sid) == (
            SessionState.TERMINATED,
            TerminationReason.RUNTIME_LOST,
        )
        await world.engine.deliver()
        assert world.engine.notified() == ["reaction.agent-exited"]


async def test_an_agent_that_exits_in_an_open_pane_ends_with_one_agent_exited(
    world: World,
) -> None:
    """The pane stays open (remain-on-exit) when the agent exits: runtime alive, process
    dead. That is a certain death, not a disagreement between probes: the session ends
    ``agent_process_exited`` and the human hears "agent exited" once. The pane is left for
    them to read (kill or restore tears it down)."""
    sid = (await world.spawn()).record.id
    await world.launched(sid)
    pid = int(await world.pane(sid, "#{pane_pid}"))
    os.kill(pid, 9)

    async def exited() -> bool:
        return await world.pane(sid, "#{pane_dead}") == "1"

    await wait_until(exited)
    reaper = world.reaper()

    report = await reaper.sweep()
    assert (report.observed[sid].runtime, report.observed[sid].process) == (
        ProbeResult.ALIVE,
        ProbeResult.DEAD,
    )
    assert await lifecycle_of(world, sid) == (
        SessionState.TERMINATED,
        TerminationReason.AGENT_PROCESS_EXITED,
    )
    await reaper.sweep()
    await world.engine.deliver()
    assert world.engine.notified() == ["reaction.agent-exited"]
    assert await world.panes() == [sid]  # the dead pane is kept for the human to read


async def test_the_last_pane_lost_reads_as_dead_even_while_its_server_exits(
    world: World,
) -> None:
    """Killing the only session makes tmux exit; a probe in that window meets a server with
    no sessions, which answers ``no current target``. That is "session missing" (dead), so
    the sweep must terminate the session, not quarantine it as "could not tell"."""
    sid = (await world.spawn()).record.id
    await world.launched(sid)
    # Hold the server in the state between losing its last session and exiting.
    await world.tmux("set-option", "-g", "exit-empty", "off")
    await world.tmux("kill-session", "-t", f"={sid}")

    report = await world.reaper().sweep()

    assert report.failed == ()
    assert await lifecycle_of(world, sid) == (
        SessionState.TERMINATED,
        TerminationReason.RUNTIME_LOST,
    )


# --- kill ------------------------------------------------------------------------------------------


async def test_kill_removes_the_pane_and_the_worktree_and_keeps_the_branch(world: World) -> None:
    sid = (await world.spawn()).record.id
    other = (await world.spawn()).record.id
    await world.launched(sid)
    worktree = world.worktree(sid)

    assert await world.sessions.kill(sid) is True

    assert await world.panes() == [other]
    assert not await trio.Path(worktree).exists()
    assert f"worktree {worktree}\n" not in await git(
        world.paths.repo, "worktree", "list", "--porcelain"
    )
    # Committed work stays reachable: the branch is kept.
    await git(world.paths.repo, "rev-parse", "--verify", f"refs/heads/orchestrator/{sid}")
    assert await lifecycle_of(world, sid) == (
        SessionState.TERMINATED,
        TerminationReason.MANUALLY_KILLED,
    )
    assert (await world.sessions.get(sid)).status is SessionStatus.KILLED
    await world.engine.deliver()
    assert world.engine.notified() == []  # a kill is the human's own action
    assert await world.sessions.kill(sid) is True  # idempotent: already gone is fine
    assert await trio.Path(world.worktree(other)).is_dir()


async def test_kill_keeps_a_worktree_with_uncommitted_work_and_says_why(world: World) -> None:
    sid = (await world.spawn()).record.id
    await world.launched(sid)
    worktree = trio.Path(world.worktree(sid))
    await (worktree / "notes.txt").write_text("half-done work\n")

    with pytest.raises(ConflictError) as raised:
        await world.sessions.kill(sid)

    message = str(raised.value)
    assert message.startswith(f"kill {sid}: workspace: ")
    assert "uncommitted changes (notes.txt)" in message
    assert "the workspace was kept" in message
    assert await (worktree / "notes.txt").read_text() == "half-done work\n"  # nothing lost
    assert await git(Path(worktree), "rev-parse", "--abbrev-ref", "HEAD") == f"orchestrator/{sid}"
    assert await world.panes() == []  # the agent is stopped
    assert await lifecycle_of(world, sid) == (
        SessionState.TERMINATED,
        TerminationReason.MANUALLY_KILLED,
    )

    # Once the work is committed, cleanup reclaims the worktree.
    await git(Path(worktree), "add", "notes.txt")
    await git(Path(worktree), "commit", "-q", "-m", "notes")
    report = await world.sessions.cleanup()
    assert [(r.session_id, r.workspace) for r in report.sessions] == [(sid, str(worktree))]
    assert not await worktree.exists()


# --- restore ---------------------------------------------------------------------------------------


async def test_restore_brings_a_lost_session_back_in_the_same_worktree(world: World) -> None:
    sid = (await world.spawn(prompt="Fix the flaky test")).record.id
    bystander = (await world.spawn()).record.id  # the server outlives the lost pane
    await world.launched(sid)
    worktree = world.worktree(sid)
    await trio.Path(worktree / "wip.txt").write_text("uncommitted\n")
    await world.tmux("kill-session", "-t", f"={sid}")
    await world.reaper().sweep()
    assert (await world.record(sid)).lifecycle.state is SessionState.TERMINATED

    await trio.to_thread.run_sync(shutil.rmtree, world.paths.records / sid)
    # The recorder reports no conversation id, so only a fresh relaunch can bring it back.
    view = await world.sessions.restore(sid, fresh=True)  # the agent it ran was recorded

    assert view.status is SessionStatus.SPAWNING
    assert sorted(await world.panes()) == [sid, bystander]
    assert await world.pane_cwd(sid) == worktree
    env = await world.launched(sid)
    assert env["ORCHESTRATOR_SESSION_ID"] == sid
    # Relaunched with the recorded prompt, on top of the work it left behind.
    assert await (world.agent_records(sid) / "prompt").read_text() == "Fix the flaky test"
    assert await trio.Path(worktree / "wip.txt").read_text() == "uncommitted\n"
    lc = (await world.record(sid)).lifecycle
    assert (lc.state, lc.termination_reason, lc.is_alive) == (
        SessionState.NOT_STARTED,
        TerminationReason.NONE,
        True,
    )
    assert (await world.reaper().sweep()).observed[sid].process is ProbeResult.ALIVE


async def test_restore_after_kill_recreates_the_worktree_from_the_kept_branch(
    world: World,
) -> None:
    sid = (await world.spawn(prompt="Add a feature")).record.id
    await world.launched(sid)
    worktree = world.worktree(sid)
    await trio.Path(worktree / "feature.txt").write_text("done\n")
    await git(worktree, "add", "feature.txt")
    await git(worktree, "commit", "-q", "-m", "feature")
    assert await world.sessions.kill(sid) is True
    assert not await trio.Path(worktree).exists()

    view = await world.sessions.restore(sid, agent="recorder", fresh=True)

    assert view.status is SessionStatus.SPAWNING
    assert await world.panes() == [sid]
    assert await git(worktree, "rev-parse", "--abbrev-ref", "HEAD") == f"orchestrator/{sid}"
    assert await trio.Path(worktree / "feature.txt").read_text() == "done\n"
    assert await world.pane_cwd(sid) == worktree
    assert (await world.record(sid)).lifecycle.is_alive is True


# --- spawn rollback --------------------------------------------------------------------------------


async def assert_failed_spawn_left_nothing(world: World, sid: SessionId) -> None:
    lc = (await world.record(sid)).lifecycle
    assert (lc.state, lc.termination_reason, lc.is_alive) == (
        SessionState.TERMINATED,
        TerminationReason.ERROR_IN_PROCESS,
        False,
    )
    assert (await world.sessions.get(sid)).status is SessionStatus.ERRORED
    assert await world.engine.manager.running_sessions() == []  # no phantom spawning row
    await world.engine.deliver()
    assert world.engine.notified() == []  # the caller got the error; nobody is paged


async def test_a_spawn_whose_workspace_fails_leaves_an_errored_row_and_nothing_else(
    world: World,
) -> None:
    # Something not ours sits where the session's worktree would go.
    squatter = trio.Path(world.worktree("mer-1"))
    await squatter.mkdir(parents=True)
    await (squatter / "theirs.txt").write_text("not ours\n")

    with pytest.raises(ConflictError, match=r"^spawn mer-1: workspace: .*already exists and is"):
        await world.spawn()

    await assert_failed_spawn_left_nothing(world, "mer-1")
    assert await (squatter / "theirs.txt").read_text() == "not ours\n"  # left as it was
    assert "orchestrator/mer-1" not in await git(world.paths.repo, "branch", "--list")
    assert await world.panes() == []
    assert not await (world.agent_records("mer-1")).exists()  # no agent ever ran


async def test_a_spawn_whose_runtime_fails_removes_its_worktree(world: World) -> None:
    # Someone else's tmux session already holds the name the spawn needs.
    await world.tmux("-f", os.devnull, "new-session", "-d", "-s", "mer-1", "sleep", "600")
    squatter = await world.pane("mer-1", "#{pane_pid}")

    with pytest.raises(ConflictError, match=r"^spawn mer-1: runtime: tmux session mer-1 already"):
        await world.spawn()

    await assert_failed_spawn_left_nothing(world, "mer-1")
    assert not await trio.Path(world.worktree("mer-1")).exists()
    listed = await git(world.paths.repo, "worktree", "list", "--porcelain")
    assert listed.count("worktree ") == 1  # only the main checkout
    # Undo removes only what the failed spawn made: the pre-existing pane is untouched.
    assert await world.panes() == ["mer-1"]
    assert await world.pane("mer-1", "#{pane_pid}") == squatter
    assert await world.sessions.kill("mer-1") is False  # nothing of the session to free
    assert await world.panes() == ["mer-1"]
    # The next spawn works.
    assert (await world.spawn()).record.id == "mer-2"


class FailingCompletion:
    """The lifecycle manager, except that recording a completed spawn fails."""

    def __init__(self, inner: SessionLifecycle) -> None:
        self.inner = inner

    async def running_sessions(self) -> list[SessionRecord]:
        return await self.inner.running_sessions()

    async def apply_runtime_observation(self, session_id: SessionId, facts: RuntimeFacts) -> None:
        await self.inner.apply_runtime_observation(session_id, facts)

    async def on_spawn_completed(
        self, session_id: SessionId, outcome: SpawnOutcome
    ) -> SessionRecord:
        raise StoreError("disk I/O error")

    async def on_restored(self, session_id: SessionId, outcome: SpawnOutcome) -> SessionRecord:
        return await self.inner.on_restored(session_id, outcome)

    async def on_kill_requested(
        self, session_id: SessionId, reason: TerminationReason = TerminationReason.NONE
    ) -> SessionRecord:
        return await self.inner.on_kill_requested(session_id, reason)

    async def remove(self, session_id: SessionId) -> None:
        await self.inner.remove(session_id)

    async def get(self, session_id: SessionId) -> SessionView:
        return await self.inner.get(session_id)

    async def list(self, project_id: ProjectId | None = None) -> list[SessionView]:
        return await self.inner.list(project_id)


async def test_a_spawn_that_cannot_be_recorded_removes_its_pane_and_worktree(
    world: World,
) -> None:
    sessions = world.session_manager(FailingCompletion(world.engine.manager))

    with pytest.raises(StoreError, match=r"^spawn mer-1: completed: disk I/O error$"):
        await sessions.spawn(SpawnRequest(project_id=PROJECT, agent="recorder"))

    await assert_failed_spawn_left_nothing(world, "mer-1")
    assert await world.panes() == []
    assert not await trio.Path(world.worktree("mer-1")).exists()
    assert (await git(world.paths.repo, "worktree", "list", "--porcelain")).count("worktree ") == 1


# --- boot reconcile --------------------------------------------------------------------------------


async def test_reconcile_after_a_restart_adopts_live_panes_ends_lost_ones_and_reports_orphans(
    paths: Paths,
) -> None:
    async with open_world(paths) as before:
        clock = before.engine.clock
        alive = (await before.spawn()).record.id
        lost = (await before.spawn()).record.id
        await before.launched(alive)
        await before.launched(lost)
        alive_pid = await before.pane(alive, "#{pane_pid}")
        # A tmux session on our socket that no session owns (e.g. left by hand).
        await before.tmux("new-session", "-d", "-s", "stray", "sleep", "600")

    # While the daemon is down, one agent's pane is killed.
    await run("tmux", "-S", str(paths.socket), "kill-session", "-t", f"={lost}")

    notifier = RecordingNotifier()
    async with open_world(paths, clock=clock, notifier=notifier) as after:
        report = await after.sessions.reconcile(
            inventory=after.runtime, probe_timeout=5.0, concurrency=64
        )

        assert report.adopted == (alive,)
        assert report.dead == (lost,)
        assert report.orphans == (RuntimeHandle(id="stray", runtime_name="tmux"),)
        assert (report.quarantined, report.interrupted, report.inventory_error) == ((), (), "")

        lc = (await after.record(alive)).lifecycle
        assert (lc.state.is_terminal, lc.is_alive) == (False, True)
        assert await after.pane(alive, "#{pane_pid}") == alive_pid  # the same agent, adopted
        assert await lifecycle_of(after, lost) == (
            SessionState.TERMINATED,
            TerminationReason.RUNTIME_LOST,
        )
        assert sorted(await after.panes()) == sorted([alive, "stray"])  # orphans left running
        await after.engine.deliver()
        assert notifier.types() == ["reaction.agent-exited"]
        assert notifier.events[0].session_id == lost

        # The adopted session is still driven as before: a message reaches it.
        await after.sessions.send(alive, "still there?")
        received = after.agent_records(alive) / "stdin"

        async def arrived() -> bool:
            return await received.read_text() == "still there?\n"

        await wait_until(arrived)
