"""The pure decide core: verdicts, the quarantine, evidence hashing, the bridge from facts
to probe inputs, the entry points and the Go backend's transition cheat sheet, with
decisions D-7, D-8, D-9 and D-12 applied (docs/behaviour.md, "Probes and the detecting
quarantine", "Activity"; docs/design.md, "Decisions")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from orchestrator.domain.decide import (
    DETECTING_MAX_ATTEMPTS,
    DETECTING_MAX_DURATION,
    RECENT_ACTIVITY_WINDOW,
    LifecycleDecision,
    ProbeInput,
    ProcessVerdict,
    Transition,
    create_detecting_decision,
    detecting_deadline,
    has_recent_activity,
    hash_evidence,
    on_activity_signalled,
    on_detecting_timeout,
    on_kill_requested,
    on_pr_observed,
    on_runtime_observed,
    on_spawn_completed,
    probe_input,
    resolve_probe_decision,
    transition,
)
from orchestrator.domain.model import (
    Activity,
    ActivitySignal,
    ActivitySource,
    ActivityState,
    AgentHarness,
    CIState,
    DetectingState,
    Lifecycle,
    Mergeability,
    ProbeResult,
    PRObservation,
    ReviewDecision,
    RuntimeFacts,
    SessionMetadata,
    SessionState,
    SpawnOutcome,
    TerminationReason,
)
from tests.strategies import Vocabulary, models, utc_datetimes

T0 = datetime(2026, 5, 31, 12, tzinfo=UTC)
PR_URL = "https://github.com/o/r/pull/1"

FAILED_EVIDENCE = "probe_failed runtimeFailed=true process=indeterminate processFailed=true"
DEAD_RECENT_EVIDENCE = "disagree runtime=down process=dead recentActivity=true"
# A reading that cannot tell (runtime down, process unknown) while the agent reported lately.
UNSURE_RECENT_EVIDENCE = "disagree runtime=down process=indeterminate recentActivity=true"

LIVE_STATES = [state for state in SessionState if not state.is_terminal]
TERMINAL_STATES = [state for state in SessionState if state.is_terminal]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def session(state: SessionState, **fields: Any) -> Lifecycle:
    """A well-formed lifecycle in ``state``: alive unless terminal, a reason only when
    terminated, detecting memory (one failed probe 10 s ago) only while detecting."""
    defaults: dict[str, Any] = {
        "state": state,
        "is_alive": not state.is_terminal,
        "termination_reason": (
            TerminationReason.RUNTIME_LOST
            if state is SessionState.TERMINATED
            else TerminationReason.NONE
        ),
        "detecting": (
            DetectingState(
                attempts=1, started_at=at(-10), evidence_hash=hash_evidence(FAILED_EVIDENCE)
            )
            if state is SessionState.DETECTING
            else None
        ),
        "harness": AgentHarness.CLAUDE_CODE,
    }
    return Lifecycle(**(defaults | fields))


def activity(state: ActivityState, seconds: float = 0) -> Activity:
    return Activity(state=state, last_activity_at=at(seconds), source=ActivitySource.HOOK)


def probe(runtime: ProbeResult, process: ProbeResult, seconds: float = 0) -> RuntimeFacts:
    return RuntimeFacts(observed_at=at(seconds), runtime=runtime, process=process)


ALIVE = ProbeResult.ALIVE
DEAD = ProbeResult.DEAD
FAILED = ProbeResult.FAILED
UNKNOWN = ProbeResult.UNKNOWN


def signal(state: ActivityState, seconds: float = 0, **fields: Any) -> ActivitySignal:
    return ActivitySignal(state=state, timestamp=at(seconds), **fields)


def probe_inputs(**fields: Any) -> ProbeInput:
    """A probe input that defaults to a confirmed-dead, quiet session at T0."""
    defaults: dict[str, Any] = {
        "runtime_alive": False,
        "runtime_failed": False,
        "process": ProcessVerdict.DEAD,
        "process_failed": False,
        "recent_activity": False,
        "now": T0,
    }
    return ProbeInput(**(defaults | fields))


def detecting(evidence: str, attempts: int = 1, started_at: datetime = T0) -> LifecycleDecision:
    return LifecycleDecision(
        evidence=evidence,
        state=SessionState.DETECTING,
        termination_reason=TerminationReason.NONE,
        is_alive=True,
        detecting=DetectingState(
            attempts=attempts, started_at=started_at, evidence_hash=hash_evidence(evidence)
        ),
    )


def stuck(evidence: str) -> LifecycleDecision:
    return LifecycleDecision(
        evidence=evidence,
        state=SessionState.STUCK,
        termination_reason=TerminationReason.NONE,
        is_alive=True,
        detecting=None,
    )


# --- hash_evidence ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evidence", "digest"),
    [
        pytest.param(
            FAILED_EVIDENCE,
            "bfc0756271d94f5500fb6962bae744ab2cc5babf903a67887e3b375611a957fd",
            id="probe_failed",
        ),
        pytest.param(
            DEAD_RECENT_EVIDENCE,
            "286407d321f94222f87143a5517a6c86994b32c0b1fda587fdeb9d3280f9f74e",
            id="disagree-down",
        ),
        pytest.param(
            "runtime_lost runtime=down process=indeterminate recentActivity=false",
            "65f32bc14e6f421cb5f33a0f743ade0bfbc0812ce8481b8ca78e9209c218fe81",
            id="runtime_lost",
        ),
        pytest.param(
            "disagree runtime=alive process=dead recentActivity=false",
            "535d8bcde224fed932cdee34d26d5d23f18daeffd4241693d6f7f218b0f24def",
            id="disagree-alive",
        ),
        pytest.param(
            "runtime down at 2026-05-31T12:00:00Z",
            "dd787ebdad25feb51327cc1b669a4206f8c48c62c41f077a53d762329729f7dc",
            id="timestamp-stripped",
        ),
    ],
)
def test_hash_vectors(evidence: str, digest: str) -> None:
    assert hash_evidence(evidence) == digest


@pytest.mark.parametrize(
    "restamped",
    [
        "runtime down at 2026-05-31T12:00:00Z",
        "runtime down at 2026-05-31T13:30:45Z",
        "runtime down at 2026-05-31 13:30:45.123+02:00",
        "runtime down at 2026-05-31T13:30:45-0700",
        "runtime down at 13:30:45",
        "runtime down at 13:30:45.999",
        "runtime down at 1780228800",
        "runtime down at 1780228800123",
        "  runtime\tdown\n at  ",
        "runtime down at",
    ],
)
def test_restamped_evidence_hashes_equal(restamped: str) -> None:
    assert hash_evidence(restamped) == hash_evidence("runtime down at")


ARABIC_INDIC_DIGITS = str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10)))


@pytest.mark.parametrize(
    "evidence",
    [
        pytest.param(
            "runtime down at 2026-05-31T12:00:00Z".translate(ARABIC_INDIC_DIGITS),
            id="non-ascii-digits-kept",
        ),
        pytest.param("runtime down at 178022880", id="nine-digits-kept"),
        pytest.param("runtime down at x1780228800", id="epoch-inside-a-word-kept"),
        pytest.param("runtime down at\x1c", id="go-non-space-kept"),
        pytest.param("runtime up at", id="different-words"),
    ],
)
def test_evidence_that_is_not_a_restamp_hashes_differently(evidence: str) -> None:
    assert hash_evidence(evidence) != hash_evidence("runtime down at")


def test_go_whitespace_is_collapsed() -> None:
    assert hash_evidence("runtime\u00a0down\u3000at\x85") == hash_evidence("runtime down at")


# --- resolve_probe_decision ---------------------------------------------------------------


def _terminated(evidence: str, reason: TerminationReason) -> LifecycleDecision:
    return LifecycleDecision(
        evidence=evidence,
        state=SessionState.TERMINATED,
        termination_reason=reason,
        is_alive=False,
        detecting=None,
    )


def _working(evidence: str) -> LifecycleDecision:
    return LifecycleDecision(
        evidence=evidence,
        state=SessionState.WORKING,
        termination_reason=TerminationReason.NONE,
        is_alive=True,
        detecting=None,
    )


PROBE_RULES = [
    # The 11 cases of the Go TestResolveProbeDecision.
    pytest.param(
        probe_inputs(kill_requested=True, kill_reason=TerminationReason.AUTO_CLEANUP),
        _terminated("manual kill requested", TerminationReason.AUTO_CLEANUP),
        id="1-kill-with-reason",
    ),
    pytest.param(
        probe_inputs(kill_requested=True),
        _terminated("manual kill requested", TerminationReason.MANUALLY_KILLED),
        id="1-kill-without-reason",
    ),
    pytest.param(
        probe_inputs(runtime_failed=True, process=ProcessVerdict.INDETERMINATE),
        detecting("probe_failed runtimeFailed=true process=indeterminate processFailed=false"),
        id="2-runtime-failed",
    ),
    pytest.param(
        probe_inputs(runtime_alive=True, process=ProcessVerdict.INDETERMINATE, process_failed=True),
        detecting("probe_failed runtimeFailed=false process=indeterminate processFailed=true"),
        id="2-process-failed",
    ),
    pytest.param(
        probe_inputs(runtime_alive=True, process=ProcessVerdict.ALIVE),
        _working("alive runtime=alive process=alive"),
        id="4-alive-alive",
    ),
    pytest.param(
        probe_inputs(runtime_alive=True, process=ProcessVerdict.INDETERMINATE),
        _working("alive runtime=alive process=indeterminate"),
        id="4-alive-indeterminate",
    ),
    pytest.param(
        probe_inputs(runtime_alive=True, process=ProcessVerdict.DEAD),
        _terminated(
            "exited runtime=alive process=dead recentActivity=false",
            TerminationReason.AGENT_PROCESS_EXITED,
        ),
        id="3-alive-dead",
    ),
    pytest.param(
        probe_inputs(),
        _terminated(
            "dead runtime=down process=dead recentActivity=false",
            TerminationReason.RUNTIME_LOST,
        ),
        id="6-down-dead-quiet",
    ),
    pytest.param(
        probe_inputs(process=ProcessVerdict.ALIVE),
        detecting("disagree runtime=down process=alive recentActivity=false"),
        id="5-down-alive",
    ),
    pytest.param(
        probe_inputs(recent_activity=True),
        _terminated(
            "dead runtime=down process=dead recentActivity=true", TerminationReason.RUNTIME_LOST
        ),
        id="5-down-dead-recent",  # D-12: the runtime's word beats recent activity
    ),
    pytest.param(
        probe_inputs(process=ProcessVerdict.INDETERMINATE),
        detecting("runtime_lost runtime=down process=indeterminate recentActivity=false"),
        id="7-down-indeterminate",
    ),
    # Precedence and the remaining evidence spellings.
    pytest.param(
        probe_inputs(kill_requested=True, runtime_failed=True, runtime_alive=True),
        _terminated("manual kill requested", TerminationReason.MANUALLY_KILLED),
        id="1-kill-beats-everything",
    ),
    pytest.param(
        probe_inputs(
            runtime_failed=True, process=ProcessVerdict.INDETERMINATE, process_failed=True
        ),
        detecting(FAILED_EVIDENCE),
        id="2-both-failed",
    ),
    pytest.param(
        probe_inputs(runtime_failed=True, process=ProcessVerdict.DEAD, recent_activity=True),
        detecting("probe_failed runtimeFailed=true process=dead processFailed=false"),
        id="2-failure-beats-disagreement",
    ),
    pytest.param(
        probe_inputs(runtime_alive=True, process=ProcessVerdict.DEAD, recent_activity=True),
        _terminated(
            "exited runtime=alive process=dead recentActivity=true",
            TerminationReason.AGENT_PROCESS_EXITED,
        ),
        id="3-alive-dead-recent",
    ),
    pytest.param(
        probe_inputs(runtime_alive=True, process=ProcessVerdict.ALIVE, recent_activity=True),
        _working("alive runtime=alive process=alive"),
        id="4-recent-activity-not-in-evidence",
    ),
    pytest.param(
        probe_inputs(process=ProcessVerdict.ALIVE, recent_activity=True),
        detecting("disagree runtime=down process=alive recentActivity=true"),
        id="5-down-alive-recent",
    ),
    pytest.param(
        probe_inputs(process=ProcessVerdict.INDETERMINATE, recent_activity=True),
        detecting("disagree runtime=down process=indeterminate recentActivity=true"),
        id="5-down-indeterminate-recent",
    ),
]


@pytest.mark.parametrize(("inp", "expected"), PROBE_RULES)
def test_resolve_probe_decision(inp: ProbeInput, expected: LifecycleDecision) -> None:
    assert resolve_probe_decision(inp) == expected


def test_probe_decision_carries_the_prior_episode() -> None:
    prior = DetectingState(
        attempts=1, started_at=at(-5), evidence_hash=hash_evidence(UNSURE_RECENT_EVIDENCE)
    )
    unsure = probe_inputs(process=ProcessVerdict.INDETERMINATE, recent_activity=True, prior=prior)
    decision = resolve_probe_decision(unsure)
    assert decision == detecting(UNSURE_RECENT_EVIDENCE, attempts=2, started_at=at(-5))


def test_a_dead_reading_ends_an_episode_in_progress() -> None:
    """D-12: a quarantine that began on readings that could not tell does not hold back a
    reading that can."""
    prior = DetectingState(
        attempts=2, started_at=at(-5), evidence_hash=hash_evidence(DEAD_RECENT_EVIDENCE)
    )
    decision = resolve_probe_decision(probe_inputs(recent_activity=True, prior=prior))
    assert decision == _terminated(
        "dead runtime=down process=dead recentActivity=true", TerminationReason.RUNTIME_LOST
    )


def test_probe_detecting_escalation_flow() -> None:
    """Go TestProbeDetectingEscalationFlow: down/indeterminate escalates over ticks."""
    evidence = "runtime_lost runtime=down process=indeterminate recentActivity=false"
    prior: DetectingState | None = None
    decisions = []
    for tick in range(3):
        inp = probe_inputs(process=ProcessVerdict.INDETERMINATE, prior=prior, now=at(5 * tick))
        decision = resolve_probe_decision(inp)
        decisions.append(decision)
        prior = decision.detecting
    assert decisions == [detecting(evidence, 1), detecting(evidence, 2), stuck(evidence)]


# --- create_detecting_decision ------------------------------------------------------------

OTHER_EVIDENCE = "disagree runtime=alive process=dead recentActivity=false"


def prior_episode(attempts: int, evidence: str = FAILED_EVIDENCE) -> DetectingState:
    return DetectingState(attempts=attempts, started_at=T0, evidence_hash=hash_evidence(evidence))


@pytest.mark.parametrize(
    ("prior", "now", "expected"),
    [
        pytest.param(None, at(7), detecting(FAILED_EVIDENCE, 1, at(7)), id="first-entry"),
        pytest.param(
            prior_episode(1), at(5), detecting(FAILED_EVIDENCE, 2), id="same-evidence-counts"
        ),
        pytest.param(
            prior_episode(2, OTHER_EVIDENCE),
            at(10),
            detecting(FAILED_EVIDENCE, 1, started_at=T0),
            id="changed-evidence-resets-count-keeps-started-at",
        ),
        pytest.param(prior_episode(2), at(10), stuck(FAILED_EVIDENCE), id="attempt-cap"),
        pytest.param(prior_episode(7), at(10), stuck(FAILED_EVIDENCE), id="beyond-attempt-cap"),
        pytest.param(
            prior_episode(1, OTHER_EVIDENCE),
            T0 + DETECTING_MAX_DURATION - timedelta(microseconds=1),
            detecting(FAILED_EVIDENCE, 1, started_at=T0),
            id="duration-cap-not-yet",
        ),
        pytest.param(
            prior_episode(1, OTHER_EVIDENCE),
            T0 + DETECTING_MAX_DURATION,
            stuck(FAILED_EVIDENCE),
            id="duration-cap-inclusive-at-5min",
        ),
        pytest.param(
            prior_episode(1, OTHER_EVIDENCE),
            T0 + DETECTING_MAX_DURATION + timedelta(seconds=1),
            stuck(FAILED_EVIDENCE),
            id="duration-cap-5min-plus-1s",
        ),
    ],
)
def test_create_detecting_decision(
    prior: DetectingState | None, now: datetime, expected: LifecycleDecision
) -> None:
    assert create_detecting_decision(FAILED_EVIDENCE, prior, now) == expected


def test_restamped_evidence_continues_the_episode() -> None:
    first = create_detecting_decision("runtime down at 2026-05-31T12:00:00Z", None, T0)
    second = create_detecting_decision(
        "runtime down at 2026-05-31T12:00:05Z", first.detecting, at(5)
    )
    assert second.detecting is not None
    assert second.detecting.attempts == 2


def test_constants() -> None:
    constants = (DETECTING_MAX_ATTEMPTS, DETECTING_MAX_DURATION, RECENT_ACTIVITY_WINDOW)
    assert constants == (3, timedelta(minutes=5), timedelta(seconds=60))


# --- the bridge ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("act", "expected"),
    [
        pytest.param(None, False, id="no-activity"),
        pytest.param(activity(ActivityState.EXITED), False, id="exited-just-now"),
        pytest.param(activity(ActivityState.ACTIVE), True, id="active-now"),
        pytest.param(activity(ActivityState.ACTIVE, -60), True, id="active-60s-inclusive"),
        pytest.param(
            Activity(
                state=ActivityState.ACTIVE,
                last_activity_at=at(-60) - timedelta(microseconds=1),
            ),
            False,
            id="active-just-over-60s",
        ),
        pytest.param(activity(ActivityState.READY, -30), True, id="ready-30s"),
        pytest.param(activity(ActivityState.IDLE, -61), False, id="idle-61s"),
        pytest.param(activity(ActivityState.WAITING_INPUT, -60), True, id="waiting-60s"),
        pytest.param(activity(ActivityState.WAITING_INPUT, -61), False, id="waiting-61s-D8"),
        pytest.param(activity(ActivityState.BLOCKED, -60), True, id="blocked-60s"),
        pytest.param(activity(ActivityState.BLOCKED, -3600), False, id="blocked-1h-D8"),
        pytest.param(activity(ActivityState.ACTIVE, 30), True, id="future-timestamp"),
    ],
)
def test_has_recent_activity(act: Activity | None, expected: bool) -> None:
    assert has_recent_activity(act, T0) is expected


def test_has_recent_activity_custom_window() -> None:
    act = activity(ActivityState.ACTIVE, -10)
    assert has_recent_activity(act, T0, window=timedelta(seconds=10))
    assert not has_recent_activity(act, T0, window=timedelta(seconds=9))


@pytest.mark.parametrize(
    ("runtime", "runtime_alive", "runtime_failed"),
    [(ALIVE, True, False), (FAILED, False, True), (UNKNOWN, False, True), (DEAD, False, False)],
    ids=str,
)
def test_probe_input_runtime_mapping(
    runtime: ProbeResult, runtime_alive: bool, runtime_failed: bool
) -> None:
    inp = probe_input(session(SessionState.WORKING), probe(runtime, DEAD))
    assert (inp.runtime_alive, inp.runtime_failed) == (runtime_alive, runtime_failed)


@pytest.mark.parametrize(
    ("process", "verdict", "process_failed"),
    [
        (ALIVE, ProcessVerdict.ALIVE, False),
        (DEAD, ProcessVerdict.DEAD, False),
        (FAILED, ProcessVerdict.INDETERMINATE, True),
        (UNKNOWN, ProcessVerdict.INDETERMINATE, False),
    ],
    ids=str,
)
def test_probe_input_process_mapping(
    process: ProbeResult, verdict: ProcessVerdict, process_failed: bool
) -> None:
    inp = probe_input(session(SessionState.WORKING), probe(ALIVE, process))
    assert (inp.process, inp.process_failed) == (verdict, process_failed)


def test_mapping_tables_cover_every_probe_result() -> None:
    assert set(ProbeResult) == {ALIVE, DEAD, FAILED, UNKNOWN}


def test_probe_input_takes_now_prior_and_recent_activity_from_the_session() -> None:
    lc = session(SessionState.DETECTING, activity=activity(ActivityState.ACTIVE, 5))
    inp = probe_input(lc, probe(DEAD, DEAD, 65))
    assert inp == ProbeInput(
        runtime_alive=False,
        runtime_failed=False,
        process=ProcessVerdict.DEAD,
        process_failed=False,
        recent_activity=True,
        prior=lc.detecting,
        now=at(65),
    )
    assert not probe_input(lc, probe(DEAD, DEAD, 66)).recent_activity


# --- activity table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("act", "target"),
    [
        (ActivityState.ACTIVE, SessionState.WORKING),
        (ActivityState.READY, SessionState.IDLE),
        (ActivityState.IDLE, SessionState.IDLE),
        (ActivityState.WAITING_INPUT, SessionState.NEEDS_INPUT),
        (ActivityState.BLOCKED, SessionState.STUCK),
        (ActivityState.EXITED, None),
    ],
    ids=str,
)
def test_activity_signal_moves_the_state_it_implies(
    act: ActivityState, target: SessionState | None
) -> None:
    # ``exited`` implies no state: only the probe pipeline may conclude death.
    after = on_activity_signalled(session(SessionState.NOT_STARTED), signal(act)).after
    assert after.state is (target or SessionState.NOT_STARTED)
    assert after.activity == activity(act)


# --- Transition ---------------------------------------------------------------------------


def test_transition_without_change() -> None:
    lc = session(SessionState.WORKING)
    step = transition(lc, replace(lc))
    assert step.changed == frozenset()
    assert not step.is_changed


FIELD_CHANGES = [
    ("state", SessionState.IDLE),
    ("termination_reason", TerminationReason.PR_MERGED),
    ("is_alive", False),
    ("activity", activity(ActivityState.ACTIVE)),
    ("harness", AgentHarness.CODEX),
    ("detecting", prior_episode(1)),
]


def test_transition_covers_every_lifecycle_field() -> None:
    # transition() compares field by field: a new Lifecycle field must be taught to it.
    assert [name for name, _ in FIELD_CHANGES] == list(Lifecycle.__struct_fields__)
    lc = session(SessionState.WORKING)
    assert transition(lc, replace(lc, **dict(FIELD_CHANGES))).changed == {
        name for name, _ in FIELD_CHANGES
    }


@pytest.mark.parametrize(("field", "value"), FIELD_CHANGES, ids=[f for f, _ in FIELD_CHANGES])
def test_transition_names_each_changed_field(field: str, value: object) -> None:
    lc = session(SessionState.WORKING)
    step = transition(lc, replace(lc, **{field: value}))
    assert step.changed == {field}
    assert step.is_changed
    assert (step.before, step.after) == (lc, replace(lc, **{field: value}))


def test_transition_compares_activity_timestamps_by_instant() -> None:
    lc = session(SessionState.WORKING, activity=activity(ActivityState.ACTIVE))
    same_instant = Activity(
        state=ActivityState.ACTIVE,
        last_activity_at=T0.astimezone(timezone(timedelta(hours=2))),
        source=ActivitySource.HOOK,
    )
    assert not transition(lc, replace(lc, activity=same_instant)).is_changed


# --- the cheat sheet, as it stands after D-7, D-8 and D-9 ---------------------------------

RECENT_ACTIVE = activity(ActivityState.ACTIVE, -10)
STALE_WAITING = activity(ActivityState.WAITING_INPUT, -120)

PROBE_ALIVE_ROW = [
    (SessionState.NOT_STARTED, SessionState.NOT_STARTED),
    (SessionState.WORKING, SessionState.WORKING),
    (SessionState.IDLE, SessionState.IDLE),
    (SessionState.NEEDS_INPUT, SessionState.NEEDS_INPUT),
    (SessionState.STUCK, SessionState.WORKING),  # D-9 (the Go backend: stays stuck)
    (SessionState.DETECTING, SessionState.WORKING),
]


@pytest.mark.parametrize(("state", "expected"), PROBE_ALIVE_ROW, ids=str)
def test_cheat_sheet_probe_alive(state: SessionState, expected: SessionState) -> None:
    after = on_runtime_observed(session(state, is_alive=False), probe(ALIVE, ALIVE)).after
    assert after == session(expected, is_alive=True, detecting=None)


@pytest.mark.parametrize("state", LIVE_STATES, ids=str)
@pytest.mark.parametrize(
    "act",
    [None, STALE_WAITING, activity(ActivityState.BLOCKED, -61)],
    ids=["no-activity", "stale-waiting", "stale-blocked"],
)
def test_cheat_sheet_probe_dead_without_recent_activity(
    state: SessionState, act: Activity | None
) -> None:
    _assert_probe_dead_terminates(state, act)


@pytest.mark.parametrize("state", LIVE_STATES, ids=str)
@pytest.mark.parametrize(
    "act",
    [RECENT_ACTIVE, activity(ActivityState.WAITING_INPUT, -1), activity(ActivityState.BLOCKED)],
    ids=["recent-active", "recent-waiting", "recent-blocked"],
)
def test_cheat_sheet_probe_dead_with_recent_activity(
    state: SessionState, act: Activity | None
) -> None:
    """D-12: the Go backend quarantined these (stuck page first, exited page a minute
    later); the runtime's word that the agent is gone now ends the session at once."""
    _assert_probe_dead_terminates(state, act)


