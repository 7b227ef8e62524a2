"""The reaction planner: which outbox items a session turn commits, and how the trackers change.

Pure. ``plan_reactions`` plans one turn: a human's kill or spawn clears the slate; a
session's end pages once; a PR observation may nudge the agent with failing CI output
or new review comments, or merge the PR when ``approved-and-green`` says ``auto-merge``;
and every turn settles the entry reaction (fire once on entry, re-arm on leaving). Turns
that can move nothing but the entry reaction take a lean path (``plan_entry_only``) that
gives the same plan without building the general planner.
``plan_escalation`` is what a due ``escalateAfter`` deadline does.

Trackers are the only memory: what fired, what was sent, whether a human was paged. They
are committed with the transition, so a restart never repeats a nudge or a page
(docs/behaviour.md, "Reactions").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Final

import msgspec

from orchestrator.domain.merging import auto_merge_item
from orchestrator.domain.model import (
    ESCALATED_EVENT_TYPE,
    TERMINAL_STATES,
    CheckStatus,
    CIState,
    Lifecycle,
    Mergeability,
    PRFacts,
    Priority,
    PRObservation,
    ProjectId,
    ReactionAction,
    ReactionKey,
    ReviewDecision,
    SessionId,
    SessionState,
    TerminationReason,
    Trigger,
)
from orchestrator.domain.reaction_policy import ReactionPolicy
from orchestrator.domain.reaction_text import (
    ci_nudge_message,
    escalation_message,
    review_nudge_message,
)
from orchestrator.domain.records import OutboxItem, Tracker
from orchestrator.domain.timestamps import utc_text

# Enum members, and sets and tables of them, bound once (docs/design.md, "Hot path").
_TRIGGER_PR: Final = Trigger.PR
# Turns that can move nothing but the entry reaction: feedback rides only on PR observations.
ENTRY_ONLY_TRIGGERS: Final = frozenset({Trigger.RUNTIME, Trigger.ACTIVITY, Trigger.TIMER})
# A human ended or (re)started the session: no reaction, and a clean slate.
_CLEAN_SLATE_TRIGGERS: Final = frozenset({Trigger.KILL, Trigger.SPAWN})
# The states that call for a reaction whatever the PR says, and the one that does when no
# PR does.
_STATE_REACTIONS: Final = {
    SessionState.STUCK: ReactionKey.AGENT_STUCK,
    SessionState.NEEDS_INPUT: ReactionKey.AGENT_NEEDS_INPUT,
}
# A stuck agent or one waiting for input cannot act on feedback: the human is paged instead.
_NO_FEEDBACK_STATES: Final = frozenset(_STATE_REACTIONS)
_NO_PR_REACTIONS: Final = {SessionState.IDLE: ReactionKey.AGENT_IDLE}
_TERMINAL_REACTIONS: Final = {
    TerminationReason.RUNTIME_LOST: ReactionKey.AGENT_EXITED,
    TerminationReason.AGENT_PROCESS_EXITED: ReactionKey.AGENT_EXITED,
    TerminationReason.PROBE_FAILURE: ReactionKey.AGENT_EXITED,
    TerminationReason.ERROR_IN_PROCESS: ReactionKey.AGENT_EXITED,
    TerminationReason.PR_MERGED: ReactionKey.PR_MERGED,
}
_EVENT_TYPES: Final = {key: key.event_type for key in ReactionKey}  # formatted once, not per item
_REACTION_CI_FAILED: Final = ReactionKey.CI_FAILED
_REACTION_REVIEW_COMMENTS: Final = ReactionKey.REVIEW_COMMENTS
_REACTION_MERGE_CONFLICTS: Final = ReactionKey.MERGE_CONFLICTS
_REACTION_APPROVED_AND_GREEN: Final = ReactionKey.APPROVED_AND_GREEN
_REACTION_PR_CLOSED: Final = ReactionKey.PR_CLOSED
_ACTION_NOTIFY: Final = ReactionAction.NOTIFY
_PRIORITY_URGENT: Final = Priority.URGENT
_CI_FAILING: Final = CIState.FAILING
_MERGEABILITY_CONFLICTING: Final = Mergeability.CONFLICTING
_MERGEABILITY_MERGEABLE: Final = Mergeability.MERGEABLE
_REVIEW_APPROVED: Final = ReviewDecision.APPROVED
_REVIEW_CHANGES_REQUESTED: Final = ReviewDecision.CHANGES_REQUESTED
_CHECK_PASSED: Final = CheckStatus.PASSED
_CHECK_FAILED: Final = CheckStatus.FAILED

ENTRY_TRACKER: Final = "entry"


def terminal_reaction(reason: TerminationReason) -> ReactionKey | None:
    """The reaction a session's end calls for. Human kills call for none."""
    return _TERMINAL_REACTIONS.get(reason)


