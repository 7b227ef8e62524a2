"""The reaper over the scripted runtime and the real lifecycle engine: concurrent probes with
a per-probe timeout, ``failed`` never read as dead, D-8/D-9 end to end, and sessions that
cannot be probed reported once (docs/behaviour.md, "Probes and the detecting quarantine")."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio
import trio.testing

from adapters.memory import ManualClock, MemoryStore, Script, ScriptedRuntime
from orchestrator.config import ReaperConfig
from orchestrator.domain.errors import InvalidInputError, OverloadedError, ProbeError, StoreError
from orchestrator.domain.model import (
    ActivityState,
    ProbeResult,
    RuntimeFacts,
    SessionId,
    SessionRecord,
    SessionState,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.lifecycle.manager import LifecycleManager
from orchestrator.ports import Clock, Runtime, RuntimeHandle, RuntimeProbe
from orchestrator.reaper import Reaper, ReaperLifecycle
from tests.engine_harness import Engine, running_engine

ALIVE, DEAD, FAILED = ProbeResult.ALIVE, ProbeResult.DEAD, ProbeResult.FAILED
DEFAULTS = ReaperConfig()


def make_reaper(
    lifecycle: ReaperLifecycle,
    runtime: Runtime,
    clock: Clock,
    *,
    concurrency: int = DEFAULTS.concurrency,
    probe_timeout: float = DEFAULTS.probe_timeout.total_seconds(),
) -> Reaper:
    """A reaper over ``runtime`` that probes like the default configuration unless told."""
    return Reaper(
        lifecycle,
        {runtime.name: runtime},
        clock,
        concurrency=concurrency,
        probe_timeout=probe_timeout,
    )


class RecordingLifecycle:
    """The real lifecycle manager, with a record of what the reaper reported and when.
    Can refuse one session's readings, or fail the next listings."""

    def __init__(self, inner: LifecycleManager) -> None:
        self.inner = inner
        self.applied: list[tuple[SessionId, float, RuntimeFacts]] = []
        self.refuse: set[SessionId] = set()
        self.failing_listings = 0
        self.listings = 0

    async def running_sessions(self) -> list[SessionRecord]:
        self.listings += 1
        if self.failing_listings:
            self.failing_listings -= 1
            raise StoreError("database is locked")
        return await self.inner.running_sessions()

    async def apply_runtime_observation(self, session_id: SessionId, facts: RuntimeFacts) -> None:
        self.applied.append((session_id, trio.current_time(), facts))
        if session_id in self.refuse:
            raise OverloadedError(f"mailbox of {session_id} is full")
        await self.inner.apply_runtime_observation(session_id, facts)

    def times(self) -> dict[SessionId, float]:
        return {sid: at for sid, at, _ in self.applied}


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    async with running_engine(MemoryStore()) as running:
        yield running


@pytest.fixture
def runtime() -> ScriptedRuntime:
    return ScriptedRuntime()


async def session(engine: Engine, runtime: ScriptedRuntime, answer: Script = Script.ALIVE) -> str:
    """A spawned session whose pane answers ``answer``; returns its id."""
    record = await engine.spawn()
    runtime.script[record.metadata.runtime_handle_id] = answer
    return record.id


def handle_of(session_id: str) -> str:
    return f"{session_id}#1"  # what tests.engine_harness.Engine.spawn records


async def lifecycle_of(engine: Engine, session_id: str) -> tuple[SessionState, int | None, bool]:
    lc = (await engine.state(session_id)).lifecycle
    return lc.state, lc.detecting.attempts if lc.detecting else None, lc.is_alive


# --- what a sweep reports ----------------------------------------------------------------


async def test_each_reading_is_reported_as_probed(engine: Engine, runtime: ScriptedRuntime) -> None:
    alive = await session(engine, runtime, Script.ALIVE)
    dead = await session(engine, runtime, Script.DEAD)
    exited = await session(engine, runtime, Script.EXITED)
    broken = await session(engine, runtime, Script.ERROR)
    report = await make_reaper(engine.manager, runtime, engine.clock).sweep()

    assert {sid: (f.runtime, f.process) for sid, f in report.observed.items()} == {
        alive: (ALIVE, ALIVE),
        dead: (DEAD, DEAD),
        exited: (ALIVE, DEAD),
        broken: (FAILED, FAILED),
    }
    assert report.failed == (broken,)
    assert await lifecycle_of(engine, alive) == (SessionState.NOT_STARTED, None, True)
    assert (await engine.state(dead)).lifecycle.termination_reason is TerminationReason.RUNTIME_LOST
    # The agent exited in a pane kept open: certain death, with its own reason.
    exited_lc = (await engine.state(exited)).lifecycle
    assert exited_lc.termination_reason is TerminationReason.AGENT_PROCESS_EXITED
    assert await lifecycle_of(engine, broken) == (SessionState.DETECTING, 1, True)
    # The terminated sessions are no longer probed.
    again = await make_reaper(engine.manager, runtime, engine.clock).sweep()
    assert set(again.observed) == {alive, broken}


