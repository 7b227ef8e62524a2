"""How sessions end, through the lifecycle engine over each store: the end is recorded
(time, exit status, last output), the one ``agent-exited`` page names the exit status, a
restore clears it; and a merged session's cleanup runs once, a grace period after the
merge, across restarts (docs/behaviour.md, "Terminal reasons"; docs/design.md, D-12)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import trio
import trio.testing

from orchestrator.clock import TrioClock
from orchestrator.domain.endings import WORKSPACE_KEPT_EVENT
from orchestrator.domain.model import (
    ActivityState,
    ProbeResult,
    PRObservation,
    RuntimeFacts,
    SessionEnd,
    SessionState,
    SessionStatus,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.domain.records import CommitUnit
from orchestrator.lifecycle.manager import CLEANUP_RETRY, LifecycleManager
from orchestrator.ports import Store
from tests.engine_harness import Engine, running_engine
from tests.integration.test_lifecycle_engine import engine as engine  # the fixtures, shared
from tests.integration.test_lifecycle_engine import store as store

PR = "https://github.com/acme/app/pull/1"
MERGED = PRObservation(url=PR, number=1, merged=True)
GRACE = timedelta(minutes=5)
EXITED_MESSAGE = "Agent process exited unexpectedly."


async def exited(engine: Engine, sid: str, status: int | None, output: str) -> None:
    """A probe of an open pane whose agent exited."""
    await engine.manager.apply_runtime_observation(
        sid,
        RuntimeFacts(
            observed_at=engine.clock.now(),
            runtime=ProbeResult.ALIVE,
            process=ProbeResult.DEAD,
            exit_status=status,
            last_output=output,
        ),
    )


# --- the end of a session ------------------------------------------------------------------


async def test_an_agent_that_exits_right_after_reporting_ends_with_one_page_naming_its_status(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    s = await engine.spawn()
    await engine.activity(s.id, ActivityState.ACTIVE)
    await trio.sleep(2)  # well inside the 60 s activity window
    died_at = engine.clock.now()
    await exited(engine, s.id, 3, "\x1b[1mrunning\x1b[0m\r\nerror: bad flag --x\n\n")

    record = await engine.state(s.id)
    assert (record.lifecycle.state, record.lifecycle.termination_reason) == (
        SessionState.TERMINATED,
        TerminationReason.AGENT_PROCESS_EXITED,
    )
    assert record.ended == SessionEnd(
        at=died_at, exit_status=3, last_output="running\nerror: bad flag --x"
    )
    view = await engine.manager.get(s.id)
    assert view.status is SessionStatus.EXITED
    await exited(engine, s.id, 3, "again")  # a terminal session ignores further probes
    await engine.deliver()
    assert engine.notified() == ["reaction.agent-exited"]  # no agent-stuck on the way
    assert engine.notifier.events[0].message == (
        f"{EXITED_MESSAGE} (exit status 3; last output: error: bad flag --x)"
    )
    assert (await engine.state(s.id)).ended == record.ended


async def test_a_lost_runtime_ends_at_once_and_the_page_says_there_is_no_status(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    s = await engine.spawn()
    await engine.activity(s.id, ActivityState.WAITING_INPUT)
    await trio.sleep(1)
    await engine.probe(s.id, ProbeResult.DEAD)
    record = await engine.state(s.id)
    assert record.lifecycle.termination_reason is TerminationReason.RUNTIME_LOST
    assert record.ended == SessionEnd(at=engine.clock.now())
    await engine.deliver()
    assert engine.notified() == ["reaction.agent-needs-input", "reaction.agent-exited"]
    assert engine.notifier.events[1].message == (
        f"{EXITED_MESSAGE} (its runtime is gone, so no exit status)"
    )


async def test_a_reading_that_cannot_tell_still_quarantines_and_records_no_end(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    s = await engine.spawn()
    await engine.probe(s.id, ProbeResult.FAILED)
    record = await engine.state(s.id)
    assert record.lifecycle.state is SessionState.DETECTING
    assert record.ended is None


async def test_a_kill_records_when_a_failed_spawn_how_and_a_restore_clears_both(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    s = await engine.spawn()
    await engine.manager.on_kill_requested(s.id)
    killed = await engine.state(s.id)
    assert killed.ended == SessionEnd(at=engine.clock.now())
    assert (await engine.manager.get(s.id)).status is SessionStatus.KILLED

    await trio.sleep(1)
    again = SpawnOutcome(runtime_handle_id=f"{s.id}#2", runtime_name="scripted")
    await engine.manager.on_restored(s.id, again)
    assert (await engine.state(s.id)).ended is None

    failed = await engine.spawn()
    await engine.manager.on_kill_requested(
        failed.id,
        TerminationReason.ERROR_IN_PROCESS,
        exit_status=127,
        last_output="launch.sh: 3: exec: claude: not found\n",
    )
    record = await engine.state(failed.id)
    assert record.ended == SessionEnd(
        at=engine.clock.now(), exit_status=127, last_output="launch.sh: 3: exec: claude: not found"
    )
    await engine.deliver()
    assert engine.notified() == []  # a failed spawn answers its caller; nobody is paged


# --- the cleanup after a merge ---------------------------------------------------------------


@dataclass
class Cleanup:
    """A merge cleanup that records when it ran, keeps the workspace when told why, and
    can fail its next runs."""

    manager: LifecycleManager
    clock: TrioClock
    kept: str = ""
    failures: int = 0
    runs: list[tuple[str, datetime]] = field(default_factory=list)

    async def __call__(self, session_id: str) -> None:
        self.runs.append((session_id, self.clock.now()))
        if self.failures:
            self.failures -= 1
            raise OSError("git worktree remove: index.lock exists")
        await self.manager.on_merge_cleaned(session_id, kept=self.kept)


def cleanup_for(
    engine: Engine, after: timedelta | None = GRACE, *, kept: str = "", failures: int = 0
) -> Cleanup:
    cleanup = Cleanup(engine.manager, engine.clock, kept=kept, failures=failures)
    engine.manager.clean_up_merged_sessions(cleanup, after=after)
    return cleanup


async def test_a_merged_session_is_cleaned_up_once_after_the_grace_period(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    cleanup = cleanup_for(engine)
    s = await engine.spawn()
    await engine.manager.apply_pr_observation(s.id, MERGED)
    merged_at = engine.clock.now()
    assert (await engine.manager.get(s.id)).status is SessionStatus.MERGED

    await trio.sleep(GRACE.total_seconds() - 1)
    assert cleanup.runs == []
    await trio.sleep(2)
    assert cleanup.runs == [(s.id, merged_at + GRACE)]
    record = await engine.state(s.id)
    assert (record.lifecycle.state, record.lifecycle.termination_reason) == (
        SessionState.DONE,
        TerminationReason.PR_MERGED,
    )
    assert (await engine.manager.get(s.id)).status is SessionStatus.DONE

    await engine.manager.apply_pr_observation(s.id, MERGED)  # re-polled: nothing more
    await trio.sleep(24 * 3600)
    assert len(cleanup.runs) == 1
    await engine.deliver()
    assert engine.notified() == ["reaction.pr-merged"]


async def test_a_kept_workspace_is_reported_once_with_the_reason(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    why = "refusing to delete workspace /work/mer-1: it has uncommitted changes (notes.txt)"
    cleanup_for(engine, kept=why)
    s = await engine.spawn()
    await engine.manager.apply_pr_observation(s.id, MERGED)
    await trio.sleep(GRACE.total_seconds() + 1)
    assert (await engine.manager.get(s.id)).status is SessionStatus.DONE
    await engine.manager.on_merge_cleaned(s.id, kept=why)  # a repeat says nothing new
    await engine.deliver()
    assert engine.notified() == ["reaction.pr-merged", WORKSPACE_KEPT_EVENT]
    assert why in engine.notifier.events[1].message
    assert engine.notifier.events[1].session_id == s.id


async def test_never_keeps_a_merged_session_as_it_is(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    cleanup = cleanup_for(engine, after=None)
    s = await engine.spawn()
    await engine.manager.apply_pr_observation(s.id, MERGED)
    await trio.sleep(7 * 24 * 3600)
    assert cleanup.runs == []
    assert (await engine.manager.get(s.id)).status is SessionStatus.MERGED


async def test_a_restore_during_the_grace_period_cancels_the_cleanup(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    cleanup = cleanup_for(engine)
    s = await engine.spawn()
    await engine.manager.apply_pr_observation(s.id, MERGED)
    await trio.sleep(60)
    again = SpawnOutcome(runtime_handle_id=f"{s.id}#2", runtime_name="scripted")
    await engine.manager.on_restored(s.id, again)
    await trio.sleep(GRACE.total_seconds() * 2)
    assert cleanup.runs == []
    assert (await engine.state(s.id)).lifecycle.state is SessionState.NOT_STARTED


async def test_a_failed_cleanup_is_tried_again_later(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    cleanup = cleanup_for(engine, failures=1)
    s = await engine.spawn()
    await engine.manager.apply_pr_observation(s.id, MERGED)
    merged_at = engine.clock.now()
    await trio.sleep((GRACE + CLEANUP_RETRY).total_seconds() + 1)
    assert [when for _, when in cleanup.runs] == [
        merged_at + GRACE,
        merged_at + GRACE + CLEANUP_RETRY,
    ]
    assert (await engine.state(s.id)).lifecycle.state is SessionState.DONE


async def test_a_restart_during_the_grace_period_still_cleans_up_on_time_and_once(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    clock = TrioClock()
    async with running_engine(store, clock=clock) as first:
        cleanup_for(first)
        s = await first.spawn()
        await first.manager.apply_pr_observation(s.id, MERGED)
        merged_at = clock.now()
        await trio.sleep(60)  # the daemon stops a minute into the grace period

    async with running_engine(store, clock=clock) as second:
        cleanup = cleanup_for(second)
        await second.manager.arm_timers()
        await trio.sleep(GRACE.total_seconds())
        assert cleanup.runs == [(s.id, merged_at + GRACE)]
        assert (await second.state(s.id)).lifecycle.state is SessionState.DONE

    async with running_engine(store, clock=clock) as third:
        cleanup = cleanup_for(third)
        await third.manager.arm_timers()
        await trio.sleep(24 * 3600)
        assert cleanup.runs == []


async def test_a_cleanup_overdue_at_boot_runs_at_once(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    clock = TrioClock()
    async with running_engine(store, clock=clock) as first:
        s = await first.spawn()
        await first.manager.apply_pr_observation(s.id, MERGED)
    await trio.sleep(3600)  # the daemon was down past the grace period
    async with running_engine(store, clock=clock) as second:
        cleanup = cleanup_for(second)
        assert await second.manager.arm_timers() == 1  # the merged session is loaded
        await trio.sleep(0.1)
        assert [sid for sid, _ in cleanup.runs] == [s.id]


async def test_a_merge_cleanup_turn_writes_the_state_and_nothing_else(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    commits: list[CommitUnit] = []
    async with running_engine(store) as engine:
        s = await engine.spawn()
        await engine.manager.apply_pr_observation(s.id, MERGED)
        original = store.commit

        async def recording(unit: CommitUnit) -> None:
            commits.append(unit)
            await original(unit)

        store.commit = recording  # type: ignore[method-assign]
        await engine.manager.on_merge_cleaned(s.id)
        await engine.manager.on_merge_cleaned(s.id)  # done already: no write at all
    assert [(u.changed, u.outbox) for u in commits] == [(frozenset({"state"}), ())]