def has_review_feedback(pr: PRFacts) -> bool:
    return pr.review is _REVIEW_CHANGES_REQUESTED or pr.review_comments


def entry_reaction(lifecycle: Lifecycle, pr: PRFacts) -> ReactionKey | None:
    """The state-entry reaction; first match wins (docs/behaviour.md, "Reactions")."""
    state = lifecycle.state
    if state in TERMINAL_STATES:
        return _TERMINAL_REACTIONS.get(lifecycle.termination_reason)
    reaction = _STATE_REACTIONS.get(state)
    if reaction is not None:
        return reaction
    if pr.exists and (pr.closed or pr.merged):
        return _REACTION_PR_CLOSED if not pr.merged else None
    if pr.exists:
        if pr.ci is _CI_FAILING or has_review_feedback(pr):
            return None  # the feedback path owns it
        if pr.mergeability is _MERGEABILITY_CONFLICTING:
            return _REACTION_MERGE_CONFLICTS
        if pr.mergeability is _MERGEABILITY_MERGEABLE or pr.review is _REVIEW_APPROVED:
            return _REACTION_APPROVED_AND_GREEN
    return _NO_PR_REACTIONS.get(state)


class ReactionPlan(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a turn commits besides the session row: outbox items and tracker changes."""

    outbox: tuple[OutboxItem, ...] = ()
    upsert: tuple[Tracker, ...] = ()
    delete: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.outbox or self.upsert or self.delete)


class _Planner:
    """Accumulates tracker changes and outbox items for one session turn."""

    def __init__(
        self,
        *,
        session_id: SessionId,
        project_id: ProjectId,
        trackers: Mapping[str, Tracker],
        policy: ReactionPolicy,
        now: datetime,
    ) -> None:
        self.session_id = session_id
        self.project_id = project_id
        self.policy = policy
        self.now = now
        self.trackers = dict(trackers)
        self.original = trackers
        self.outbox: list[OutboxItem] = []

    def emit(
        self,
        key: ReactionKey,
        episode: datetime | None,
        what: str,
        message: str,
        *,
        escalation: bool = False,
    ) -> None:
        self.outbox.append(
            _outbox_item(
                self.session_id,
                self.project_id,
                self.policy,
                key,
                _dedup_key(episode, self.session_id, what),
                message,
                escalation=escalation,
            )
        )

    def plan(self) -> ReactionPlan:
        original = self.original
        upsert = tuple(
            tracker for key, tracker in self.trackers.items() if original.get(key) != tracker
        )
        delete = tuple(key for key in original if key not in self.trackers)
        if not (upsert or delete or self.outbox):
            return NO_REACTIONS
        return ReactionPlan(outbox=tuple(self.outbox), upsert=upsert, delete=delete)


NO_REACTIONS: Final = ReactionPlan()


def _outbox_item(
    session_id: SessionId,
    project_id: ProjectId,
    policy: ReactionPolicy,
    key: ReactionKey,
    dedup_key: str,
    message: str,
    *,
    escalation: bool = False,
) -> OutboxItem:
    config = policy.reactions[key]  # not ``policy[key]``: that is a Python-level call
    if escalation:
        action, event_type, priority = _ACTION_NOTIFY, ESCALATED_EVENT_TYPE, _PRIORITY_URGENT
        message = escalation_message(key)
    else:
        # ``auto: false`` turns an action on the agent into a note to the human.
        action = config.action if config.auto else _ACTION_NOTIFY
        event_type, priority = _EVENT_TYPES[key], config.priority
    return OutboxItem(
        dedup_key=dedup_key,
        session_id=session_id,
        project_id=project_id,
        action=action,
        reaction=key,
        event_type=event_type,
        priority=priority,
        message=message,
    )


def _dedup_key(episode: datetime | None, session_id: SessionId, what: str) -> str:
    """``<episode start>/<session>/<what>``: the same reaction in the same episode always
    gets the same key. Time first, so the outbox's unique index on it grows at its end
    rather than at a page per session (a random-page write per reaction otherwise)."""
    return f"{utc_text(episode) if episode is not None else '-'}/{session_id}/{what}"


def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def plan_reactions(
    *,
    session_id: SessionId,
    project_id: ProjectId,
    trigger: Trigger,
    before: Lifecycle,
    after: Lifecycle,
    pr: PRFacts,
    observation: PRObservation | None,
    check_history: Mapping[str, Sequence[CheckStatus]],
    trackers: Mapping[str, Tracker],
    policy: ReactionPolicy,
    now: datetime,
) -> ReactionPlan:
    """Decide the reactions one session turn commits.

    ``pr`` are the session's PR facts after this turn; ``observation`` is the PR
    observation the turn applied, if any; ``check_history`` holds, per check name, that
    check's recent statuses on ``pr.url`` newest first, this observation's run included.
    Turns that can move only the entry reaction take the lean planner: the per-signal path.
    """
    if trigger in ENTRY_ONLY_TRIGGERS and after.state not in TERMINAL_STATES:
        return plan_entry_only(session_id, project_id, after, pr, trackers, policy, now)
    return plan_in_full(
        session_id=session_id,
        project_id=project_id,
        trigger=trigger,
        before=before,
        after=after,
        pr=pr,
        observation=observation,
        check_history=check_history,
        trackers=trackers,
        policy=policy,
        now=now,
    )


def plan_in_full(
    *,
    session_id: SessionId,
    project_id: ProjectId,
    trigger: Trigger,
    before: Lifecycle,
    after: Lifecycle,
    pr: PRFacts,
    observation: PRObservation | None,
    check_history: Mapping[str, Sequence[CheckStatus]],
    trackers: Mapping[str, Tracker],
    policy: ReactionPolicy,
    now: datetime,
) -> ReactionPlan:
    """The general planner, right for every turn (``plan_reactions`` says what it takes)."""
    planner = _Planner(
        session_id=session_id, project_id=project_id, trackers=trackers, policy=policy, now=now
    )
    if trigger in _CLEAN_SLATE_TRIGGERS:
        planner.trackers.clear()
        return planner.plan()
    if after.state in TERMINAL_STATES:
        if before.state not in TERMINAL_STATES:
            _plan_entry(planner, after, pr)
        planner.trackers.clear()  # a terminal session reacts to nothing more
        return planner.plan()
    feedback_allowed = pr.is_open and after.state not in _NO_FEEDBACK_STATES
    # Only a PR observation carries feedback; runtime, activity and timer turns never
    # re-send it.
    if (
        trigger is _TRIGGER_PR
        and observation is not None
        and observation.fetched
        and observation.url == pr.url
    ):
        _release_passed_checks(planner, observation)
        if feedback_allowed:
            _plan_ci(planner, observation, check_history)
            _plan_review(planner, observation)
        if policy.auto_merges:
            merge = auto_merge_item(session_id, project_id, observation, policy)
            if merge is not None:
                planner.outbox.append(merge)
    _plan_entry(planner, after, pr)
    return planner.plan()


def plan_entry_only(
    session_id: SessionId,
    project_id: ProjectId,
    after: Lifecycle,
    pr: PRFacts,
    trackers: Mapping[str, Tracker],
    policy: ReactionPolicy,
    now: datetime,
) -> ReactionPlan:
    """The lean planner: ``plan_in_full``'s plan for a live session's turn whose trigger is
    in ``ENTRY_ONLY_TRIGGERS``, which can only fire or re-arm the entry reaction."""
    key = entry_reaction(after, pr)
    current = trackers.get(ENTRY_TRACKER)
    steady = current.reaction is key if current is not None else key is None
    if steady:
        return NO_REACTIONS  # the common case: nothing to fire, nothing to re-arm
    if key is None:
        return ReactionPlan(delete=(ENTRY_TRACKER,))
    tracker = Tracker(key=ENTRY_TRACKER, reaction=key, attempts=1, first_at=now)
    if key is _REACTION_APPROVED_AND_GREEN and policy.auto_merges:
        return ReactionPlan(upsert=(tracker,))  # the merge (or its refusal) is the news
    dedup_key = _dedup_key(now, session_id, f"entry/{key}")
    message = policy.reactions[key].message
    item = _outbox_item(session_id, project_id, policy, key, dedup_key, message)
    return ReactionPlan(outbox=(item,), upsert=(tracker,))


def _plan_entry(planner: _Planner, lifecycle: Lifecycle, pr: PRFacts) -> None:
    """An entry reaction fires once on entry; leaving re-arms it."""
    key = entry_reaction(lifecycle, pr)
    current = planner.trackers.get(ENTRY_TRACKER)
    if current is not None and current.reaction is key:
        return
    planner.trackers.pop(ENTRY_TRACKER, None)
    if key is None:
        return
    tracker = Tracker(key=ENTRY_TRACKER, reaction=key, attempts=1, first_at=planner.now)
    planner.trackers[ENTRY_TRACKER] = tracker
    if key is _REACTION_APPROVED_AND_GREEN and planner.policy.auto_merges:
        return  # the merge (or its refusal) is the news
    planner.emit(key, planner.now, f"entry/{key}", planner.policy[key].message)


def _ci_tracker_key(pr_url: str, check: str) -> str:
    return f"ci:{pr_url}:{check}"


def _release_passed_checks(planner: _Planner, observation: PRObservation) -> None:
    """A check that passes again lifts its brake."""
    for check in observation.checks:
        if check.status is not _CHECK_PASSED:
            continue
        key = _ci_tracker_key(observation.url, check.name)
        tracker = planner.trackers.get(key)
        if tracker is not None and tracker.escalated:
            planner.trackers[key] = msgspec.structs.replace(tracker, escalated=False, attempts=0)


def ci_brake_depth(policy: ReactionPolicy) -> int:
    """How many recent runs of a check must all have failed for the CI brake to trip."""
    return policy.retries(_REACTION_CI_FAILED) + 1


def ci_tracker_seen(trackers: Mapping[str, Tracker], pr_url: str, check: str) -> tuple[str, ...]:
    """The commits of a check already acted on (nudged, or passed over while braked)."""
    tracker = trackers.get(_ci_tracker_key(pr_url, check))
    return tracker.seen if tracker is not None else ()


def _plan_ci(
    planner: _Planner,
    observation: PRObservation,
    check_history: Mapping[str, Sequence[CheckStatus]],
) -> None:
    """One nudge per (PR, check, commit); when the last ``retries + 1`` runs of a check all
    failed, the brake pages a human once and stays silent until the check passes."""
    config = planner.policy[_REACTION_CI_FAILED]
    brake_depth = ci_brake_depth(planner.policy)
    handled: set[str] = set()
    for check in observation.checks:
        if check.status is not _CHECK_FAILED or check.name in handled:
            continue
        handled.add(check.name)
        key = _ci_tracker_key(observation.url, check.name)
        tracker = planner.trackers.get(key) or Tracker(
            key=key, reaction=_REACTION_CI_FAILED, first_at=planner.now
        )
        if check.commit in tracker.seen:
            continue  # re-polling the same commit never nudges twice
        seen = (*tracker.seen, check.commit)
        check_key = f"ci/{observation.url}/{check.name}/{check.commit}"
        if tracker.escalated:
            planner.trackers[key] = msgspec.structs.replace(tracker, seen=seen)
            continue  # silent until the check passes again
        recent = list(check_history.get(check.name, ()))[:brake_depth]
        if len(recent) >= brake_depth and all(s is _CHECK_FAILED for s in recent):
            planner.trackers[key] = msgspec.structs.replace(tracker, seen=seen, escalated=True)
            planner.emit(
                _REACTION_CI_FAILED,
                tracker.first_at,
                f"{check_key}/escalated",
                "",
                escalation=True,
            )
            continue
        planner.trackers[key] = msgspec.structs.replace(
            tracker, seen=seen, attempts=tracker.attempts + 1
        )
        message = ci_nudge_message(config.message, check.log_tail)
        planner.emit(_REACTION_CI_FAILED, tracker.first_at, check_key, message)


_CHANGES_REQUESTED_MARK: Final = "@changes_requested"


def _plan_review(planner: _Planner, observation: PRObservation) -> None:
    """Send each unresolved comment once; at most ``retries`` nudges per PR, then a page."""
    config = planner.policy[_REACTION_REVIEW_COMMENTS]
    budget = planner.policy.retries(_REACTION_REVIEW_COMMENTS)
    key = f"review:{observation.url}"
    tracker = planner.trackers.get(key) or Tracker(
        key=key, reaction=_REACTION_REVIEW_COMMENTS, first_at=planner.now
    )
    seen = list(tracker.seen)
    unresolved = [c for c in observation.comments if not c.resolved]
    fresh = [c for c in unresolved if c.id not in seen]
    changes_requested = observation.review is _REVIEW_CHANGES_REQUESTED
    if not changes_requested and _CHANGES_REQUESTED_MARK in seen:
        seen.remove(_CHANGES_REQUESTED_MARK)  # a later "changes requested" is news again
    bare = changes_requested and not unresolved and _CHANGES_REQUESTED_MARK not in seen
    if bare:
        seen.append(_CHANGES_REQUESTED_MARK)
    seen.extend(c.id for c in fresh)
    if not fresh and not bare:
        if tuple(seen) != tracker.seen and key in planner.trackers:
            planner.trackers[key] = msgspec.structs.replace(tracker, seen=tuple(seen))
        return
    review_key = f"review/{observation.url}"
    if tracker.escalated:
        planner.trackers[key] = msgspec.structs.replace(tracker, seen=tuple(seen))
        return
    if tracker.attempts >= budget:
        planner.trackers[key] = msgspec.structs.replace(tracker, seen=tuple(seen), escalated=True)
        planner.emit(
            _REACTION_REVIEW_COMMENTS,
            tracker.first_at,
            f"{review_key}/escalated",
            "",
            escalation=True,
        )
        return
    attempts = tracker.attempts + 1
    planner.trackers[key] = msgspec.structs.replace(tracker, seen=tuple(seen), attempts=attempts)
    message = review_nudge_message(config.message, fresh)
    digest = _digest(c.id for c in fresh) if fresh else "changes-requested"
    planner.emit(
        _REACTION_REVIEW_COMMENTS, tracker.first_at, f"{review_key}/{attempts}/{digest}", message
    )


def entry_escalation_deadline(
    trackers: Mapping[str, Tracker], policy: ReactionPolicy
) -> datetime | None:
    """When the current entry reaction escalates if the session is still in it."""
    entry = trackers.get(ENTRY_TRACKER)
    if entry is None or entry.escalated or entry.first_at is None:
        return None
    after = policy[entry.reaction].escalate_after
    return entry.first_at + after if after is not None else None


def plan_escalation(
    *,
    session_id: SessionId,
    project_id: ProjectId,
    trackers: Mapping[str, Tracker],
    policy: ReactionPolicy,
    now: datetime,
) -> ReactionPlan:
    """A due ``escalateAfter`` deadline: page a human once if the entry still holds."""
    planner = _Planner(
        session_id=session_id, project_id=project_id, trackers=trackers, policy=policy, now=now
    )
    deadline = entry_escalation_deadline(trackers, policy)
    entry = trackers.get(ENTRY_TRACKER)
    if deadline is None or entry is None or now < deadline:
        return planner.plan()
    planner.trackers[ENTRY_TRACKER] = msgspec.structs.replace(entry, escalated=True)
    planner.emit(
        entry.reaction, entry.first_at, f"entry/{entry.reaction}/escalated", "", escalation=True
    )
    return planner.plan()