def _assert_probe_dead_terminates(state: SessionState, act: Activity | None) -> None:
    lc = session(state, activity=act)
    after = on_runtime_observed(lc, probe(DEAD, DEAD)).after
    assert after == replace(
        lc,
        state=SessionState.TERMINATED,
        termination_reason=TerminationReason.RUNTIME_LOST,
        is_alive=False,
        detecting=None,
    )


AMBIGUOUS_PROBES = [
    pytest.param(probe(FAILED, FAILED), None, FAILED_EVIDENCE, id="failed"),
    # Was probe(DEAD, DEAD) with recent activity; that is death now (D-12). A reading that
    # cannot tell still quarantines, recent activity or not.
    pytest.param(probe(DEAD, UNKNOWN), RECENT_ACTIVE, UNSURE_RECENT_EVIDENCE, id="unsure-recent"),
]


@pytest.mark.parametrize(
    "state",
    [SessionState.NOT_STARTED, SessionState.WORKING, SessionState.IDLE, SessionState.NEEDS_INPUT],
    ids=str,
)
@pytest.mark.parametrize(("facts", "act", "evidence"), AMBIGUOUS_PROBES)
def test_cheat_sheet_ambiguous_probe_quarantines(
    state: SessionState, facts: RuntimeFacts, act: Activity | None, evidence: str
) -> None:
    lc = session(state, activity=act)
    after = on_runtime_observed(lc, facts).after
    assert after == replace(
        lc,
        state=SessionState.DETECTING,
        is_alive=True,
        detecting=DetectingState(attempts=1, started_at=T0, evidence_hash=hash_evidence(evidence)),
    )


