"""derive_status, row by row (docs/behaviour.md, "Derived status"); the Go backend's
TestDeriveStatus table first, with this project's departures marked: a session that ended on
its own shows ``exited`` (``killed`` is a human's kill only), a merged one ``merged`` until
its cleanup makes it ``done``, and a session that has not reported yet shows its PR."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from orchestrator.domain.model import (
    CIState,
    Lifecycle,
    Mergeability,
    PRFacts,
    ReviewDecision,
    SessionState,
    SessionStatus,
    TerminationReason,
)
from orchestrator.domain.status import derive_status
from tests.strategies import models

NO_PR = PRFacts()
OPEN_PR = PRFacts(exists=True, url="https://github.com/o/r/pull/1", number=1)


def lifecycle(state: SessionState, reason: TerminationReason = TerminationReason.NONE) -> Lifecycle:
    return Lifecycle(state=state, termination_reason=reason)


def open_pr(**fields: Any) -> PRFacts:
    return replace(OPEN_PR, **fields)


# The 21 rows of the Go backend's TestDeriveStatus table.
GO_TABLE = [
    pytest.param(
        lifecycle(SessionState.NOT_STARTED),
        NO_PR,
        SessionStatus.SPAWNING,
        id="not_started-spawning",
    ),
    pytest.param(
        lifecycle(SessionState.TERMINATED, TerminationReason.MANUALLY_KILLED),
        NO_PR,
        SessionStatus.KILLED,
        id="terminated-manually_killed-killed",
    ),
    pytest.param(
        lifecycle(SessionState.TERMINATED, TerminationReason.RUNTIME_LOST),
        NO_PR,
        SessionStatus.EXITED,  # the Go backend: killed
        id="terminated-runtime_lost-exited",
    ),
    pytest.param(
        lifecycle(SessionState.TERMINATED, TerminationReason.AUTO_CLEANUP),
        NO_PR,
        SessionStatus.CLEANUP,
        id="terminated-auto_cleanup-cleanup",
    ),
    pytest.param(
        lifecycle(SessionState.TERMINATED, TerminationReason.PR_MERGED),
        NO_PR,
        SessionStatus.MERGED,  # the Go backend: cleanup, forever
        id="terminated-pr_merged-merged",
    ),
    pytest.param(
        lifecycle(SessionState.TERMINATED, TerminationReason.ERROR_IN_PROCESS),
        NO_PR,
        SessionStatus.ERRORED,
        id="terminated-error_in_process-errored",
    ),
    pytest.param(
        lifecycle(SessionState.NEEDS_INPUT),
        NO_PR,
        SessionStatus.NEEDS_INPUT,
        id="needs_input-passes-through",
    ),
    pytest.param(
        lifecycle(SessionState.STUCK),
        open_pr(ci=CIState.FAILING),
        SessionStatus.STUCK,
        id="stuck-beats-failing-ci",
    ),
    pytest.param(lifecycle(SessionState.IDLE), NO_PR, SessionStatus.IDLE, id="no-pr-idle"),
    pytest.param(lifecycle(SessionState.WORKING), NO_PR, SessionStatus.WORKING, id="no-pr-working"),
    pytest.param(
        lifecycle(SessionState.IDLE),
        open_pr(merged=True),
        SessionStatus.MERGED,
        id="merged-pr-beats-idle",
    ),
    pytest.param(
        lifecycle(SessionState.WORKING),
        open_pr(ci=CIState.FAILING),
        SessionStatus.CI_FAILED,
        id="open-pr-ci-failing",
    ),
    pytest.param(
        lifecycle(SessionState.WORKING),
        open_pr(draft=True, ci=CIState.FAILING),
        SessionStatus.CI_FAILED,
        id="draft-with-failing-ci",
    ),
    pytest.param(
        lifecycle(SessionState.WORKING),
        open_pr(draft=True, review=ReviewDecision.APPROVED),
        SessionStatus.DRAFT,
        id="draft-ignores-approved",
    ),
    pytest.param(
        lifecycle(SessionState.WORKING),
        open_pr(review=ReviewDecision.CHANGES_REQUESTED),
        SessionStatus.CHANGES_REQUESTED,
        id="changes-requested",
    ),
    pytest.param(
        lifecycle(SessionState.WORKING),
        open_pr(review_comments=True),
        SessionStatus.CHANGES_REQUESTED,
        id="unresolved-comments",
    ),
    pytest.param(
        lifecycle(SessionState.WORKING),
        open_pr(mergeability=Mergeability.MERGEABLE),
        SessionStatus.MERGEABLE,
        id="mergeable",
    ),
    pytest.param(
        lifecycle(SessionState.WORKING),
        open_pr(review=ReviewDecision.APPROVED),
        SessionStatus.APPROVED,
        id="approved",
    ),
    pytest.param(
        lifecycle(SessionState.WORKING),
        open_pr(review=ReviewDecision.REVIEW_REQUIRED),
        SessionStatus.REVIEW_PENDING,
        id="review-required",
    ),
    pytest.param(
        lifecycle(SessionState.WORKING), OPEN_PR, SessionStatus.PR_OPEN, id="pr-open-no-signal"
    ),
    pytest.param(
        lifecycle(SessionState.IDLE),
        open_pr(closed=True),
        SessionStatus.IDLE,
        id="closed-pr-falls-through-to-idle",
    ),
]


@pytest.mark.parametrize(("lc", "pr", "expected"), GO_TABLE)
def test_go_derive_status_table(lc: Lifecycle, pr: PRFacts, expected: SessionStatus) -> None:
    assert derive_status(lc, pr) is expected


def test_go_table_has_21_rows() -> None:
    assert len(GO_TABLE) == 21


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (TerminationReason.MANUALLY_KILLED, SessionStatus.KILLED),
        (TerminationReason.RUNTIME_LOST, SessionStatus.EXITED),
        (TerminationReason.AGENT_PROCESS_EXITED, SessionStatus.EXITED),
        (TerminationReason.AUTO_CLEANUP, SessionStatus.CLEANUP),
        (TerminationReason.PR_MERGED, SessionStatus.MERGED),
        (TerminationReason.ERROR_IN_PROCESS, SessionStatus.ERRORED),
        (TerminationReason.PROBE_FAILURE, SessionStatus.ERRORED),
        (TerminationReason.NONE, SessionStatus.TERMINATED),
    ],
    ids=lambda value: str(value) or "none",
)
def test_every_termination_reason(reason: TerminationReason, expected: SessionStatus) -> None:
    assert derive_status(lifecycle(SessionState.TERMINATED, reason), NO_PR) is expected


def test_every_termination_reason_is_covered() -> None:
    # A new reason must be added to the table above on purpose.
    assert len(TerminationReason) == 8


@pytest.mark.parametrize("reason", list(TerminationReason), ids=lambda r: str(r) or "none")
def test_only_a_human_s_kill_reads_killed(reason: TerminationReason) -> None:
    status = derive_status(lifecycle(SessionState.TERMINATED, reason), NO_PR)
    assert (status is SessionStatus.KILLED) is (reason is TerminationReason.MANUALLY_KILLED)


def test_a_merged_session_is_done_once_cleaned_up() -> None:
    cleaned = lifecycle(SessionState.DONE, TerminationReason.PR_MERGED)
    assert derive_status(cleaned, open_pr(merged=True)) is SessionStatus.DONE


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (SessionState.DONE, SessionStatus.DONE),
        (SessionState.NEEDS_INPUT, SessionStatus.NEEDS_INPUT),
        (SessionState.STUCK, SessionStatus.STUCK),
        (SessionState.DETECTING, SessionStatus.DETECTING),
    ],
    ids=str,
)
@pytest.mark.parametrize(
    "pr",
    [
        pytest.param(NO_PR, id="no-pr"),
        pytest.param(open_pr(merged=True), id="merged-pr"),
        pytest.param(open_pr(ci=CIState.FAILING), id="failing-pr"),
        pytest.param(open_pr(mergeability=Mergeability.MERGEABLE), id="mergeable-pr"),
    ],
)
def test_state_rows_beat_any_pr(state: SessionState, expected: SessionStatus, pr: PRFacts) -> None:
    assert derive_status(lifecycle(state), pr) is expected


def test_terminated_beats_a_merged_pr() -> None:
    lc = lifecycle(SessionState.TERMINATED, TerminationReason.RUNTIME_LOST)
    assert derive_status(lc, open_pr(merged=True)) is SessionStatus.EXITED


def test_a_spawning_session_without_a_pr_is_spawning() -> None:
    assert derive_status(lifecycle(SessionState.NOT_STARTED), NO_PR) is SessionStatus.SPAWNING
    closed = open_pr(closed=True, review=ReviewDecision.APPROVED)
    assert derive_status(lifecycle(SessionState.NOT_STARTED), closed) is SessionStatus.SPAWNING


def test_a_session_whose_agent_never_reported_shows_its_merged_pr() -> None:
    pr = open_pr(merged=True)
    assert derive_status(lifecycle(SessionState.NOT_STARTED), pr) is SessionStatus.MERGED


# The PR ladder, rung by rung: each case holds the rung's signal plus every lower rung's,
# so it proves the rung wins over everything below it.
LADDER = [
    pytest.param(
        open_pr(
            ci=CIState.FAILING,
            draft=True,
            review=ReviewDecision.CHANGES_REQUESTED,
            review_comments=True,
            mergeability=Mergeability.MERGEABLE,
        ),
        SessionStatus.CI_FAILED,
        id="1-ci-failing",
    ),
    pytest.param(
        open_pr(
            draft=True,
            review=ReviewDecision.CHANGES_REQUESTED,
            review_comments=True,
            mergeability=Mergeability.MERGEABLE,
        ),
        SessionStatus.DRAFT,
        id="2-draft",
    ),
    pytest.param(
        open_pr(review=ReviewDecision.CHANGES_REQUESTED, mergeability=Mergeability.MERGEABLE),
        SessionStatus.CHANGES_REQUESTED,
        id="3-changes-requested",
    ),
    pytest.param(
        open_pr(
            review=ReviewDecision.APPROVED,
            review_comments=True,
            mergeability=Mergeability.MERGEABLE,
        ),
        SessionStatus.CHANGES_REQUESTED,
        id="3-review-comments",
    ),
    pytest.param(
        open_pr(review=ReviewDecision.APPROVED, mergeability=Mergeability.MERGEABLE),
        SessionStatus.MERGEABLE,
        id="4-mergeable-before-approved",
    ),
    pytest.param(
        open_pr(review=ReviewDecision.APPROVED, mergeability=Mergeability.CONFLICTING),
        SessionStatus.APPROVED,
        id="5-approved",
    ),
    pytest.param(
        open_pr(review=ReviewDecision.REVIEW_REQUIRED, ci=CIState.PASSING),
        SessionStatus.REVIEW_PENDING,
        id="6-review-pending",
    ),
    pytest.param(
        open_pr(ci=CIState.PENDING, mergeability=Mergeability.BLOCKED),
        SessionStatus.PR_OPEN,
        id="7-pr-open",
    ),
]


# not_started: the agent never reported, yet an approved, green PR must not hide as spawning.
@pytest.mark.parametrize(
    "soft_state", [SessionState.WORKING, SessionState.IDLE, SessionState.NOT_STARTED], ids=str
)
@pytest.mark.parametrize(("pr", "expected"), LADDER)
def test_pr_ladder(soft_state: SessionState, pr: PRFacts, expected: SessionStatus) -> None:
    assert derive_status(lifecycle(soft_state), pr) is expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [(SessionState.WORKING, SessionStatus.WORKING), (SessionState.IDLE, SessionStatus.IDLE)],
    ids=str,
)
def test_closed_pr_falls_through_even_with_failing_ci(
    state: SessionState, expected: SessionStatus
) -> None:
    pr = open_pr(closed=True, ci=CIState.FAILING, review=ReviewDecision.APPROVED)
    assert derive_status(lifecycle(state), pr) is expected


def test_merged_pr_beats_the_ladder_on_a_working_session() -> None:
    pr = open_pr(merged=True, ci=CIState.FAILING)
    assert derive_status(lifecycle(SessionState.WORKING), pr) is SessionStatus.MERGED


def test_pr_flags_without_exists_mean_no_pr() -> None:
    ghost = PRFacts(exists=False, merged=True, ci=CIState.FAILING)
    assert derive_status(lifecycle(SessionState.IDLE), ghost) is SessionStatus.IDLE


pr_facts = models(PRFacts, url=st.just(OPEN_PR.url), number=st.integers(0, 10_000))
lifecycles = models(Lifecycle)


@given(lc=lifecycles, pr=pr_facts)
def test_derive_status_is_total(lc: Lifecycle, pr: PRFacts) -> None:
    assert isinstance(derive_status(lc, pr), SessionStatus)


@given(lc=lifecycles, pr=pr_facts)
def test_pr_matters_only_for_working_idle_and_spawning(lc: Lifecycle, pr: PRFacts) -> None:
    if lc.state not in (SessionState.WORKING, SessionState.IDLE, SessionState.NOT_STARTED):
        assert derive_status(lc, pr) is derive_status(lc, NO_PR)


@given(lc=lifecycles, pr=pr_facts)
def test_liveness_never_changes_the_status(lc: Lifecycle, pr: PRFacts) -> None:
    flipped = Lifecycle(
        state=lc.state, termination_reason=lc.termination_reason, is_alive=not lc.is_alive
    )
    assert derive_status(lc, pr) is derive_status(flipped, pr)