async def test_a_slow_probe_delays_nobody_but_itself(
    engine: Engine, runtime: ScriptedRuntime, autojump_clock: trio.testing.MockClock
) -> None:
    fast = [await session(engine, runtime) for _ in range(20)]
    hung = await session(engine, runtime, Script.TIMEOUT)
    slow = await session(engine, runtime)
    runtime.probe_delay[handle_of(slow)] = 3.0
    lifecycle = RecordingLifecycle(engine.manager)
    reaper = make_reaper(lifecycle, runtime, engine.clock, probe_timeout=5.0)

    start = trio.current_time()
    report = await reaper.sweep()

    times = lifecycle.times()
    assert all(times[sid] == start for sid in fast)
    assert times[slow] == start + 3.0
    assert times[hung] == start + 5.0  # its own timeout, and not a moment longer
    assert report.duration == 5.0
    assert report.timed_out == (hung,)
    assert report.observed[hung].runtime is FAILED
    assert report.observed[slow].runtime is ALIVE


@pytest.mark.parametrize(("concurrency", "seconds"), [(64, 1.0), (8, 5.0), (1, 40.0)])
async def test_probes_run_concurrently_up_to_the_limit(
    engine: Engine,
    runtime: ScriptedRuntime,
    autojump_clock: trio.testing.MockClock,
    concurrency: int,
    seconds: float,
) -> None:
    for _ in range(40):
        runtime.probe_delay[handle_of(await session(engine, runtime))] = 1.0
    reaper = make_reaper(engine.manager, runtime, engine.clock, concurrency=concurrency)
    report = await reaper.sweep()
    assert report.duration == seconds
    assert len(report.observed) == 40


# --- failed is never dead (D-9) ------------------------------------------------------------


@pytest.mark.parametrize("answer", [Script.ERROR, Script.TIMEOUT])
async def test_failed_probes_quarantine_then_stay_stuck_never_dead(
    engine: Engine,
    runtime: ScriptedRuntime,
    autojump_clock: trio.testing.MockClock,
    answer: Script,
) -> None:
    sid = await session(engine, runtime, answer)
    await engine.activity(sid, ActivityState.ACTIVE)
    await trio.sleep(120)  # no recent activity: a dead reading would terminate at once
    reaper = make_reaper(engine.manager, runtime, engine.clock, probe_timeout=2.0)
    seen: list[tuple[SessionState, int | None, bool]] = []
    for _ in range(6):
        await reaper.sweep()
        seen.append(await lifecycle_of(engine, sid))
        await trio.sleep(5)
    assert seen == [
        (SessionState.DETECTING, 1, True),
        (SessionState.DETECTING, 2, True),
        (SessionState.STUCK, None, True),
        (SessionState.STUCK, None, True),
        (SessionState.STUCK, None, True),
        (SessionState.STUCK, None, True),
    ]
    await engine.deliver()
    assert engine.notified() == ["reaction.agent-stuck"]  # one page, no flapping

    runtime.script[handle_of(sid)] = Script.ALIVE  # the pane answers again
    await reaper.sweep()
    assert await lifecycle_of(engine, sid) == (SessionState.WORKING, None, True)


