"""The display status: derived on every read from the lifecycle and the PR facts, never
persisted (reference §1.5). Pure and total; the first matching rule wins."""

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
    SessionState.NOT_STARTED: SessionStatus.SPAWNING,
}

_TERMINATED_STATUS: Final[Mapping[TerminationReason, SessionStatus]] = {
    TerminationReason.MANUALLY_KILLED: SessionStatus.KILLED,
    TerminationReason.RUNTIME_LOST: SessionStatus.KILLED,
    TerminationReason.AGENT_PROCESS_EXITED: SessionStatus.KILLED,
    TerminationReason.AUTO_CLEANUP: SessionStatus.CLEANUP,
    TerminationReason.PR_MERGED: SessionStatus.CLEANUP,
    TerminationReason.ERROR_IN_PROCESS: SessionStatus.ERRORED,
    TerminationReason.PROBE_FAILURE: SessionStatus.ERRORED,
}


def derive_status(lifecycle: Lifecycle, pr: PRFacts) -> SessionStatus:
    """What a person sees for a session. ``pr`` is the session's chosen PR (or none)."""
    state_status = _STATE_STATUS.get(lifecycle.state)
    if state_status is not None:
        return state_status
    if lifecycle.state is SessionState.TERMINATED:
        return _TERMINATED_STATUS.get(lifecycle.termination_reason, SessionStatus.TERMINATED)
    if pr.exists and pr.merged:
        return SessionStatus.MERGED
    if pr.exists and not pr.closed:
        return _pr_status(pr)
    # A closed, unmerged PR (or none) leaves the agent's own soft state.
    if lifecycle.state is SessionState.IDLE:
        return SessionStatus.IDLE
    return SessionStatus.WORKING


def _pr_status(pr: PRFacts) -> SessionStatus:
    """The ladder for an open or draft PR: what the agent or a human must do next."""
    if pr.ci is CIState.FAILING:
        return SessionStatus.CI_FAILED  # even on a draft: the agent has work to do
    if pr.draft:
        return SessionStatus.DRAFT
    if pr.review is ReviewDecision.CHANGES_REQUESTED or pr.review_comments:
        return SessionStatus.CHANGES_REQUESTED
    if pr.mergeability is Mergeability.MERGEABLE:
        return SessionStatus.MERGEABLE
    if pr.review is ReviewDecision.APPROVED:
        return SessionStatus.APPROVED
    if pr.review is ReviewDecision.REVIEW_REQUIRED:
        return SessionStatus.REVIEW_PENDING
    return SessionStatus.PR_OPEN