@pytest.mark.parametrize(("facts", "act", "evidence"), AMBIGUOUS_PROBES)
def test_cheat_sheet_ambiguous_probe_leaves_stuck_alone(
    facts: RuntimeFacts, act: Activity | None, evidence: str
) -> None:
    """D-9: the Go backend opened a fresh episode here (detecting(1)) and re-paged later."""
    lc = session(SessionState.STUCK, activity=act)
    assert resolve_probe_decision(probe_input(lc, facts)) == detecting(evidence)
    step = on_runtime_observed(lc, facts)
    assert step.after == lc
    assert not step.is_changed


@pytest.mark.parametrize(
    ("attempts", "expected_attempts"), [(1, 2), (2, None)], ids=["counts", "escalates"]
)
@pytest.mark.parametrize(("facts", "act", "evidence"), AMBIGUOUS_PROBES)
def test_cheat_sheet_ambiguous_probe_on_detecting(
    attempts: int,
    expected_attempts: int | None,
    facts: RuntimeFacts,
    act: Activity | None,
    evidence: str,
) -> None:
    memory = DetectingState(
        attempts=attempts, started_at=at(-10), evidence_hash=hash_evidence(evidence)
    )
    lc = session(SessionState.DETECTING, activity=act, detecting=memory)
    after = on_runtime_observed(lc, facts).after
    if expected_attempts is None:
        assert after == replace(lc, state=SessionState.STUCK, detecting=None)
    else:
        assert after == replace(lc, detecting=replace(memory, attempts=expected_attempts))


