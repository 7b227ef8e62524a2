"""The attention zone of every derived status, and the facts that move a session out of
its status's zone (orchestrator/domain/zones.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.model import ActivityState, SessionStatus, TerminationReason
from orchestrator.domain.zones import BOARD_ZONES, UNEXPECTED_ENDS, ZONE_LABELS, Zone, zone_of

S = SessionStatus
Z = Zone

# The zone of each status for a session with no special facts: no unexpected end, no
# ``exited`` report, no tripped CI brake.
ZONE_TABLE: dict[SessionStatus, Zone] = {
    S.SPAWNING: Z.WORKING,
    S.WORKING: Z.WORKING,
    S.IDLE: Z.WORKING,
    S.DETECTING: Z.WORKING,
    S.CI_FAILED: Z.WORKING,
    S.NEEDS_INPUT: Z.NEEDS_YOU,
    S.STUCK: Z.NEEDS_YOU,
    S.CHANGES_REQUESTED: Z.NEEDS_YOU,
    S.PR_OPEN: Z.IN_REVIEW,
    S.DRAFT: Z.IN_REVIEW,
    S.REVIEW_PENDING: Z.IN_REVIEW,
    S.MERGEABLE: Z.READY_TO_MERGE,
    S.APPROVED: Z.READY_TO_MERGE,
    S.MERGED: Z.DONE,
    S.CLEANUP: Z.DONE,
    S.ERRORED: Z.DONE,
    S.KILLED: Z.DONE,
    S.DONE: Z.DONE,
    S.TERMINATED: Z.DONE,
}

ENDED = frozenset(s for s, z in ZONE_TABLE.items() if z is Z.DONE)


def test_the_table_names_every_status() -> None:
    assert set(ZONE_TABLE) == set(SessionStatus)


@pytest.mark.parametrize(("status", "zone"), ZONE_TABLE.items(), ids=lambda v: str(v))
def test_zone_of_each_status(status: SessionStatus, zone: Zone) -> None:
    assert zone_of(status) is zone
    # An ordinary live activity never moves a session out of its status's zone.
    for activity in (ActivityState.ACTIVE, ActivityState.IDLE, ActivityState.READY, None):
        assert zone_of(status, activity=activity) is zone


@pytest.mark.parametrize("status", sorted(ENDED), ids=str)
@pytest.mark.parametrize("reason", list(TerminationReason), ids=lambda r: r.value or "none")
def test_an_ended_session_needs_you_only_when_the_agent_exited_unexpectedly(
    status: SessionStatus, reason: TerminationReason
) -> None:
    expected = Z.NEEDS_YOU if reason in UNEXPECTED_ENDS else Z.DONE
    assert zone_of(status, termination_reason=reason) is expected
    # An ended session's last activity report says nothing about now.
    assert zone_of(status, termination_reason=reason, activity=ActivityState.EXITED) is expected


def test_unexpected_ends_are_the_runtimes_verdicts() -> None:
    assert {
        TerminationReason.RUNTIME_LOST,
        TerminationReason.AGENT_PROCESS_EXITED,
    } == UNEXPECTED_ENDS
    assert zone_of(S.KILLED, termination_reason=TerminationReason.MANUALLY_KILLED) is Z.DONE
    assert zone_of(S.KILLED, termination_reason=TerminationReason.RUNTIME_LOST) is Z.NEEDS_YOU


@pytest.mark.parametrize("status", sorted(set(ZONE_TABLE) - ENDED), ids=str)
def test_a_live_agent_that_reported_exited_needs_you(status: SessionStatus) -> None:
    assert zone_of(status, activity=ActivityState.EXITED) is Z.NEEDS_YOU


def test_failing_ci_needs_you_only_once_the_brake_tripped() -> None:
    assert zone_of(S.CI_FAILED) is Z.WORKING
    assert zone_of(S.CI_FAILED, ci_braked=True) is Z.NEEDS_YOU
    # The brake is about failing CI: on any other status it changes nothing.
    for status, zone in ZONE_TABLE.items():
        if status is not S.CI_FAILED:
            assert zone_of(status, ci_braked=True) is zone


@given(
    st.sampled_from(SessionStatus),
    st.sampled_from(TerminationReason),
    st.none() | st.sampled_from(ActivityState),
    st.booleans(),
)
def test_zone_of_is_total(
    status: SessionStatus,
    reason: TerminationReason,
    activity: ActivityState | None,
    braked: bool,
) -> None:
    zone = zone_of(status, termination_reason=reason, activity=activity, ci_braked=braked)
    assert zone in Zone


def test_board_columns_and_labels() -> None:
    assert BOARD_ZONES == (Z.NEEDS_YOU, Z.WORKING, Z.IN_REVIEW, Z.READY_TO_MERGE)
    assert set(ZONE_LABELS) == set(Zone)
    assert ZONE_LABELS[Z.NEEDS_YOU] == "Needs you"
    assert ZONE_LABELS[Z.READY_TO_MERGE] == "Ready to merge"
