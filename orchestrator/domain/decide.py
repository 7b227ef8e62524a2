"""The pure decide core: probe verdicts, the detecting quarantine, and the lifecycle
transition each observation or command causes (docs/behaviour.md, "Lifecycle states",
"Probes and the detecting quarantine" and "Activity").

Three rules differ from the Go backend this descends from: a terminal session ignores
observations; sticky activity (``waiting_input``, ``blocked``) ages like any other; and a
session that reached stuck through the quarantine does not flap back to detecting. Pure
and total: no I/O and no clock reads; ``now`` always arrives with the input.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

import msgspec
from msgspec.structs import replace

from orchestrator.domain.model import (
    TERMINAL_STATES,
    Activity,
    ActivitySignal,
    ActivityState,
    DetectingState,
    Lifecycle,
    ProbeResult,
    PRObservation,
    RuntimeFacts,
    SessionMetadata,
    SessionState,
    SpawnOutcome,
    TerminationReason,
)

RECENT_ACTIVITY_WINDOW: Final = timedelta(seconds=60)
MAX_CLOCK_SKEW: Final = timedelta(seconds=5)
"""How far ahead of the receipt time a client's activity timestamp may lie."""
DETECTING_MAX_ATTEMPTS: Final = 3
DETECTING_MAX_DURATION: Final = timedelta(minutes=5)


class ProcessVerdict(StrEnum):
    ALIVE = "alive"
    DEAD = "dead"
    INDETERMINATE = "indeterminate"


# Enum members bound once for the functions below (docs/design.md, "Hot path").
_NOT_STARTED: Final = SessionState.NOT_STARTED
_WORKING: Final = SessionState.WORKING
_STUCK: Final = SessionState.STUCK
_DETECTING: Final = SessionState.DETECTING
_TERMINATED: Final = SessionState.TERMINATED
_NO_REASON: Final = TerminationReason.NONE
_REASON_MANUALLY_KILLED: Final = TerminationReason.MANUALLY_KILLED
_REASON_RUNTIME_LOST: Final = TerminationReason.RUNTIME_LOST
_REASON_AGENT_PROCESS_EXITED: Final = TerminationReason.AGENT_PROCESS_EXITED
_REASON_PR_MERGED: Final = TerminationReason.PR_MERGED
_ACTIVITY_BLOCKED: Final = ActivityState.BLOCKED
_ACTIVITY_EXITED: Final = ActivityState.EXITED
_PROBE_ALIVE: Final = ProbeResult.ALIVE
_PROBE_DEAD: Final = ProbeResult.DEAD
_PROBE_FAILED: Final = ProbeResult.FAILED
_PROBE_FAILED_OR_UNKNOWN: Final = frozenset({ProbeResult.FAILED, ProbeResult.UNKNOWN})
_VERDICT_ALIVE: Final = ProcessVerdict.ALIVE
_VERDICT_DEAD: Final = ProcessVerdict.DEAD
_VERDICT_INDETERMINATE: Final = ProcessVerdict.INDETERMINATE