@pytest.mark.parametrize("state", LIVE_STATES, ids=str)
@pytest.mark.parametrize(
    ("signalled", "expected"),
    [
        (ActivityState.ACTIVE, SessionState.WORKING),
        (ActivityState.READY, SessionState.IDLE),
        (ActivityState.IDLE, SessionState.IDLE),
        (ActivityState.WAITING_INPUT, SessionState.NEEDS_INPUT),
        (ActivityState.BLOCKED, SessionState.STUCK),
    ],
    ids=str,
)
def test_cheat_sheet_activity(
    state: SessionState, signalled: ActivityState, expected: SessionState
) -> None:
    lc = session(state, is_alive=False)
    after = on_activity_signalled(lc, signal(signalled)).after
    assert after == replace(
        lc,
        state=expected,
        is_alive=True,
        detecting=None,
        activity=Activity(state=signalled, last_activity_at=T0, source=ActivitySource.HOOK),
    )


@pytest.mark.parametrize("state", LIVE_STATES, ids=str)
def test_cheat_sheet_pr_merged(state: SessionState) -> None:
    lc = session(state, activity=RECENT_ACTIVE)
    after = on_pr_observed(lc, PRObservation(url=PR_URL, merged=True)).after
    assert after == replace(
        lc,
        state=SessionState.TERMINATED,
        termination_reason=TerminationReason.PR_MERGED,
        is_alive=False,
        detecting=None,
    )


