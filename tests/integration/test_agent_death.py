"""Death that is called death, and cleanup that exists, on a real tmux (a private socket)
and real git worktrees: an agent whose pane is killed, whose tmux server is killed, or that
exits with status 3 ends its session at the next probe with one ``agent-exited`` page and no
``agent-stuck`` page, even right after it reported activity; ``show`` and the API say how it
exited; an agent that exits at once fails its spawn; a merged session's pane is stopped and
its worktree removed after the grace period, unless the worktree holds uncommitted work
(docs/behaviour.md, "Probes and the detecting quarantine", "Terminal reasons").

The world (store, engine, tmux, worktrees, recorder agent) is the one of
``test_real_sessions``; these tests add agents that die in the ways above."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import msgspec
import pytest
import trio

from adapters.agents import agent_for
from adapters.http.routes import session_out
from orchestrator.api import SessionOut
from orchestrator.cli.render import show_session
from orchestrator.config import AgentConfig
from orchestrator.domain.endings import WORKSPACE_KEPT_EVENT
from orchestrator.domain.errors import InvalidInputError
from orchestrator.domain.model import (
    ActivityState,
    PRObservation,
    SessionState,
    SessionStatus,
    TerminationReason,
)
from orchestrator.ports import Agent
from orchestrator.sessions import SessionManager, SpawnRequest
from tests.integration.test_real_sessions import (
    PROJECT,
    Paths,
    World,
    git,
    hook_environment,
    lifecycle_of,
    open_world,
    wait_until,
)
from tests.integration.test_real_sessions import paths as paths  # the fixture, shared
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

GRACE = timedelta(seconds=0.5)
# tmux 3.3 may drop what a process printed in the instant before it exited (it closes the
# pane when it reaps the process, before reading the rest), a race these tests leave out:
# each agent below pauses before it exits (docs/behaviour.md, "Probes and the detecting
# quarantine").
LINGER = "sleep 0.2"
# Reports nothing, waits for one line typed into its pane, prints it with a few lines
# before, and exits 3: "an agent that exits with status 3".
FAILING_AGENT = (
    "echo starting; read line; for i in 1 2 3; do echo step $i; done; "
    f'echo "fatal: $line" >&2; {LINGER}; exit 3'
)
CUSTOM_AGENTS = {
    "waiter": AgentConfig(command=("sh", "-c", "echo waiting; exec cat")),
    "failing": AgentConfig(command=("sh", "-c", FAILING_AGENT)),
    # argv[0] exists; what it runs does not: the shell says "…: not found" (127).
    "missing": AgentConfig(
        command=("sh", "-c", f"claude-is-not-installed --yes || {{ s=$?; {LINGER}; exit $s; }}")
    ),
    "refusing": AgentConfig(
        command=("sh", "-c", f'echo "error: unknown option --yolo" >&2; {LINGER}; exit 2')
    ),
}


def agents() -> Callable[[str], Agent]:
    return lambda name: agent_for(name, CUSTOM_AGENTS)


def session_manager(world: World, *, startup_check: float = 0.0) -> SessionManager:
    return SessionManager(
        world.store,
        world.engine.manager,
        runtime=world.runtime,
        workspace=world.workspace,
        agents=agents(),
        messenger=world.messenger,
        clock=world.engine.clock,
        hook_environment=hook_environment,
        startup_check=startup_check,
    )


@pytest.fixture
async def world(paths: Paths) -> AsyncIterator[World]:
    async with open_world(paths) as opened:
        opened.sessions = session_manager(opened)
        yield opened


async def spawn(world: World, agent: str = "waiter") -> str:
    view = await world.sessions.spawn(SpawnRequest(project_id=PROJECT, agent=agent))
    sid = view.record.id

    async def started() -> bool:
        return "waiting" in await world.tmux("capture-pane", "-p", "-t", f"={sid}:") or (
            "starting" in await world.tmux("capture-pane", "-p", "-t", f"={sid}:")
        )

    await wait_until(started)
    return sid


async def assert_ended_with_one_exited_page(
    world: World, sid: str, reason: TerminationReason
) -> None:
    assert await lifecycle_of(world, sid) == (SessionState.TERMINATED, reason)
    assert (await world.sessions.get(sid)).status is SessionStatus.EXITED
    await world.engine.deliver()
    assert world.engine.notified() == ["reaction.agent-exited"]  # and no agent-stuck first


def shown(session: SessionOut, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``orchestrator show`` prints for ``session``."""
    capsys.readouterr()
    show_session(session)
    return capsys.readouterr().out