class ProbeInput(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Everything one probe verdict depends on."""

    runtime_alive: bool
    runtime_failed: bool
    process: ProcessVerdict
    process_failed: bool
    recent_activity: bool
    kill_requested: bool = False
    kill_reason: TerminationReason = TerminationReason.NONE
    prior: DetectingState | None = None
    now: datetime


class LifecycleDecision(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A verdict: the state a probe implies, and the detecting memory to keep."""

    evidence: str
    state: SessionState
    termination_reason: TerminationReason
    is_alive: bool
    detecting: DetectingState | None


# --- evidence hashing ---------------------------------------------------------------------

# re.ASCII: Go RE2's \d and \b are ASCII-only; Python's are Unicode-aware by default.
_TIMESTAMP_PATTERNS: Final = (
    re.compile(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?", re.ASCII
    ),
    re.compile(r"\d{2}:\d{2}:\d{2}(?:\.\d+)?", re.ASCII),
    re.compile(r"\b\d{10,13}\b", re.ASCII),
)
# Go's strings.Fields splits on unicode.IsSpace; str.split() would also split on \x1c-\x1f.
_WHITESPACE_RUN: Final = re.compile(
    "[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
)


def hash_evidence(evidence: str) -> str:
    """sha256 hex of the evidence with timestamps stripped and whitespace collapsed, so a
    re-stamped repeat of the same evidence counts as the same episode."""
    stripped = evidence
    for pattern in _TIMESTAMP_PATTERNS:
        stripped = pattern.sub("", stripped)
    normalised = " ".join(word for word in _WHITESPACE_RUN.split(stripped) if word)
    return hashlib.sha256(normalised.encode()).hexdigest()


# --- verdicts -----------------------------------------------------------------------------


def _go_bool(value: object) -> str:
    """Go's ``%t``: evidence strings (and so their hashes) match the Go backend's."""
    return "true" if value else "false"


def _kill_reason(reason: TerminationReason) -> TerminationReason:
    return _REASON_MANUALLY_KILLED if reason is _NO_REASON else reason


def resolve_probe_decision(inp: ProbeInput) -> LifecycleDecision:
    """The probe verdict; the first matching rule wins (docs/behaviour.md, "Probes and the
    detecting quarantine")."""
    if inp.kill_requested:
        return LifecycleDecision(
            evidence="manual kill requested",
            state=_TERMINATED,
            termination_reason=_kill_reason(inp.kill_reason),
            is_alive=False,
            detecting=None,
        )
    process = inp.process.value
    recent = _go_bool(inp.recent_activity)
    if inp.runtime_failed or inp.process_failed:
        evidence = (
            f"probe_failed runtimeFailed={_go_bool(inp.runtime_failed)} "
            f"process={process} processFailed={_go_bool(inp.process_failed)}"
        )
        return create_detecting_decision(evidence, inp.prior, inp.now)
    if inp.runtime_alive:
        if inp.process is _VERDICT_DEAD:
            evidence = f"disagree runtime=alive process=dead recentActivity={recent}"
            return create_detecting_decision(evidence, inp.prior, inp.now)
        return LifecycleDecision(
            evidence=f"alive runtime=alive process={process}",
            state=_WORKING,
            termination_reason=_NO_REASON,
            is_alive=True,
            detecting=None,
        )
    if inp.process is _VERDICT_ALIVE or inp.recent_activity:
        evidence = f"disagree runtime=down process={process} recentActivity={recent}"
        return create_detecting_decision(evidence, inp.prior, inp.now)
    if inp.process is _VERDICT_DEAD:
        return LifecycleDecision(
            evidence="dead runtime=down process=dead recentActivity=false",
            state=_TERMINATED,
            termination_reason=_REASON_RUNTIME_LOST,
            is_alive=False,
            detecting=None,
        )
    evidence = "runtime_lost runtime=down process=indeterminate recentActivity=false"
    return create_detecting_decision(evidence, inp.prior, inp.now)


def create_detecting_decision(
    evidence: str, prior: DetectingState | None, now: datetime
) -> LifecycleDecision:
    """The anti-flap quarantine: stay detecting until the same evidence has been seen
    DETECTING_MAX_ATTEMPTS times or the episode is DETECTING_MAX_DURATION old, then stuck.
    Changed evidence restarts the count but not the episode's clock."""
    evidence_hash = hash_evidence(evidence)
    if prior is None:
        attempts, started_at = 1, now
    else:
        started_at = prior.started_at
        attempts = prior.attempts + 1 if prior.evidence_hash == evidence_hash else 1
    if attempts >= DETECTING_MAX_ATTEMPTS or now >= started_at + DETECTING_MAX_DURATION:
        return LifecycleDecision(
            evidence=evidence,
            state=_STUCK,
            termination_reason=_NO_REASON,
            is_alive=True,
            detecting=None,
        )
    return LifecycleDecision(
        evidence=evidence,
        state=_DETECTING,
        termination_reason=_NO_REASON,
        is_alive=True,
        detecting=DetectingState(
            attempts=attempts, started_at=started_at, evidence_hash=evidence_hash
        ),
    )


# --- the bridge from observations to verdict inputs ---------------------------------------

_PROCESS_VERDICT: Final[Mapping[ProbeResult, ProcessVerdict]] = {
    ProbeResult.ALIVE: ProcessVerdict.ALIVE,
    ProbeResult.DEAD: ProcessVerdict.DEAD,
}

# The session state an activity signal implies; ``exited`` implies none: only the probe
# pipeline may conclude death (docs/behaviour.md, "Activity").
_ACTIVITY_TARGET: Final[Mapping[ActivityState, SessionState]] = {
    ActivityState.ACTIVE: SessionState.WORKING,
    ActivityState.READY: SessionState.IDLE,
    ActivityState.IDLE: SessionState.IDLE,
    ActivityState.WAITING_INPUT: SessionState.NEEDS_INPUT,
    ActivityState.BLOCKED: SessionState.STUCK,
}


def activity_time(claimed: datetime | None, received: datetime) -> datetime:
    """When a reported activity happened: the client's ``claimed`` time, or ``received``
    when it claims none or claims one more than ``MAX_CLOCK_SKEW`` ahead of it (a report
    stamped far in the future would count as recent activity forever)."""
    if claimed is None or claimed > received + MAX_CLOCK_SKEW:
        return received
    return claimed


def has_recent_activity(
    activity: Activity | None, now: datetime, window: timedelta = RECENT_ACTIVITY_WINDOW
) -> bool:
    """Whether the agent reported anything but ``exited`` within ``window`` (inclusive).
    Sticky states age like any other: a dead probe outlives a stale ``waiting_input``."""
    if activity is None or activity.state is _ACTIVITY_EXITED:
        return False
    return now - activity.last_activity_at <= window


def probe_input(lifecycle: Lifecycle, facts: RuntimeFacts) -> ProbeInput:
    """Map one liveness probe onto the verdict inputs. A failed or unknown runtime probe is
    a failure (never read as down); a failed process probe is indeterminate and a failure."""
    return ProbeInput(
        runtime_alive=facts.runtime is _PROBE_ALIVE,
        runtime_failed=facts.runtime in _PROBE_FAILED_OR_UNKNOWN,
        process=_PROCESS_VERDICT.get(facts.process, _VERDICT_INDETERMINATE),
        process_failed=facts.process is _PROBE_FAILED,
        recent_activity=has_recent_activity(lifecycle.activity, facts.observed_at),
        prior=lifecycle.detecting,
        now=facts.observed_at,
    )


# --- transitions --------------------------------------------------------------------------


class Transition(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One lifecycle step. ``changed`` names the Lifecycle fields whose values differ."""

    before: Lifecycle
    after: Lifecycle
    changed: frozenset[str]

    @property
    def is_changed(self) -> bool:
        return bool(self.changed)


# ``changed`` for every combination of differing Lifecycle fields, indexed by a bit mask
# (bit i = field i): one set per shape instead of one built per transition.
_LIFECYCLE_FIELDS: Final = (
    "state",
    "termination_reason",
    "is_alive",
    "activity",
    "harness",
    "detecting",
)
_CHANGED_BY_MASK: Final = tuple(
    frozenset(name for bit, name in enumerate(_LIFECYCLE_FIELDS) if mask >> bit & 1)
    for mask in range(1 << len(_LIFECYCLE_FIELDS))
)


def transition(before: Lifecycle, after: Lifecycle) -> Transition:
    """The step from ``before`` to ``after``; equal values (datetimes by instant) are no change."""
    mask = (
        (before.state != after.state)
        | (before.termination_reason != after.termination_reason) << 1
        | (before.is_alive != after.is_alive) << 2
        | (before.activity != after.activity) << 3
        | (before.harness != after.harness) << 4
        | (before.detecting != after.detecting) << 5
    )
    return Transition(before=before, after=after, changed=_CHANGED_BY_MASK[mask])


def _unchanged(lc: Lifecycle) -> Transition:
    return Transition(before=lc, after=lc, changed=frozenset())


def on_runtime_observed(lc: Lifecycle, facts: RuntimeFacts) -> Transition:
    """Apply one liveness probe (docs/behaviour.md, "Probes and the detecting quarantine")."""
    if lc.state in TERMINAL_STATES:
        return _unchanged(lc)  # a terminal session is immutable: not even is_alive flips
    # A pane kept open after its agent exited (tmux remain-on-exit) is not a disagreement
    # between two probes: the agent is gone for certain. Judge it as a lost runtime, under
    # the same recent-activity window, and say why it ended.
    agent_exited = facts.runtime is _PROBE_ALIVE and facts.process is _PROBE_DEAD
    if agent_exited:
        facts = replace(facts, runtime=_PROBE_DEAD)
    verdict = resolve_probe_decision(probe_input(lc, facts))
    if agent_exited and verdict.state is _TERMINATED:
        verdict = replace(verdict, termination_reason=_REASON_AGENT_PROCESS_EXITED)
    if lc.state is _STUCK:
        return transition(lc, _stuck_after_probe(lc, verdict))
    after = replace(lc, is_alive=verdict.is_alive, detecting=verdict.detecting)
    # A healthy probe recovers only a quarantine; it says nothing about idle or needs_input.
    if verdict.state is not _WORKING or lc.state is _DETECTING:
        after = replace(after, state=verdict.state, termination_reason=verdict.termination_reason)
    return transition(lc, after)


def _stuck_after_probe(lc: Lifecycle, verdict: LifecycleDecision) -> Lifecycle:
    """No stuck↔detecting flapping: an ambiguous probe leaves stuck alone (no new episode,
    no new page), a dead one terminates it, and a healthy one recovers it unless the agent
    itself said it is blocked."""
    if verdict.state is _TERMINATED:
        return replace(
            lc,
            state=_TERMINATED,
            termination_reason=verdict.termination_reason,
            is_alive=False,
            detecting=None,
        )
    agent_blocked = lc.activity is not None and lc.activity.state is _ACTIVITY_BLOCKED
    if verdict.state is _WORKING and not agent_blocked:
        return replace(
            lc,
            state=_WORKING,
            termination_reason=_NO_REASON,
            is_alive=True,
            detecting=None,
        )
    return lc


def on_activity_signalled(lc: Lifecycle, signal: ActivitySignal) -> Transition:
    """Apply an agent's activity report (docs/behaviour.md, "Activity"). A signal is proof of
    life unless it says the agent exited; only a probe may conclude death. A report older
    than the activity already recorded is out of date (it arrived late) and changes nothing,
    so the last activity never moves backwards."""
    if not signal.valid or lc.state in TERMINAL_STATES:
        return _unchanged(lc)
    if lc.activity is not None and signal.timestamp < lc.activity.last_activity_at:
        return _unchanged(lc)
    activity = Activity(state=signal.state, last_activity_at=signal.timestamp, source=signal.source)
    is_alive = lc.is_alive or signal.state is not _ACTIVITY_EXITED
    target = _ACTIVITY_TARGET.get(signal.state)
    if target is None:
        after = replace(lc, activity=activity, is_alive=is_alive)
    else:
        after = replace(
            lc,
            activity=activity,
            state=target,
            termination_reason=_NO_REASON,
            detecting=None,
            is_alive=is_alive,
        )
    return transition(lc, after)


def with_reported_agent_session(
    lc: Lifecycle, metadata: SessionMetadata, agent_session_id: str
) -> SessionMetadata:
    """The agent's hook named its own conversation id: a live session records it (the last
    one reported wins; the store logs the change); a terminal one is immutable to
    observations (D-7). Returns ``metadata`` itself when nothing changes."""
    if (
        not agent_session_id
        or lc.state in TERMINAL_STATES
        or agent_session_id == metadata.agent_session_id
    ):
        return metadata
    return replace(metadata, agent_session_id=agent_session_id)


def on_pr_observed(lc: Lifecycle, observation: PRObservation) -> Transition:
    """A merged PR ends a live session; everything else about the PR is the store's job."""
    if not observation.fetched or not observation.merged or lc.state in TERMINAL_STATES:
        return _unchanged(lc)
    after = replace(
        lc,
        state=_TERMINATED,
        termination_reason=_REASON_PR_MERGED,
        is_alive=False,
        detecting=None,
    )
    return transition(lc, after)


def on_spawn_completed(
    lc: Lifecycle, metadata: SessionMetadata, outcome: SpawnOutcome
) -> tuple[Transition, SessionMetadata]:
    """A spawn or restore put the agent in its pane. A restored (terminal) session starts
    fresh, old activity included; a session whose agent already reported keeps its state."""
    merged = metadata.merged_with(outcome.metadata())
    if lc.state in TERMINAL_STATES:
        after = replace(
            lc,
            state=_NOT_STARTED,
            termination_reason=_NO_REASON,
            is_alive=True,
            detecting=None,
            activity=None,
        )
    elif lc.state is _NOT_STARTED:
        after = replace(lc, is_alive=True, detecting=None)
    else:
        after = replace(lc, is_alive=True)
    return transition(lc, after), merged


def on_kill_requested(
    lc: Lifecycle, reason: TerminationReason = TerminationReason.NONE
) -> Transition:
    """Terminate a live session; a terminal one keeps its first reason."""
    if lc.state in TERMINAL_STATES:
        return _unchanged(lc)
    after = replace(
        lc,
        state=_TERMINATED,
        termination_reason=_kill_reason(reason),
        is_alive=False,
        detecting=None,
    )
    return transition(lc, after)


def detecting_deadline(lc: Lifecycle) -> datetime | None:
    """When the current detecting episode escalates to stuck without another probe."""
    if lc.detecting is None or lc.state is not _DETECTING:
        return None
    return lc.detecting.started_at + DETECTING_MAX_DURATION


def on_detecting_timeout(lc: Lifecycle, now: datetime) -> Transition:
    """The timer's half of the duration cap: probes may stop arriving mid-episode."""
    deadline = detecting_deadline(lc)
    if deadline is None or now < deadline:
        return _unchanged(lc)
    after = replace(lc, state=_STUCK, is_alive=True, detecting=None)
    return transition(lc, after)