@pytest.mark.parametrize("state", LIVE_STATES, ids=str)
def test_cheat_sheet_kill(state: SessionState) -> None:
    lc = session(state, activity=RECENT_ACTIVE)
    after = on_kill_requested(lc).after
    assert after == replace(
        lc,
        state=SessionState.TERMINATED,
        termination_reason=TerminationReason.MANUALLY_KILLED,
        is_alive=False,
        detecting=None,
    )


TERMINAL_EVENTS: list[Any] = [
    pytest.param(lambda lc: on_runtime_observed(lc, probe(ALIVE, ALIVE)), id="probe-alive"),
    pytest.param(lambda lc: on_runtime_observed(lc, probe(DEAD, DEAD)), id="probe-dead"),
    pytest.param(lambda lc: on_runtime_observed(lc, probe(FAILED, FAILED)), id="probe-failed"),
    pytest.param(lambda lc: on_activity_signalled(lc, signal(ActivityState.ACTIVE)), id="act"),
    pytest.param(
        lambda lc: on_pr_observed(lc, PRObservation(url=PR_URL, merged=True)), id="pr-merged"
    ),
    pytest.param(lambda lc: on_kill_requested(lc), id="kill"),
    pytest.param(lambda lc: on_detecting_timeout(lc, at(3600)), id="detecting-timeout"),
]


@pytest.mark.parametrize("state", TERMINAL_STATES, ids=str)
@pytest.mark.parametrize("event", TERMINAL_EVENTS)
def test_cheat_sheet_terminal_row_is_immutable(
    state: SessionState, event: Callable[[Lifecycle], Transition]
) -> None:
    lc = session(state, activity=RECENT_ACTIVE)
    step = event(lc)
    assert step.after == lc
    assert not step.is_changed


# --- on_runtime_observed details ----------------------------------------------------------


def test_healthy_probe_marks_a_not_started_session_alive_without_moving_it() -> None:
    lc = Lifecycle()
    step = on_runtime_observed(lc, probe(ALIVE, UNKNOWN))
    assert step.after == Lifecycle(is_alive=True)
    assert step.changed == {"is_alive"}


def test_healthy_probe_recovers_detecting_and_clears_memory() -> None:
    lc = session(SessionState.DETECTING)
    step = on_runtime_observed(lc, probe(ALIVE, ALIVE))
    assert step.after == replace(lc, state=SessionState.WORKING, detecting=None)
    assert step.changed == {"state", "detecting"}


def test_failed_probes_on_working_quarantine_then_escalate() -> None:
    lc = session(SessionState.WORKING)
    states = []
    for tick in range(4):
        lc = on_runtime_observed(lc, probe(FAILED, FAILED, 5 * tick)).after
        states.append((lc.state, lc.detecting.attempts if lc.detecting else None))
    assert states == [
        (SessionState.DETECTING, 1),
        (SessionState.DETECTING, 2),
        (SessionState.STUCK, None),
        (SessionState.STUCK, None),
    ]


def test_dead_runtime_with_unknown_process_quarantines() -> None:
    after = on_runtime_observed(session(SessionState.WORKING), probe(DEAD, UNKNOWN)).after
    assert after.state is SessionState.DETECTING


