"""The lifecycle engine end to end over each store: transitions, reactions through the
outbox, timers on trio's clock, ordering, isolation and restart (docs/design.md, D-1…D-11)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
import trio
import trio.testing

from adapters.memory import RecordingMessenger
from orchestrator.clock import TrioClock
from orchestrator.domain.errors import (
    ConflictError,
    DeliveryError,
    NotFoundError,
    OverloadedError,
    StoreError,
)
from orchestrator.domain.model import (
    ESCALATED_EVENT_TYPE,
    ActivitySignal,
    ActivityState,
    CheckStatus,
    CIState,
    Mergeability,
    PRCheck,
    PRComment,
    ProbeResult,
    PRObservation,
    ReviewDecision,
    RuntimeFacts,
    SessionState,
    SessionStatus,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.domain.reaction_policy import load_reaction_policy
from orchestrator.domain.records import CommitUnit
from orchestrator.lifecycle.manager import EngineLimits
from orchestrator.ports import Store
from tests.engine_harness import STORES, Engine, running_engine

PR = "https://github.com/acme/app/pull/1"
ALIVE, DEAD, FAILED = ProbeResult.ALIVE, ProbeResult.DEAD, ProbeResult.FAILED


@pytest.fixture(params=sorted(STORES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with STORES[request.param](tmp_path) as opened:
        yield opened


@pytest.fixture
async def engine(store: Store) -> AsyncIterator[Engine]:
    async with running_engine(store) as running:
        yield running


def failing_ci(commit: str, log: str = "AssertionError: expected 2") -> PRObservation:
    return PRObservation(
        url=PR,
        number=1,
        ci=CIState.FAILING,
        checks=(PRCheck(name="test", commit=commit, status=CheckStatus.FAILED, log_tail=log),),
    )


# --- runtime observations ------------------------------------------------------------


async def test_dead_probe_terminates_and_pages_once(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    s = await engine.spawn()
    await engine.activity(s.id, ActivityState.ACTIVE)
    await trio.sleep(61)  # past the recent-activity window
    await engine.probe(s.id, DEAD)
    await engine.probe(s.id, DEAD)
    record = await engine.state(s.id)
    assert record.lifecycle.state is SessionState.TERMINATED
    assert record.lifecycle.termination_reason is TerminationReason.RUNTIME_LOST
    assert not record.lifecycle.is_alive
    await engine.deliver()
    assert engine.notified() == ["reaction.agent-exited"]


async def test_failed_probes_quarantine_then_stay_stuck_and_recover(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    """D-9: detecting(1), detecting(2), stuck, then stuck (one page), healthy → working."""
    s = await engine.spawn()
    await engine.activity(s.id, ActivityState.ACTIVE)
    seen = []
    for _ in range(5):
        await trio.sleep(5)
        await engine.probe(s.id, FAILED)
        lc = (await engine.state(s.id)).lifecycle
        seen.append((lc.state, lc.detecting.attempts if lc.detecting else None))
        assert lc.is_alive
    assert seen == [
        (SessionState.DETECTING, 1),
        (SessionState.DETECTING, 2),
        (SessionState.STUCK, None),
        (SessionState.STUCK, None),
        (SessionState.STUCK, None),
    ]
    await engine.probe(s.id, ALIVE)
    assert (await engine.state(s.id)).lifecycle.state is SessionState.WORKING
    await engine.deliver()
    assert engine.notified() == ["reaction.agent-stuck"]


async def test_healthy_probe_keeps_not_started_and_failed_probe_moves_needs_input(
    engine: Engine,
) -> None:
    s = await engine.spawn()
    await engine.probe(s.id, ALIVE)
    assert (await engine.state(s.id)).lifecycle.state is SessionState.NOT_STARTED
    await engine.activity(s.id, ActivityState.WAITING_INPUT)
    await engine.probe(s.id, FAILED)
    assert (await engine.state(s.id)).lifecycle.state is SessionState.DETECTING


async def test_detecting_escalates_on_its_own_after_five_minutes(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    """The detecting cap fires from the timer even if no further probe arrives."""
    s = await engine.spawn()
    await engine.probe(s.id, FAILED)
    assert (await engine.state(s.id)).lifecycle.state is SessionState.DETECTING
    await trio.sleep(4 * 60 + 59)
    assert (await engine.state(s.id)).lifecycle.state is SessionState.DETECTING
    await trio.sleep(2)
    assert (await engine.state(s.id)).lifecycle.state is SessionState.STUCK
    await engine.deliver()
    assert engine.notified() == ["reaction.agent-stuck"]


async def test_sticky_activity_does_not_keep_a_dead_session_alive(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    """D-8: waiting_input is recent only inside the same 60 s window."""
    s = await engine.spawn()
    await engine.activity(s.id, ActivityState.WAITING_INPUT)
    await trio.sleep(61)
    await engine.probe(s.id, DEAD)
    record = await engine.state(s.id)
    assert record.lifecycle.termination_reason is TerminationReason.RUNTIME_LOST


async def test_terminal_session_ignores_observations(engine: Engine) -> None:
    """D-7: no is_alive flip, no repeated agent-exited."""
    s = await engine.spawn()
    await engine.manager.on_kill_requested(s.id)
    before = await engine.state(s.id)
    await engine.probe(s.id, ALIVE)
    await engine.activity(s.id, ActivityState.ACTIVE)
    assert await engine.state(s.id) == before
    await engine.deliver()
    assert engine.notified() == []


# --- activity ---------------------------------------------------------------------------


async def test_waiting_input_pages_the_human_once(engine: Engine) -> None:
    s = await engine.spawn()
    for _ in range(3):
        await engine.activity(s.id, ActivityState.WAITING_INPUT)
    await engine.activity(s.id, ActivityState.BLOCKED)
    assert (await engine.state(s.id)).lifecycle.state is SessionState.STUCK
    await engine.deliver()
    assert engine.notified() == ["reaction.agent-needs-input", "reaction.agent-stuck"]
    assert engine.notifier.events[0].priority == "urgent"


async def test_invalid_activity_is_ignored(engine: Engine) -> None:
    s = await engine.spawn()
    before = await engine.state(s.id)
    signal = ActivitySignal(state=ActivityState.ACTIVE, timestamp=engine.clock.now(), valid=False)
    await engine.manager.apply_activity_signal(s.id, signal)
    assert await engine.state(s.id) == before


async def test_idle_nudges_then_escalates_after_15_minutes(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    s = await engine.spawn()
    await engine.activity(s.id, ActivityState.IDLE)
    await engine.deliver()
    assert engine.messenger.messages_for(s.id) == [
        "You appear idle. Continue the task or say what is blocking you."
    ]
    await trio.sleep(14 * 60)
    await engine.deliver()
    assert engine.notified() == []
    await trio.sleep(61)  # past the deadline, so the timer's turn has run
    await engine.deliver()
    assert engine.notified() == [ESCALATED_EVENT_TYPE]
    assert engine.notifier.events[0].message == (
        'Automatic handling of "agent-idle" is exhausted — needs a human.'
    )
    await trio.sleep(30 * 60)
    await engine.deliver()
    assert engine.notified() == [ESCALATED_EVENT_TYPE]
    await engine.activity(s.id, ActivityState.ACTIVE)
    await engine.activity(s.id, ActivityState.IDLE)
    await engine.deliver()
    assert len(engine.messenger.messages_for(s.id)) == 2  # leaving re-arms


async def test_flapping_idle_escalates_15_minutes_after_the_last_entry(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    """Re-entering idle moves the deadline later; the first entry's timer must not fire."""
    s = await engine.spawn()
    for _ in range(3):
        await engine.activity(s.id, ActivityState.IDLE)
        await trio.sleep(4 * 60)
        await engine.activity(s.id, ActivityState.ACTIVE)
    await engine.activity(s.id, ActivityState.IDLE)  # t = 12 min, the first deadline still ahead
    await trio.sleep(14 * 60 + 59)
    await engine.deliver()
    assert engine.notified() == []
    await trio.sleep(2)
    await engine.deliver()
    assert engine.notified() == [ESCALATED_EVENT_TYPE]
    await trio.sleep(60 * 60)
    await engine.deliver()
    assert engine.notified() == [ESCALATED_EVENT_TYPE]