async def test_an_unexpected_probe_error_is_a_failure_not_a_death(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(ScriptedRuntime):
        async def probe(self, handle: RuntimeHandle) -> RuntimeProbe:
            raise RuntimeError("tmux output could not be parsed")

    sid = (await engine.spawn()).id
    report = await make_reaper(engine.manager, Broken(), engine.clock).sweep()
    assert report.failed == (sid,)
    assert await lifecycle_of(engine, sid) == (SessionState.DETECTING, 1, True)
    assert any(
        "tmux output could not be parsed" in r.exc_text for r in caplog.records if r.exc_text
    )


async def test_a_probe_error_from_the_adapter_is_logged_quietly(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(ScriptedRuntime):
        async def probe(self, handle: RuntimeHandle) -> RuntimeProbe:
            raise ProbeError("tmux timed out")

    caplog.set_level(logging.INFO, logger="orchestrator.reaper")
    sid = (await engine.spawn()).id
    report = await make_reaper(engine.manager, Flaky(), engine.clock).sweep()
    assert report.failed == (sid,)
    assert all(r.levelno < logging.WARNING for r in caplog.records)


# --- end to end through the loop (D-8) -----------------------------------------------------


async def test_a_killed_pane_is_terminated_on_the_next_tick_and_pages_once(
    engine: Engine, runtime: ScriptedRuntime, autojump_clock: trio.testing.MockClock
) -> None:
    sid = await session(engine, runtime)
    await engine.activity(sid, ActivityState.ACTIVE)
    reaper = make_reaper(engine.manager, runtime, engine.clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(reaper.run, tick=5.0))
        await trio.sleep(102)
        assert (await engine.state(sid)).lifecycle.state is SessionState.WORKING
        runtime.script[handle_of(sid)] = Script.DEAD  # someone ran `tmux kill-session`
        await trio.sleep(4)  # the tick at 105 s
        lc = (await engine.state(sid)).lifecycle
        assert (lc.state, lc.termination_reason, lc.is_alive) == (
            SessionState.TERMINATED,
            TerminationReason.RUNTIME_LOST,
            False,
        )
        probes = runtime.probes
        await trio.sleep(60)
        assert runtime.probes == probes  # a terminated session is not probed again
        nursery.cancel_scope.cancel()
    await engine.deliver()
    assert engine.notified() == ["reaction.agent-exited"]


class HeldLifecycle(RecordingLifecycle):
    """Holds each reading until ``release`` is set: a reading taken, then applied late."""

    def __init__(self, inner: LifecycleManager) -> None:
        super().__init__(inner)
        self.taken = trio.Event()
        self.release = trio.Event()

    async def apply_runtime_observation(self, session_id: SessionId, facts: RuntimeFacts) -> None:
        self.taken.set()
        await self.release.wait()
        await super().apply_runtime_observation(session_id, facts)


async def test_a_reading_of_the_pane_a_restore_replaced_does_not_end_the_session(
    engine: Engine, runtime: ScriptedRuntime, autojump_clock: trio.testing.MockClock
) -> None:
    sid = await session(engine, runtime)
    handle = handle_of(sid)
    runtime.probe_delay[handle] = 2.0
    lifecycle = HeldLifecycle(engine.manager)
    reaper = make_reaper(lifecycle, runtime, engine.clock)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reaper.sweep)
        await trio.sleep(1.0)  # the probe is under way when the session is killed
        await engine.manager.on_kill_requested(sid)
        runtime.script[handle] = Script.DEAD  # the old pane is gone; the probe reads that
        await lifecycle.taken.wait()
        await engine.manager.on_restored(
            sid, SpawnOutcome(runtime_handle_id=handle, runtime_name="scripted")
        )
        runtime.script[handle] = Script.ALIVE
        lifecycle.release.set()
    assert lifecycle.applied[0][2].runtime is DEAD
    assert await lifecycle_of(engine, sid) == (SessionState.NOT_STARTED, None, True)
    # The next sweep probes the new pane and is believed.
    await make_reaper(engine.manager, runtime, engine.clock).sweep()
    assert await lifecycle_of(engine, sid) == (SessionState.NOT_STARTED, None, True)
    runtime.script[handle] = Script.DEAD
    await trio.sleep(61)  # past the recent-activity window
    await make_reaper(engine.manager, runtime, engine.clock).sweep()
    ended = (await engine.state(sid)).lifecycle
    assert ended.termination_reason is TerminationReason.RUNTIME_LOST


async def test_a_dead_pane_ends_a_session_waiting_for_input_at_the_next_tick(
    engine: Engine, runtime: ScriptedRuntime, autojump_clock: trio.testing.MockClock
) -> None:
    """D-12: a dead pane ends the session at the first tick, even with a `waiting_input`
    reported moments before (this was quarantined until the 60 s window had passed, with
    an `agent-stuck` page on the way). One `agent-exited` page, no `agent-stuck`."""
    sid = await session(engine, runtime)
    await engine.activity(sid, ActivityState.WAITING_INPUT)
    runtime.script[handle_of(sid)] = Script.DEAD
    reaper = make_reaper(engine.manager, runtime, engine.clock)
    seen: list[tuple[SessionState, int | None, bool]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(reaper.run, tick=30.0))
        for _ in range(3):
            await trio.sleep(30 + (1 if not seen else 0))
            seen.append(await lifecycle_of(engine, sid))
        nursery.cancel_scope.cancel()
    assert seen == [(SessionState.TERMINATED, None, False)] * 3  # from the 30 s tick on
    record = await engine.state(sid)
    assert record.lifecycle.termination_reason is TerminationReason.RUNTIME_LOST
    await engine.deliver()
    assert engine.notified() == ["reaction.agent-needs-input", "reaction.agent-exited"]


async def test_the_loop_waits_one_tick_and_survives_a_failing_sweep(
    engine: Engine,
    runtime: ScriptedRuntime,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await session(engine, runtime)
    lifecycle = RecordingLifecycle(engine.manager)
    lifecycle.failing_listings = 1
    reaper = make_reaper(lifecycle, runtime, engine.clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(reaper.run, tick=5.0))
        await trio.sleep(4.9)
        assert lifecycle.listings == 0  # the first sweep comes after one tick
        await trio.sleep(0.2)
        assert (lifecycle.listings, reaper.sweeps) == (1, 0)
        assert "sweep failed" in caplog.text
        await trio.sleep(5)
        assert (lifecycle.listings, reaper.sweeps) == (2, 1)
        assert len(lifecycle.applied) == 1
        nursery.cancel_scope.cancel()


async def test_a_refused_reading_is_logged_and_the_sweep_goes_on(
    engine: Engine, runtime: ScriptedRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    refused, fine = await session(engine, runtime, Script.DEAD), await session(engine, runtime)
    lifecycle = RecordingLifecycle(engine.manager)
    lifecycle.refuse.add(refused)
    report = await make_reaper(lifecycle, runtime, engine.clock).sweep()
    assert set(report.apply_errors) == {refused}
    assert set(report.observed) == {refused, fine}
    assert (await engine.state(refused)).lifecycle.state is SessionState.NOT_STARTED
    assert f"reading for {refused} not applied" in caplog.text


# --- sessions that cannot be probed ---------------------------------------------------------


async def test_sessions_without_a_usable_handle_are_reported_once(
    engine: Engine, runtime: ScriptedRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.reaper")
    probed = await session(engine, runtime)
    await engine.project()
    no_handle = (await engine.store.create_session("mer", now=engine.clock.now())).id
    elsewhere = (await engine.store.create_session("mer", now=engine.clock.now())).id
    await engine.manager.on_spawn_completed(
        elsewhere, SpawnOutcome(runtime_handle_id="w-1", runtime_name="zellij")
    )
    reaper = make_reaper(engine.manager, runtime, engine.clock)

    reports = [await reaper.sweep() for _ in range(3)]

    assert [r.skipped for r in reports] == [(no_handle, elsewhere)] * 3
    assert [r.newly_skipped for r in reports] == [(no_handle, elsewhere), (), ()]
    assert all(set(r.observed) == {probed} for r in reports)
    messages = [r.getMessage() for r in caplog.records if "not probed" in r.getMessage()]
    assert len(messages) == 2
    assert "no runtime handle" in messages[0]
    assert "'zellij', which is not registered" in messages[1]
    assert (await engine.state(no_handle)).lifecycle.state is SessionState.NOT_STARTED


async def test_a_session_is_reported_again_only_after_it_was_fixed(
    engine: Engine, runtime: ScriptedRuntime
) -> None:
    await engine.project()
    sid = (await engine.store.create_session("mer", now=engine.clock.now())).id
    reaper = make_reaper(engine.manager, runtime, engine.clock)
    assert (await reaper.sweep()).newly_skipped == (sid,)
    await engine.manager.on_spawn_completed(
        sid, SpawnOutcome(runtime_handle_id="h", runtime_name="scripted")
    )
    runtime.script["h"] = Script.ALIVE
    report = await reaper.sweep()
    assert (report.skipped, set(report.observed)) == ((), {sid})


async def test_settings_are_checked() -> None:
    class NoLifecycle:
        async def running_sessions(self) -> list[SessionRecord]:
            return []

        async def apply_runtime_observation(self, session_id: SessionId, f: RuntimeFacts) -> None:
            return None

    clock = ManualClock()
    with pytest.raises(InvalidInputError, match="concurrency"):
        Reaper(NoLifecycle(), {}, clock, concurrency=0, probe_timeout=5.0)
    with pytest.raises(InvalidInputError, match="timeout"):
        Reaper(NoLifecycle(), {}, clock, concurrency=1, probe_timeout=0)
    # A tick of zero is refused: the loop would spin (the tick has no default to fall back on).
    reaper = Reaper(NoLifecycle(), {}, clock, concurrency=1, probe_timeout=5.0)
    for tick in (0.0, -1.0):
        with pytest.raises(InvalidInputError, match="tick"):
            await reaper.run(tick=tick)
    assert reaper.sweeps == 0