@pytest.mark.parametrize("facts", [probe(ALIVE, ALIVE), probe(DEAD, DEAD), probe(FAILED, DEAD)])
def test_probes_never_touch_activity_or_harness(facts: RuntimeFacts) -> None:
    lc = session(SessionState.WORKING, activity=RECENT_ACTIVE)
    after = on_runtime_observed(lc, facts).after
    assert (after.activity, after.harness) == (lc.activity, lc.harness)


# --- on_activity_signalled details --------------------------------------------------------


@pytest.mark.parametrize("state", list(SessionState), ids=str)
def test_invalid_activity_signal_is_ignored(state: SessionState) -> None:
    lc = session(state, is_alive=False)
    step = on_activity_signalled(lc, signal(ActivityState.ACTIVE, valid=False))
    assert step.after == lc
    assert not step.is_changed


@pytest.mark.parametrize("state", LIVE_STATES, ids=str)
def test_exited_signal_records_activity_only(state: SessionState) -> None:
    lc = session(state, is_alive=False)
    step = on_activity_signalled(lc, signal(ActivityState.EXITED, source=ActivitySource.NATIVE))
    assert step.after == replace(
        lc,
        activity=Activity(
            state=ActivityState.EXITED, last_activity_at=T0, source=ActivitySource.NATIVE
        ),
    )
    assert step.changed == {"activity"}


def test_repeated_signal_changes_nothing_and_a_new_timestamp_changes_activity() -> None:
    lc = on_activity_signalled(session(SessionState.WORKING), signal(ActivityState.ACTIVE)).after
    assert not on_activity_signalled(lc, signal(ActivityState.ACTIVE)).is_changed
    step = on_activity_signalled(lc, signal(ActivityState.ACTIVE, 1))
    assert step.changed == {"activity"}
    assert step.after.activity == activity(ActivityState.ACTIVE, 1)


def test_signal_source_is_kept() -> None:
    step = on_activity_signalled(
        Lifecycle(), signal(ActivityState.IDLE, source=ActivitySource.TERMINAL)
    )
    assert step.after.activity is not None
    assert step.after.activity.source is ActivitySource.TERMINAL


def test_activity_acknowledges_a_spawn() -> None:
    step = on_activity_signalled(Lifecycle(), signal(ActivityState.ACTIVE))
    assert step.after.state is SessionState.WORKING
    assert step.after.is_alive
    assert step.changed == {"state", "is_alive", "activity"}


# --- on_pr_observed details ---------------------------------------------------------------


@pytest.mark.parametrize(
    "observation",
    [
        pytest.param(PRObservation(url=PR_URL, merged=True, fetched=False), id="failed-fetch"),
        pytest.param(PRObservation(url=PR_URL), id="open"),
        pytest.param(PRObservation(url=PR_URL, draft=True), id="draft"),
        pytest.param(PRObservation(url=PR_URL, closed=True), id="closed"),
        pytest.param(
            PRObservation(
                url=PR_URL,
                ci=CIState.FAILING,
                review=ReviewDecision.APPROVED,
                mergeability=Mergeability.MERGEABLE,
            ),
            id="open-with-signals",
        ),
    ],
)
def test_unmerged_or_failed_pr_observation_changes_nothing(observation: PRObservation) -> None:
    lc = session(SessionState.WORKING)
    assert on_pr_observed(lc, observation).after == lc


def test_merged_and_closed_pr_still_terminates() -> None:
    step = on_pr_observed(
        session(SessionState.IDLE), PRObservation(url=PR_URL, merged=True, closed=True)
    )
    assert step.after.termination_reason is TerminationReason.PR_MERGED


# --- on_spawn_completed -------------------------------------------------------------------

STORED_METADATA = SessionMetadata(branch="feat/x", workspace_path="/w/x", prompt="do x")
OUTCOME = SpawnOutcome(runtime_handle_id="%3", runtime_name="tmux", branch="feat/y")
MERGED_METADATA = SessionMetadata(
    branch="feat/y",
    workspace_path="/w/x",
    runtime_handle_id="%3",
    runtime_name="tmux",
    prompt="do x",
)


def test_spawn_completed_fresh_spawn_goes_live() -> None:
    step, metadata = on_spawn_completed(Lifecycle(), STORED_METADATA, OUTCOME)
    assert step.after == Lifecycle(is_alive=True)
    assert metadata == MERGED_METADATA


def test_spawn_completed_clears_stale_memory_on_not_started() -> None:
    lc = Lifecycle(detecting=prior_episode(1))
    step, _ = on_spawn_completed(lc, STORED_METADATA, OUTCOME)
    assert step.after == Lifecycle(is_alive=True)


@pytest.mark.parametrize("state", TERMINAL_STATES, ids=str)
def test_spawn_completed_restores_a_terminal_session_fresh(state: SessionState) -> None:
    lc = session(
        state,
        activity=activity(ActivityState.WAITING_INPUT, -3600),
        detecting=prior_episode(2),
    )
    step, metadata = on_spawn_completed(lc, STORED_METADATA, OUTCOME)
    assert step.after == Lifecycle(
        state=SessionState.NOT_STARTED, is_alive=True, harness=lc.harness
    )
    assert metadata == MERGED_METADATA


@pytest.mark.parametrize(
    "state",
    [s for s in LIVE_STATES if s is not SessionState.NOT_STARTED],
    ids=str,
)
def test_spawn_completed_after_the_agent_already_reported_keeps_its_state(
    state: SessionState,
) -> None:
    lc = session(state, is_alive=False, activity=RECENT_ACTIVE)
    step, _ = on_spawn_completed(lc, STORED_METADATA, OUTCOME)
    assert step.after == replace(lc, is_alive=True)


# --- on_kill_requested --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "expected"),
    [(TerminationReason.NONE, TerminationReason.MANUALLY_KILLED)]
    + [(r, r) for r in TerminationReason if r is not TerminationReason.NONE],
    ids=lambda value: str(value) or "none",
)
def test_kill_reason(reason: TerminationReason, expected: TerminationReason) -> None:
    step = on_kill_requested(session(SessionState.DETECTING), reason)
    assert step.after.termination_reason is expected
    assert step.changed == {"state", "termination_reason", "is_alive", "detecting"}


def test_kill_on_terminal_keeps_the_first_reason() -> None:
    killed = on_kill_requested(session(SessionState.WORKING), TerminationReason.AUTO_CLEANUP).after
    again = on_kill_requested(killed, TerminationReason.PROBE_FAILURE)
    assert again.after.termination_reason is TerminationReason.AUTO_CLEANUP
    assert not again.is_changed


# --- detecting timeout --------------------------------------------------------------------