# --- death ----------------------------------------------------------------------------------------


async def test_a_killed_pane_ends_the_session_at_the_next_probe_despite_recent_activity(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = await spawn(world)
    await spawn(world)  # a bystander, so the server outlives the pane
    await world.engine.activity(sid, ActivityState.ACTIVE)  # moments ago
    await world.tmux("kill-pane", "-t", f"={sid}:")

    await world.reaper().sweep()

    await assert_ended_with_one_exited_page(world, sid, TerminationReason.RUNTIME_LOST)
    record = await world.record(sid)
    assert record.ended is not None
    assert (record.ended.exit_status, record.ended.last_output) == (None, "")  # pane is gone
    assert world.engine.notifier.events[0].message.endswith(
        "(its runtime is gone, so no exit status)"
    )
    text = shown(session_out(await world.sessions.get(sid)), capsys)
    assert re.search(r"^status +exited", text, re.MULTILINE)
    assert re.search(r"^exit status +- \(its tmux session was gone\)", text, re.MULTILINE)


async def test_a_killed_tmux_server_ends_every_session_at_the_next_probe(world: World) -> None:
    first, second = await spawn(world), await spawn(world)
    await world.engine.activity(first, ActivityState.WAITING_INPUT)  # moments ago
    await world.engine.activity(second, ActivityState.ACTIVE)
    await world.tmux("kill-server")

    report = await world.reaper().sweep()

    assert report.failed == ()
    for sid in (first, second):
        assert await lifecycle_of(world, sid) == (
            SessionState.TERMINATED,
            TerminationReason.RUNTIME_LOST,
        )
        assert (await world.sessions.get(sid)).status is SessionStatus.EXITED
    await world.engine.deliver()
    pages = sorted((e.session_id, e.type) for e in world.engine.notifier.events)
    assert pages == [
        (first, "reaction.agent-exited"),
        (first, "reaction.agent-needs-input"),
        (second, "reaction.agent-exited"),
    ]


async def test_an_agent_that_exits_with_status_3_ends_with_its_status_and_last_output(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = await spawn(world, "failing")
    await world.engine.activity(sid, ActivityState.ACTIVE)  # moments ago
    await world.sessions.send(sid, "disk full")

    async def exited() -> bool:
        return await world.pane(sid, "#{pane_dead}") == "1"

    await wait_until(exited)
    await world.reaper().sweep()

    await assert_ended_with_one_exited_page(world, sid, TerminationReason.AGENT_PROCESS_EXITED)
    record = await world.record(sid)
    assert record.ended is not None
    assert record.ended.exit_status == 3
    assert record.ended.last_output.splitlines()[-4:] == [
        "step 1",
        "step 2",
        "step 3",
        "fatal: disk full",
    ]
    assert world.engine.notifier.events[0].message == (
        "Agent process exited unexpectedly. (exit status 3; last output: fatal: disk full)"
    )
    out = session_out(await world.sessions.get(sid))
    wire = msgspec.json.decode(msgspec.json.encode(out))
    assert wire["status"] == "exited"
    assert wire["ended"]["exitStatus"] == 3
    assert wire["ended"]["lastOutput"].endswith("fatal: disk full")
    text = shown(out, capsys)
    assert re.search(r"^exit status +3 *$", text, re.MULTILINE)
    assert re.search(r"^ +fatal: disk full *$", text, re.MULTILINE)  # the last output's end
    assert await world.panes() == [sid]  # the dead pane stays for a human to read


# --- an agent that exits at once fails its spawn ---------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "status", "said"),
    [
        ("missing", 127, r"claude-is-not-installed: not found"),
        ("refusing", 2, r"error: unknown option --yolo"),
    ],
)
async def test_an_agent_that_exits_at_once_fails_its_spawn_with_its_status_and_output(
    world: World, agent: str, status: int, said: str
) -> None:
    sessions = session_manager(world, startup_check=2.0)
    with pytest.raises(
        InvalidInputError,
        match=rf"^spawn mer-1: startup: the agent exited right after it started "
        rf"\(exit status {status}\): .*{said}$",
    ):
        await sessions.spawn(SpawnRequest(project_id=PROJECT, agent=agent))

    record = await world.record("mer-1")
    assert (record.lifecycle.state, record.lifecycle.termination_reason) == (
        SessionState.TERMINATED,
        TerminationReason.ERROR_IN_PROCESS,
    )
    assert record.ended is not None
    assert record.ended.exit_status == status
    assert record.ended.last_output.endswith(said.replace("\\", ""))
    assert await world.panes() == []  # rolled back: no pane, no worktree
    assert not await trio.Path(world.worktree("mer-1")).exists()
    await world.engine.deliver()
    assert world.engine.notified() == []  # the caller got the error; nobody is paged


async def test_an_agent_that_keeps_running_passes_the_startup_check(world: World) -> None:
    sessions = session_manager(world, startup_check=0.3)
    view = await sessions.spawn(SpawnRequest(project_id=PROJECT, agent="waiter"))
    assert view.status is SessionStatus.SPAWNING
    assert await world.panes() == [view.record.id]


# --- a merged PR cleans up after itself -------------------------------------------------------


def clean_up_after_merge(world: World) -> None:
    world.engine.manager.clean_up_merged_sessions(world.sessions.clean_up_merged, after=GRACE)


async def merge(world: World, sid: str) -> None:
    pr = PRObservation(url=f"https://github.com/acme/mer/pull/{sid}", number=7, merged=True)
    await world.engine.manager.apply_pr_observation(sid, pr)


async def status_of(world: World, sid: str) -> SessionStatus:
    return (await world.sessions.get(sid)).status


async def test_a_merged_session_s_pane_and_worktree_go_after_the_grace_period(
    world: World,
) -> None:
    clean_up_after_merge(world)
    sid = await spawn(world)
    other = await spawn(world)
    worktree = trio.Path(world.worktree(sid))
    await merge(world, sid)

    assert await status_of(world, sid) is SessionStatus.MERGED
    assert sorted(await world.panes()) == sorted([sid, other])  # not yet: the grace period

    async def done() -> bool:
        return await status_of(world, sid) is SessionStatus.DONE

    await wait_until(done)
    assert await world.panes() == [other]
    assert not await worktree.exists()
    assert f"worktree {worktree}\n" not in await git(
        world.paths.repo, "worktree", "list", "--porcelain"
    )
    await git(world.paths.repo, "rev-parse", "--verify", f"refs/heads/orchestrator/{sid}")
    await world.engine.deliver()
    assert world.engine.notified() == ["reaction.pr-merged"]
    assert await trio.Path(world.worktree(other)).is_dir()


async def test_a_merged_session_with_uncommitted_work_keeps_its_worktree_and_says_why(
    world: World,
) -> None:
    clean_up_after_merge(world)
    sid = await spawn(world)
    worktree = trio.Path(world.worktree(sid))
    await (worktree / "notes.txt").write_text("half-done idea\n")
    await merge(world, sid)

    async def done() -> bool:
        return await status_of(world, sid) is SessionStatus.DONE

    await wait_until(done)
    assert await world.panes() == []  # the agent is stopped all the same
    assert await (worktree / "notes.txt").read_text() == "half-done idea\n"
    await world.engine.deliver()
    assert world.engine.notified() == ["reaction.pr-merged", WORKSPACE_KEPT_EVENT]
    kept = world.engine.notifier.events[1].message
    assert "uncommitted changes (notes.txt)" in kept
    assert "orchestrator cleanup" in kept
