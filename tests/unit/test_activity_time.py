"""Time from clients is bounded: a report stamped too far in the future counts as made when it
was received, and one older than the activity already recorded changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.domain.decide import MAX_CLOCK_SKEW, activity_time, on_activity_signalled
from orchestrator.domain.model import (
    Activity,
    ActivitySignal,
    ActivitySource,
    ActivityState,
    Lifecycle,
    SessionState,
)

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("claimed", "expected"),
    [
        pytest.param(None, RECEIVED, id="none: the receipt time"),
        pytest.param(RECEIVED - 60 * SECOND, RECEIVED - 60 * SECOND, id="past: as claimed"),
        pytest.param(RECEIVED + MAX_CLOCK_SKEW, RECEIVED + MAX_CLOCK_SKEW, id="at the skew"),
        pytest.param(RECEIVED + MAX_CLOCK_SKEW + SECOND, RECEIVED, id="beyond the skew"),
        pytest.param(datetime(9999, 1, 1, tzinfo=UTC), RECEIVED, id="year 9999"),
    ],
)
def test_activity_time_is_bounded_by_the_receipt_time(
    claimed: datetime | None, expected: datetime
) -> None:
    assert MAX_CLOCK_SKEW == 5 * SECOND
    assert activity_time(claimed, RECEIVED) == expected


def working(at: datetime) -> Lifecycle:
    return Lifecycle(
        state=SessionState.WORKING,
        is_alive=True,
        activity=Activity(state=ActivityState.ACTIVE, last_activity_at=at),
    )


def signal(state: ActivityState, at: datetime) -> ActivitySignal:
    return ActivitySignal(state=state, timestamp=at, source=ActivitySource.HOOK)


@pytest.mark.parametrize("state", list(ActivityState), ids=str)
def test_a_report_older_than_the_recorded_activity_changes_nothing(state: ActivityState) -> None:
    lc = working(RECEIVED)
    step = on_activity_signalled(lc, signal(state, RECEIVED - SECOND))
    assert step.after == lc
    assert not step.is_changed


def test_a_report_as_old_as_the_recorded_activity_still_applies() -> None:
    lc = working(RECEIVED)
    step = on_activity_signalled(lc, signal(ActivityState.WAITING_INPUT, RECEIVED))
    assert step.after.state is SessionState.NEEDS_INPUT
    assert step.after.activity is not None
    assert step.after.activity.last_activity_at == RECEIVED


def test_a_newer_report_moves_the_activity_forward() -> None:
    step = on_activity_signalled(working(RECEIVED), signal(ActivityState.IDLE, RECEIVED + SECOND))
    assert step.after.state is SessionState.IDLE
    assert step.after.activity is not None
    assert step.after.activity.last_activity_at == RECEIVED + SECOND