def test_detecting_deadline() -> None:
    lc = session(SessionState.DETECTING)
    assert lc.detecting is not None
    assert detecting_deadline(lc) == lc.detecting.started_at + DETECTING_MAX_DURATION


@pytest.mark.parametrize(
    "lc",
    [
        pytest.param(session(SessionState.WORKING), id="working"),
        pytest.param(session(SessionState.DETECTING, detecting=None), id="detecting-no-memory"),
        pytest.param(
            session(SessionState.STUCK, detecting=prior_episode(1)), id="stuck-stale-memory"
        ),
        pytest.param(session(SessionState.TERMINATED), id="terminated"),
    ],
)
def test_no_deadline_outside_a_detecting_episode(lc: Lifecycle) -> None:
    assert detecting_deadline(lc) is None
    assert not on_detecting_timeout(lc, at(86_400)).is_changed


@pytest.mark.parametrize(
    ("offset", "escalates"),
    [
        pytest.param(-timedelta(microseconds=1), False, id="just-before"),
        pytest.param(timedelta(0), True, id="at-deadline"),
        pytest.param(timedelta(seconds=1), True, id="after"),
    ],
)
def test_detecting_timeout(offset: timedelta, escalates: bool) -> None:
    lc = session(SessionState.DETECTING)
    deadline = detecting_deadline(lc)
    assert deadline is not None
    step = on_detecting_timeout(lc, deadline + offset)
    if escalates:
        assert step.after == replace(lc, state=SessionState.STUCK, detecting=None)
    else:
        assert not step.is_changed


# --- decisions that differ from the Go backend --------------------------------------------


def test_d7_terminal_session_ignores_observations() -> None:
    """The Go backend: a probe flipped is_alive back on a terminated row and re-paged."""
    lc = session(SessionState.TERMINATED, activity=RECENT_ACTIVE)
    assert not lc.is_alive
    assert on_runtime_observed(lc, probe(ALIVE, ALIVE)).after == lc
    assert on_activity_signalled(lc, signal(ActivityState.ACTIVE)).after == lc
    assert on_pr_observed(lc, PRObservation(url=PR_URL, merged=True)).after == lc


@pytest.mark.parametrize(
    ("state", "sticky"),
    [
        (SessionState.NEEDS_INPUT, ActivityState.WAITING_INPUT),
        (SessionState.STUCK, ActivityState.BLOCKED),
    ],
    ids=str,
)
def test_d8_dead_probe_beats_stale_sticky_activity(
    state: SessionState, sticky: ActivityState
) -> None:
    """The Go backend: sticky activity counted as recent forever, so dead/dead never
    terminated. Now a dead reading ends the session within the 60 s window too (D-12)."""
    lc = session(state, activity=activity(sticky))
    within = on_runtime_observed(lc, probe(DEAD, DEAD, 60)).after
    assert within.state is SessionState.TERMINATED
    assert within.termination_reason is TerminationReason.RUNTIME_LOST
    assert not within.is_alive
    beyond = on_runtime_observed(lc, probe(DEAD, DEAD, 61)).after
    assert beyond.state is SessionState.TERMINATED
    assert beyond.termination_reason is TerminationReason.RUNTIME_LOST
    assert not beyond.is_alive


def test_d8_within_the_window_needs_input_quarantines_a_reading_that_cannot_tell() -> None:
    lc = session(SessionState.NEEDS_INPUT, activity=activity(ActivityState.WAITING_INPUT))
    after = on_runtime_observed(lc, probe(DEAD, UNKNOWN, 60)).after
    assert after.state is SessionState.DETECTING
    assert after.detecting == DetectingState(
        attempts=1, started_at=at(60), evidence_hash=hash_evidence(UNSURE_RECENT_EVIDENCE)
    )


def test_agent_exited_in_an_open_pane_ends_the_session() -> None:
    """Runtime alive, process dead (tmux remain-on-exit) is certain death, not the probes
    disagreeing (the Go backend sent it to detecting forever-ish): the session ends
    ``agent_process_exited``."""
    lc = session(SessionState.WORKING, activity=activity(ActivityState.ACTIVE))
    after = on_runtime_observed(lc, probe(ALIVE, DEAD, 61)).after
    assert after.state is SessionState.TERMINATED
    assert after.termination_reason is TerminationReason.AGENT_PROCESS_EXITED
    assert not after.is_alive
    assert after.detecting is None


def test_agent_exited_right_after_reporting_still_ends_the_session() -> None:
    """D-12: this was quarantined while the report was under 60 s old."""
    lc = session(SessionState.WORKING, activity=activity(ActivityState.ACTIVE))
    after = on_runtime_observed(lc, probe(ALIVE, DEAD, 30)).after
    assert after.state is SessionState.TERMINATED
    assert after.termination_reason is TerminationReason.AGENT_PROCESS_EXITED
    assert not after.is_alive


def test_d9_failed_probes_stay_stuck_without_flapping() -> None:
    """The Go backend: detecting(1), detecting(2), stuck, detecting(1), … with a page on
    every stuck entry. Now stuck holds, and each further probe is a no-op (no new page)."""
    lc = session(SessionState.WORKING)
    seen = []
    changed = []
    for tick in range(7):
        step = on_runtime_observed(lc, probe(FAILED, FAILED, 5 * tick))
        lc = step.after
        seen.append((lc.state, lc.detecting.attempts if lc.detecting else None))
        changed.append(step.is_changed)
    assert seen == [
        (SessionState.DETECTING, 1),
        (SessionState.DETECTING, 2),
        (SessionState.STUCK, None),
        (SessionState.STUCK, None),
        (SessionState.STUCK, None),
        (SessionState.STUCK, None),
        (SessionState.STUCK, None),
    ]
    assert changed == [True, True, True, False, False, False, False]


def test_d9_healthy_probe_recovers_quarantine_stuck() -> None:
    lc = session(SessionState.WORKING)
    for tick in range(3):
        lc = on_runtime_observed(lc, probe(FAILED, FAILED, 5 * tick)).after
    assert lc.state is SessionState.STUCK
    step = on_runtime_observed(lc, probe(ALIVE, ALIVE, 15))
    assert step.after == replace(lc, state=SessionState.WORKING)
    assert step.changed == {"state"}


def test_d9_healthy_probe_does_not_recover_an_agent_that_says_it_is_blocked() -> None:
    lc = on_activity_signalled(session(SessionState.WORKING), signal(ActivityState.BLOCKED)).after
    assert lc.state is SessionState.STUCK
    step = on_runtime_observed(lc, probe(ALIVE, ALIVE, 5))
    assert step.after == lc
    assert not step.is_changed


def test_d9_dead_probe_terminates_stuck() -> None:
    lc = session(SessionState.STUCK)
    after = on_runtime_observed(lc, probe(DEAD, DEAD)).after
    assert after == replace(
        lc,
        state=SessionState.TERMINATED,
        termination_reason=TerminationReason.RUNTIME_LOST,
        is_alive=False,
    )


