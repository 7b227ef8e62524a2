"""The attention zone: which column of the board a session belongs in.

One pure function of the derived status (``orchestrator.domain.status``) and three facts the
status folds away: why a terminal session ended, the agent's last reported activity, and
whether the CI brake has tripped on the session's PR. The dashboard and ``orchestrator ls
--by-zone`` both show its answer, computed by the daemon, so the two never disagree.

- **Needs you**: the agent asked for input or is stuck; a reviewer requested changes; CI
  keeps failing and the brake stopped nudging the agent (docs/design.md, D-3); the agent
  exited unexpectedly (a live session whose agent reported ``exited``, or one the runtime
  ended: the ends that page ``agent-exited``).
- **Working**: spawning, working, idle, the detecting quarantine (it resolves itself), and CI
  failing while the agent is still being nudged to fix it.
- **In review**: an open or draft PR waiting on review.
- **Ready to merge**: mergeable or approved.
- **Done**: every other terminal session (killed by a person, merged, errored).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from orchestrator.domain.model import ActivityState, SessionStatus, TerminationReason


class Zone(StrEnum):
    NEEDS_YOU = "needs_you"
    WORKING = "working"
    IN_REVIEW = "in_review"
    READY_TO_MERGE = "ready_to_merge"
    DONE = "done"


BOARD_ZONES: Final = (Zone.NEEDS_YOU, Zone.WORKING, Zone.IN_REVIEW, Zone.READY_TO_MERGE)
"""The board's columns, left to right; Done is the collapsed list below them."""

ZONE_LABELS: Final[Mapping[Zone, str]] = {
    Zone.NEEDS_YOU: "Needs you",
    Zone.WORKING: "Working",
    Zone.IN_REVIEW: "In review",
    Zone.READY_TO_MERGE: "Ready to merge",
    Zone.DONE: "Done",
}

UNEXPECTED_ENDS: Final = frozenset(
    {TerminationReason.RUNTIME_LOST, TerminationReason.AGENT_PROCESS_EXITED}
)
"""Ends nobody asked for: the runtime found the agent gone (the ``agent-exited`` page)."""

# Statuses only a terminal session has (docs/behaviour.md, "Derived status", rows 1 and 6),
# plus ``merged``, which a live session shows only until the merge ends it.
_ENDED: Final = frozenset(
    {
        SessionStatus.DONE,
        SessionStatus.KILLED,
        SessionStatus.CLEANUP,
        SessionStatus.ERRORED,
        SessionStatus.TERMINATED,
        SessionStatus.MERGED,
    }
)

_LIVE_ZONE: Final[Mapping[SessionStatus, Zone]] = {
    SessionStatus.NEEDS_INPUT: Zone.NEEDS_YOU,
    SessionStatus.STUCK: Zone.NEEDS_YOU,
    SessionStatus.CHANGES_REQUESTED: Zone.NEEDS_YOU,
    SessionStatus.SPAWNING: Zone.WORKING,
    SessionStatus.WORKING: Zone.WORKING,
    SessionStatus.IDLE: Zone.WORKING,
    SessionStatus.DETECTING: Zone.WORKING,
    SessionStatus.CI_FAILED: Zone.WORKING,  # Needs you once braked: see zone_of
    SessionStatus.PR_OPEN: Zone.IN_REVIEW,
    SessionStatus.DRAFT: Zone.IN_REVIEW,
    SessionStatus.REVIEW_PENDING: Zone.IN_REVIEW,
    SessionStatus.MERGEABLE: Zone.READY_TO_MERGE,
    SessionStatus.APPROVED: Zone.READY_TO_MERGE,
}


def zone_of(
    status: SessionStatus,
    *,
    termination_reason: TerminationReason = TerminationReason.NONE,
    activity: ActivityState | None = None,
    ci_braked: bool = False,
) -> Zone:
    """The zone of a session with derived ``status``. ``activity`` is the agent's last
    report (None before its first); ``ci_braked``: a failing check of the session's PR has
    tripped the CI brake, so the agent is no longer nudged about it."""
    if status in _ENDED:
        return Zone.NEEDS_YOU if termination_reason in UNEXPECTED_ENDS else Zone.DONE
    if activity is ActivityState.EXITED:
        return Zone.NEEDS_YOU  # the agent says it is gone; only a probe may end the session
    if status is SessionStatus.CI_FAILED and ci_braked:
        return Zone.NEEDS_YOU
    return _LIVE_ZONE[status]


__all__ = ["BOARD_ZONES", "UNEXPECTED_ENDS", "ZONE_LABELS", "Zone", "zone_of"]
