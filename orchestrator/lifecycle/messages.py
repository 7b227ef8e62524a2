"""Messages a session's actor applies, one at a time: a frozen, tagged union."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

from orchestrator.domain.model import (
    ActivitySignal,
    PRObservation,
    RuntimeFacts,
    SpawnOutcome,
    TerminationReason,
)


class _Message(msgspec.Struct, frozen=True, kw_only=True, tag=True, gc=False):
    pass


class RuntimeObserved(_Message, frozen=True, kw_only=True, tag=True):
    facts: RuntimeFacts


class ActivitySignalled(_Message, frozen=True, kw_only=True, tag=True):
    signal: ActivitySignal


class PRObserved(_Message, frozen=True, kw_only=True, tag=True):
    observation: PRObservation


class SpawnCompleted(_Message, frozen=True, kw_only=True, tag=True):
    outcome: SpawnOutcome


class Restored(_Message, frozen=True, kw_only=True, tag=True):
    outcome: SpawnOutcome


class KillRequested(_Message, frozen=True, kw_only=True, tag=True):
    """End the session. A spawn whose agent exited at once passes what its pane showed."""

    reason: TerminationReason = TerminationReason.NONE
    exit_status: int | None = None
    last_output: str = ""


class MergeCleaned(_Message, frozen=True, kw_only=True, tag=True):
    """A merged session's runtime was stopped and its workspace removed, or ``kept``
    (why, e.g. uncommitted work) when it could not be."""

    kept: str = ""


class TimerKind(StrEnum):
    ESCALATION = "escalation"  # an entry reaction's escalateAfter
    DETECTING = "detecting"  # the detecting quarantine's 5-minute cap
    CLEANUP = "cleanup"  # a merged session's grace period before its cleanup


class TimerFired(_Message, frozen=True, kw_only=True, tag=True):
    """A deadline came due. ``due`` is the deadline itself: the turn runs at no earlier
    time, whatever rounding between trio's clock and wall time did."""

    kind: TimerKind
    due: datetime


Message = (
    RuntimeObserved
    | ActivitySignalled
    | PRObserved
    | SpawnCompleted
    | Restored
    | KillRequested
    | MergeCleaned
    | TimerFired
)