async def test_an_earlier_deadline_replaces_a_later_one(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    """Idle (15 min) then a conflicting PR whose reaction escalates after 1 minute."""
    policy = load_reaction_policy({"merge-conflicts": {"escalateAfter": "1m"}})
    async with running_engine(store, policy=policy) as engine:
        s = await engine.spawn()
        await engine.activity(s.id, ActivityState.IDLE)
        await trio.sleep(60)
        conflict = PRObservation(url=PR, mergeability=Mergeability.CONFLICTING)
        await engine.manager.apply_pr_observation(s.id, conflict)
        await trio.sleep(59)
        await engine.deliver()
        assert engine.notified() == []
        await trio.sleep(2)
        await engine.deliver()
        assert engine.notified() == [ESCALATED_EVENT_TYPE]
        assert "merge-conflicts" in engine.notifier.events[0].message
        await trio.sleep(60 * 60)
        await engine.deliver()
        assert engine.notified() == [ESCALATED_EVENT_TYPE]


# --- PR observations --------------------------------------------------------------------


async def test_failing_ci_nudges_the_agent_with_the_log_tail(engine: Engine) -> None:
    s = await engine.spawn()
    await engine.activity(s.id, ActivityState.ACTIVE)
    await engine.manager.apply_pr_observation(s.id, failing_ci("c1", "E   assert 1 == 2\x07"))
    await engine.deliver()
    (message,) = engine.messenger.messages_for(s.id)
    assert message.startswith("CI is failing on your PR.")
    assert message.endswith("\n\nFailing output:\nE   assert 1 == 2")
    assert (await engine.manager.get(s.id)).status is SessionStatus.CI_FAILED


async def test_ci_brake_two_nudges_then_one_escalation_and_no_repeat_on_repoll(
    engine: Engine,
) -> None:
    s = await engine.spawn()
    for commit in ("c1", "c1", "c2", "c3", "c3", "c4"):
        await engine.manager.apply_pr_observation(s.id, failing_ci(commit))
    await engine.deliver()
    assert len(engine.messenger.messages_for(s.id)) == 2
    assert engine.notified() == [ESCALATED_EVENT_TYPE]
    passed = PRCheck(name="test", commit="c5", status=CheckStatus.PASSED)
    await engine.manager.apply_pr_observation(
        s.id, PRObservation(url=PR, ci=CIState.PASSING, checks=(passed,))
    )
    await engine.manager.apply_pr_observation(s.id, failing_ci("c6"))
    await engine.deliver()
    assert len(engine.messenger.messages_for(s.id)) == 3  # the brake was released
    assert [r.status for r in await engine.store.recent_check_runs(PR, "test", 3)] == [
        CheckStatus.FAILED,
        CheckStatus.PASSED,
        CheckStatus.FAILED,
    ]


async def test_review_comments_are_sent_once_each_regardless_of_author(engine: Engine) -> None:
    s = await engine.spawn()
    bot = PRComment(id="1", author="review-bot", file="a.py", line=4, body="Use a context manager")
    obs = PRObservation(url=PR, review=ReviewDecision.CHANGES_REQUESTED, comments=(bot,))
    for _ in range(3):
        await engine.manager.apply_pr_observation(s.id, obs)
    await engine.activity(s.id, ActivityState.ACTIVE)  # never re-sends feedback (D-4)
    await engine.deliver()
    (message,) = engine.messenger.messages_for(s.id)
    assert "@review-bot on a.py:4:\nUse a context manager" in message


async def test_approved_and_mergeable_notifies(engine: Engine) -> None:
    s = await engine.spawn()
    await engine.activity(s.id, ActivityState.ACTIVE)
    obs = PRObservation(
        url=PR,
        ci=CIState.PASSING,
        review=ReviewDecision.APPROVED,
        mergeability=Mergeability.MERGEABLE,
    )
    await engine.manager.apply_pr_observation(s.id, obs)
    await engine.manager.apply_pr_observation(s.id, obs)
    await engine.deliver()
    assert engine.notified() == ["reaction.approved-and-green"]
    assert (await engine.manager.get(s.id)).status is SessionStatus.MERGEABLE


async def test_merge_terminates_the_session_and_notifies_once(engine: Engine) -> None:
    s = await engine.spawn()
    merged = PRObservation(url=PR, merged=True)
    await engine.manager.apply_pr_observation(s.id, merged)
    await engine.manager.apply_pr_observation(s.id, merged)
    record = await engine.state(s.id)
    assert record.lifecycle.termination_reason is TerminationReason.PR_MERGED
    await engine.deliver()
    assert engine.notified() == ["reaction.pr-merged"]
    assert (await engine.manager.get(s.id)).status is SessionStatus.CLEANUP


async def test_merge_on_a_killed_session_writes_the_pr_and_stays_quiet(engine: Engine) -> None:
    s = await engine.spawn()
    await engine.manager.on_kill_requested(s.id)
    await engine.manager.apply_pr_observation(s.id, PRObservation(url=PR, merged=True))
    assert (await engine.store.pr_facts_for_session(s.id)).merged
    assert (
        await engine.state(s.id)
    ).lifecycle.termination_reason is TerminationReason.MANUALLY_KILLED
    await engine.deliver()
    assert engine.notified() == []


async def test_failed_fetch_is_dropped(engine: Engine) -> None:
    s = await engine.spawn()
    await engine.manager.apply_pr_observation(
        s.id, PRObservation(url=PR, fetched=False, closed=True)
    )
    assert not (await engine.store.pr_facts_for_session(s.id)).exists
    await engine.deliver()
    assert engine.notified() == []


async def test_stuck_session_with_failing_ci_gets_one_page_and_no_nudge(engine: Engine) -> None:
    s = await engine.spawn()
    await engine.activity(s.id, ActivityState.BLOCKED)
    await engine.manager.apply_pr_observation(s.id, failing_ci("c1"))
    await engine.deliver()
    assert engine.messenger.sent == []
    assert engine.notified() == ["reaction.agent-stuck"]


async def test_conflict_nudges_then_escalates_unless_resolved(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    a, b = await engine.spawn(), await engine.spawn()
    conflict = PRObservation(url=PR, mergeability=Mergeability.CONFLICTING)
    await engine.manager.apply_pr_observation(a.id, conflict)
    await engine.manager.apply_pr_observation(b.id, msgspec.structs.replace(conflict, url=PR + "0"))
    await engine.manager.apply_pr_observation(b.id, PRObservation(url=PR + "0"))
    await trio.sleep(16 * 60)
    await engine.deliver()
    assert len(engine.messenger.messages_for(a.id)) == len(engine.messenger.messages_for(b.id)) == 1
    assert [e.session_id for e in engine.notifier.events] == [a.id]


# --- commands and reads ---------------------------------------------------------------


async def test_kill_terminates_without_reacting(engine: Engine) -> None:
    s = await engine.spawn()
    await engine.activity(s.id, ActivityState.IDLE)
    await engine.manager.on_kill_requested(s.id)
    await engine.manager.on_kill_requested(s.id, TerminationReason.AUTO_CLEANUP)
    record = await engine.state(s.id)
    assert record.lifecycle.termination_reason is TerminationReason.MANUALLY_KILLED
    assert not record.lifecycle.is_alive
    assert (await engine.manager.get(s.id)).status is SessionStatus.KILLED
    assert await engine.store.list_trackers(s.id) == []


async def test_restore_reopens_a_terminal_session_only(engine: Engine) -> None:
    s = await engine.spawn()
    outcome = msgspec.structs.replace(
        (await engine.state(s.id)).metadata, runtime_handle_id=f"{s.id}#2"
    )
    from orchestrator.domain.model import SpawnOutcome

    again = SpawnOutcome(runtime_handle_id=outcome.runtime_handle_id, runtime_name="scripted")
    with pytest.raises(ConflictError, match="not restorable"):
        await engine.manager.on_restored(s.id, again)
    await engine.manager.on_kill_requested(s.id)
    restored = await engine.manager.on_restored(s.id, again)
    assert restored.lifecycle.state is SessionState.NOT_STARTED
    assert restored.lifecycle.is_alive
    stored = await engine.state(s.id)
    assert stored.metadata.runtime_handle_id == f"{s.id}#2"
    assert stored.metadata.prompt == "Fix the flaky test"  # never cleared by the engine


async def test_a_probe_begun_before_a_restore_is_dropped(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    """A kill and restore while a probe ran: its reading may be the old runtime's death, and
    must not end the new one. A probe begun after the restore counts as usual."""
    s = await engine.spawn()
    probe_began = engine.clock.now()
    await trio.sleep(1)
    await engine.manager.on_kill_requested(s.id)
    await engine.manager.on_restored(
        s.id, SpawnOutcome(runtime_handle_id=f"{s.id}#1", runtime_name="scripted")
    )
    await trio.sleep(1)
    old_reading = RuntimeFacts(
        observed_at=engine.clock.now(), runtime=DEAD, process=DEAD, probe_started_at=probe_began
    )
    await engine.manager.apply_runtime_observation(s.id, old_reading)
    restored = (await engine.state(s.id)).lifecycle
    assert (restored.state, restored.is_alive) == (SessionState.NOT_STARTED, True)
    assert engine.manager.stale_observations == 1

    fresh = msgspec.structs.replace(old_reading, probe_started_at=engine.clock.now())
    await engine.manager.apply_runtime_observation(s.id, fresh)
    ended = (await engine.state(s.id)).lifecycle
    assert ended.termination_reason is TerminationReason.RUNTIME_LOST


async def test_unknown_sessions(engine: Engine) -> None:
    """D-11: observations are counted no-ops; commands are not found."""
    await engine.probe("nope-1", DEAD)
    await engine.activity("nope-1", ActivityState.ACTIVE)
    assert engine.manager.unknown_observations == 2
    assert engine.manager.cached_sessions == 0
    with pytest.raises(NotFoundError):
        await engine.manager.on_kill_requested("nope-1")
    with pytest.raises(NotFoundError):
        await engine.manager.get("nope-1")


async def test_running_sessions_excludes_terminal(engine: Engine) -> None:
    a, b, c = await engine.spawn(), await engine.spawn("ao"), await engine.spawn()
    await engine.manager.on_kill_requested(b.id)
    assert [s.id for s in await engine.manager.running_sessions()] == [a.id, c.id]
    assert [v.status for v in await engine.manager.list("mer")] == [
        SessionStatus.SPAWNING,
        SessionStatus.SPAWNING,
    ]


# --- concurrency ----------------------------------------------------------------------


async def test_messages_to_one_session_apply_in_the_order_accepted(store: Store) -> None:
    order: list[int] = []
    applied: list[int] = []
    real_commit = store.commit

    async def slow_commit(unit: CommitUnit) -> None:
        await trio.sleep(0.001)
        await real_commit(unit)
        if unit.session is not None and unit.session.lifecycle.activity is not None:
            applied.append(int(unit.session.lifecycle.activity.last_activity_at.timestamp()))

    store.commit = slow_commit  # type: ignore[method-assign]
    async with running_engine(store, limits=EngineLimits(mailbox_size=1000)) as engine:
        s = await engine.spawn()
        base = engine.clock.now()

        async def producer(n: int) -> None:
            order.append(n)  # no checkpoint between this and joining the queue
            # Stamped in the order accepted: a turn applied out of that order would be
            # older than the one before it, and dropped as out of date.
            signal = ActivitySignal(
                state=ActivityState.ACTIVE if n % 2 else ActivityState.IDLE,
                timestamp=base + timedelta(seconds=len(order)),
            )
            await engine.manager.apply_activity_signal(s.id, signal)

        async with trio.open_nursery() as nursery:
            for n in range(1, 201):
                nursery.start_soon(producer, n)
        base_ts = int(base.timestamp())
        assert [t - base_ts for t in applied] == list(range(1, len(order) + 1))
        assert sorted(order) == list(range(1, 201))


async def test_a_blocked_agent_does_not_hold_up_other_sessions(store: Store) -> None:
    messenger = RecordingMessenger()
    async with running_engine(store, messenger=messenger) as engine:
        stuck = await engine.spawn()
        messenger.blocked[stuck.id] = trio.Event()  # never set: this agent never accepts
        others = [await engine.spawn() for _ in range(100)]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.dispatcher.run)
            with trio.fail_after(10):
                await engine.activity(stuck.id, ActivityState.IDLE)
                for s in others:
                    await engine.activity(s.id, ActivityState.IDLE)
                while len(messenger.sent) < len(others):  # noqa: ASYNC110
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert {sid for sid, _ in messenger.sent} == {s.id for s in others}


async def test_a_full_mailbox_is_backpressure(store: Store) -> None:
    gate = trio.Event()
    real_commit = store.commit

    async def gated_commit(unit: CommitUnit) -> None:
        await gate.wait()
        await real_commit(unit)

    async with running_engine(
        store, limits=EngineLimits(mailbox_size=2, overload_wait=0.01)
    ) as engine:
        s = await engine.spawn()
        store.commit = gated_commit  # type: ignore[method-assign]
        results: list[str] = []

        async def send(state: ActivityState) -> None:
            try:
                await engine.activity(s.id, state)
                results.append("ok")
            except OverloadedError:
                results.append("overloaded")

        async with trio.open_nursery() as nursery:
            for state in (
                ActivityState.ACTIVE,
                ActivityState.IDLE,
                ActivityState.ACTIVE,
                ActivityState.IDLE,
            ):
                nursery.start_soon(send, state)
                await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(0.05)
            assert results == ["overloaded"]
            gate.set()
        assert sorted(results) == ["ok", "ok", "ok", "overloaded"]


async def test_a_failed_commit_fails_only_its_caller_and_reloads(store: Store) -> None:
    real_commit = store.commit
    failures = [StoreError("disk full")]

    async def flaky_commit(unit: CommitUnit) -> None:
        if failures:
            raise failures.pop()
        await real_commit(unit)

    async with running_engine(store) as engine:
        s = await engine.spawn()
        store.commit = flaky_commit  # type: ignore[method-assign]
        with pytest.raises(StoreError, match="disk full"):
            await engine.activity(s.id, ActivityState.ACTIVE)
        assert (await engine.state(s.id)).lifecycle.state is SessionState.NOT_STARTED
        await engine.activity(s.id, ActivityState.ACTIVE)
        assert (await engine.state(s.id)).lifecycle.state is SessionState.WORKING


# --- delivery ---------------------------------------------------------------------------


async def test_notifier_failures_are_retried_then_delivered_once(engine: Engine) -> None:
    s = await engine.spawn()
    engine.notifier.fail_times = 2
    await engine.activity(s.id, ActivityState.WAITING_INPUT)
    await engine.deliver()
    assert engine.notified() == ["reaction.agent-needs-input"]
    assert engine.notifier.calls == 3
    (row,) = await engine.store.list_notifications()
    assert row.type == "reaction.agent-needs-input"


async def test_an_agent_message_that_cannot_be_delivered_goes_to_the_human(
    engine: Engine,
) -> None:
    """D-6: never fails silently."""
    s = await engine.spawn()
    engine.messenger.fail_times = 10
    await engine.activity(s.id, ActivityState.IDLE)
    await engine.deliver()
    assert engine.messenger.sent == []
    (event,) = engine.notifier.events
    assert event.type == "reaction.agent-idle"
    assert event.priority == "urgent"
    assert "You appear idle." in event.message


async def test_a_permanent_delivery_error_is_not_retried(engine: Engine) -> None:
    s = await engine.spawn()
    engine.messenger.fail_times = 1
    engine.messenger.failure = lambda: DeliveryError("no such pane")
    await engine.activity(s.id, ActivityState.IDLE)
    await engine.deliver()
    assert engine.messenger.calls == 1
    assert engine.notified() == ["reaction.agent-idle"]


# --- restart --------------------------------------------------------------------------


async def test_restart_delivers_leftovers_once_and_keeps_budgets(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    clock = TrioClock()
    async with running_engine(store, clock=clock) as first:
        a, b = await first.spawn(), await first.spawn()
        await first.manager.apply_pr_observation(a.id, failing_ci("c1"))
        await first.deliver()  # a's nudge is delivered before the "crash"
        await first.activity(b.id, ActivityState.IDLE)  # b's nudge stays in the outbox
        sent_before = list(first.messenger.sent)
    assert sent_before == [(a.id, sent_before[0][1])]

    async with running_engine(store, arm_timers=True, clock=clock) as second:
        await second.deliver()
        assert [sid for sid, _ in second.messenger.sent] == [b.id]
        await second.manager.apply_pr_observation(a.id, failing_ci("c1"))  # same commit
        await second.activity(b.id, ActivityState.IDLE)  # same state
        await second.deliver()
        assert [sid for sid, _ in second.messenger.sent] == [b.id]
        await trio.sleep(15 * 60 + 1)  # b's idle escalation survived the restart
        await second.deliver()
        assert [(e.type, e.session_id) for e in second.notifier.events] == [
            (ESCALATED_EVENT_TYPE, b.id)
        ]
    async with running_engine(store, arm_timers=True, clock=clock) as third:
        await trio.sleep(60 * 60)
        await third.deliver()
        assert third.messenger.sent == []
        assert third.notifier.events == []


async def test_sessions_do_not_wait_on_each_other_s_commits(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    """One session's slow turn (its messenger blocks, its queue is long) never delays
    another session's apply: each session has its own queue."""
    async with running_engine(store) as engine:
        slow, fast = await engine.spawn(), await engine.spawn()
        real_commit = store.commit
        gate = trio.Event()

        async def commit(unit: CommitUnit) -> None:
            if unit.session_id == slow.id:
                await gate.wait()
            await real_commit(unit)

        store.commit = commit  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.activity, slow.id, ActivityState.ACTIVE)
            await trio.testing.wait_all_tasks_blocked()
            with trio.fail_after(1):
                await engine.activity(fast.id, ActivityState.ACTIVE)
            assert (await engine.state(fast.id)).lifecycle.state is SessionState.WORKING
            gate.set()
        assert (await engine.state(slow.id)).lifecycle.state is SessionState.WORKING


async def test_exists_answers_for_held_and_unheld_sessions(store: Store) -> None:
    async with running_engine(store) as engine:
        s = await engine.spawn()
        assert await engine.manager.exists(s.id)  # held by the engine
    async with running_engine(store) as fresh:
        assert await fresh.manager.exists(s.id)  # read from the store
        assert not await fresh.manager.exists("nope-1")