def test_d9_activity_signal_recovers_stuck() -> None:
    lc = session(SessionState.STUCK)
    after = on_activity_signalled(lc, signal(ActivityState.ACTIVE)).after
    assert after.state is SessionState.WORKING


def test_quirk5_active_agent_dies_at_the_first_dead_reading() -> None:
    """The Go backend (and this engine before D-12): detecting, detecting, stuck (a page),
    then terminated once the activity was 60 s old (another page)."""
    lc = session(SessionState.WORKING, activity=activity(ActivityState.ACTIVE))
    timeline = []
    for seconds in (5, 10, 60, 61):
        lc = on_runtime_observed(lc, probe(DEAD, DEAD, seconds)).after
        timeline.append(
            (
                lc.state,
                lc.termination_reason,
                lc.is_alive,
                lc.detecting.attempts if lc.detecting else None,
            )
        )
    assert timeline == [(SessionState.TERMINATED, TerminationReason.RUNTIME_LOST, False, None)] * 4


# --- properties ---------------------------------------------------------------------------

hashes = st.sampled_from(
    [hash_evidence(FAILED_EVIDENCE), hash_evidence(DEAD_RECENT_EVIDENCE), "", "abc"]
)
detecting_states = models(DetectingState, attempts=st.integers(0, 5), evidence_hash=hashes)
lifecycles = models(Lifecycle, detecting=st.none() | detecting_states)
runtime_facts = models(RuntimeFacts)
signals = models(ActivitySignal)
observations = models(PRObservation, url=st.just(PR_URL))
short_text = st.sampled_from(["", "a", "b"])
metadatas = models(SessionMetadata, vocabulary=Vocabulary(texts=short_text))
outcomes = models(SpawnOutcome, vocabulary=Vocabulary(texts=short_text))
reasons = st.sampled_from(TerminationReason)


@st.composite
def events(draw: st.DrawFn) -> tuple[str, Callable[[Lifecycle], Transition]]:
    """One arbitrary entry-point call, as (name, apply)."""
    choice = draw(st.sampled_from(["runtime", "activity", "pr", "spawn", "kill", "timeout"]))
    if choice == "runtime":
        facts = draw(runtime_facts)
        return choice, lambda lc: on_runtime_observed(lc, facts)
    if choice == "activity":
        sig = draw(signals)
        return choice, lambda lc: on_activity_signalled(lc, sig)
    if choice == "pr":
        obs = draw(observations)
        return choice, lambda lc: on_pr_observed(lc, obs)
    if choice == "spawn":
        meta, out = draw(metadatas), draw(outcomes)
        return choice, lambda lc: on_spawn_completed(lc, meta, out)[0]
    if choice == "kill":
        reason = draw(reasons)
        return choice, lambda lc: on_kill_requested(lc, reason)
    now = draw(utc_datetimes)
    return choice, lambda lc: on_detecting_timeout(lc, now)


def _differing_fields(before: Lifecycle, after: Lifecycle) -> set[str]:
    return {
        name
        for name in Lifecycle.__struct_fields__
        if getattr(before, name) != getattr(after, name)
    }


@given(lc=lifecycles, event=events())
def test_every_entry_point_is_total_and_reports_exactly_what_changed(
    lc: Lifecycle, event: tuple[str, Callable[[Lifecycle], Transition]]
) -> None:
    _, apply = event
    step = apply(lc)
    assert step.before is lc
    assert isinstance(step.after, Lifecycle)
    assert step.changed == _differing_fields(step.before, step.after)
    assert step.is_changed is bool(step.changed)


@given(lc=lifecycles.filter(lambda lc: lc.state.is_terminal), event=events())
def test_only_spawn_completed_leaves_a_terminal_state(
    lc: Lifecycle, event: tuple[str, Callable[[Lifecycle], Transition]]
) -> None:
    name, apply = event
    step = apply(lc)
    if name == "spawn":
        assert step.after.state is SessionState.NOT_STARTED
    else:
        assert step.after == lc
        assert not step.is_changed


@given(lc=lifecycles, event=events())
def test_entering_a_terminal_state_means_dead_without_memory(
    lc: Lifecycle, event: tuple[str, Callable[[Lifecycle], Transition]]
) -> None:
    _, apply = event
    after = apply(lc).after
    if after.state.is_terminal and not lc.state.is_terminal:
        assert not after.is_alive
        assert after.detecting is None
        assert after.termination_reason is not TerminationReason.NONE


@st.composite
def well_formed_lifecycles(draw: st.DrawFn) -> Lifecycle:
    """Lifecycles that hold the model's invariants: a reason only when terminated, detecting
    memory only while detecting."""
    lc = draw(lifecycles)
    if lc.state is not SessionState.TERMINATED:
        lc = replace(lc, termination_reason=TerminationReason.NONE)
    if lc.state is not SessionState.DETECTING:
        lc = replace(lc, detecting=None)
    return lc


@given(lc=well_formed_lifecycles(), event=events())
def test_entry_points_preserve_the_lifecycle_invariants(
    lc: Lifecycle, event: tuple[str, Callable[[Lifecycle], Transition]]
) -> None:
    _, apply = event
    after = apply(lc).after
    if after.state is not SessionState.TERMINATED:
        assert after.termination_reason is TerminationReason.NONE
    if after.state is not SessionState.DETECTING:
        assert after.detecting is None


@given(lc=lifecycles, facts=runtime_facts)
def test_probes_touch_only_state_reason_liveness_and_memory(
    lc: Lifecycle, facts: RuntimeFacts
) -> None:
    step = on_runtime_observed(lc, facts)
    assert step.changed <= {"state", "termination_reason", "is_alive", "detecting"}


@given(
    inp=st.builds(
        ProbeInput,
        runtime_alive=st.booleans(),
        runtime_failed=st.booleans(),
        process=st.sampled_from(ProcessVerdict),
        process_failed=st.booleans(),
        recent_activity=st.booleans(),
        kill_requested=st.booleans(),
        kill_reason=reasons,
        prior=st.none() | detecting_states,
        now=utc_datetimes,
    )
)
def test_probe_verdicts_are_consistent(inp: ProbeInput) -> None:
    decision = resolve_probe_decision(inp)
    assert decision.is_alive is (decision.state is not SessionState.TERMINATED)
    assert (decision.detecting is not None) is (decision.state is SessionState.DETECTING)
    if decision.detecting is not None:
        assert 1 <= decision.detecting.attempts < DETECTING_MAX_ATTEMPTS
        assert decision.detecting.evidence_hash == hash_evidence(decision.evidence)
