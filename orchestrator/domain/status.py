"""The display status: derived on every read from the lifecycle and the PR facts, never
persisted (docs/behaviour.md, "Derived status"). Pure and total; the first matching rule
wins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

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

# States whose status ignores any PR: what the agent or its runtime is doing comes first.
_STATE_STATUS: Final[Mapping[SessionState, SessionStatus]] = {
    SessionState.DONE: SessionStatus.DONE,
    SessionState.NEEDS_INPUT: SessionStatus.NEEDS_INPUT,
    SessionState.STUCK: SessionStatus.STUCK,
    SessionState.DETECTING: SessionStatus.DETECTING,
}

# ``killed`` is a human's doing only: an agent that died on its own has ``exited``. A merged
# session shows ``merged`` until its cleanup makes it ``done``.
_TERMINATED_STATUS: Final[Mapping[TerminationReason, SessionStatus]] = {
    TerminationReason.MANUALLY_KILLED: SessionStatus.KILLED,
    TerminationReason.RUNTIME_LOST: SessionStatus.EXITED,
    TerminationReason.AGENT_PROCESS_EXITED: SessionStatus.EXITED,
    TerminationReason.AUTO_CLEANUP: SessionStatus.CLEANUP,
    TerminationReason.PR_MERGED: SessionStatus.MERGED,
    TerminationReason.ERROR_IN_PROCESS: SessionStatus.ERRORED,
    TerminationReason.PROBE_FAILURE: SessionStatus.ERRORED,
}


# Enum members bound once for the functions below (docs/design.md, "Hot path").
_TERMINATED: Final = SessionState.TERMINATED
_NOT_STARTED: Final = SessionState.NOT_STARTED
_IDLE: Final = SessionState.IDLE
_CI_FAILING: Final = CIState.FAILING
_MERGEABILITY_MERGEABLE: Final = Mergeability.MERGEABLE
_REVIEW_APPROVED: Final = ReviewDecision.APPROVED
_REVIEW_CHANGES_REQUESTED: Final = ReviewDecision.CHANGES_REQUESTED
_REVIEW_REQUIRED: Final = ReviewDecision.REVIEW_REQUIRED
_STATUS_SPAWNING: Final = SessionStatus.SPAWNING
_STATUS_WORKING: Final = SessionStatus.WORKING
_STATUS_IDLE: Final = SessionStatus.IDLE
_STATUS_TERMINATED: Final = SessionStatus.TERMINATED
_STATUS_MERGED: Final = SessionStatus.MERGED
_STATUS_CI_FAILED: Final = SessionStatus.CI_FAILED
_STATUS_DRAFT: Final = SessionStatus.DRAFT
_STATUS_CHANGES_REQUESTED: Final = SessionStatus.CHANGES_REQUESTED
_STATUS_MERGEABLE: Final = SessionStatus.MERGEABLE
_STATUS_APPROVED: Final = SessionStatus.APPROVED
_STATUS_REVIEW_PENDING: Final = SessionStatus.REVIEW_PENDING
_STATUS_PR_OPEN: Final = SessionStatus.PR_OPEN


def derive_status(lifecycle: Lifecycle, pr: PRFacts) -> SessionStatus:
    """What a person sees for a session. ``pr`` is the session's chosen PR (or none)."""
    state_status = _STATE_STATUS.get(lifecycle.state)
    if state_status is not None:
        return state_status
    if lifecycle.state is _TERMINATED:
        return _TERMINATED_STATUS.get(lifecycle.termination_reason, _STATUS_TERMINATED)
    if pr.exists and pr.merged:
        return _STATUS_MERGED
    if pr.exists and not pr.closed:
        return _pr_status(pr)  # even before the agent's first report: the PR is news
    # A closed, unmerged PR (or none) leaves the agent's own soft state.
    state = lifecycle.state
    if state is _NOT_STARTED:
        return _STATUS_SPAWNING
    if state is _IDLE:
        return _STATUS_IDLE
    return _STATUS_WORKING


def _pr_status(pr: PRFacts) -> SessionStatus:
    """The ladder for an open or draft PR: what the agent or a human must do next."""
    if pr.ci is _CI_FAILING:
        return _STATUS_CI_FAILED  # even on a draft: the agent has work to do
    if pr.draft:
        return _STATUS_DRAFT
    if pr.review is _REVIEW_CHANGES_REQUESTED or pr.review_comments:
        return _STATUS_CHANGES_REQUESTED
    if pr.mergeability is _MERGEABILITY_MERGEABLE:
        return _STATUS_MERGEABLE
    if pr.review is _REVIEW_APPROVED:
        return _STATUS_APPROVED
    if pr.review is _REVIEW_REQUIRED:
        return _STATUS_REVIEW_PENDING
    return _STATUS_PR_OPEN
