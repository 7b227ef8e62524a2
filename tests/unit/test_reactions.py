"""The pure reaction planner: entry reactions, CI and review feedback, escalations
(docs/behaviour.md, "Reactions"; docs/design.md, D-3 to D-6)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from orchestrator.domain.model import (
    ESCALATED_EVENT_TYPE,
    Activity,
    ActivityState,
    CheckStatus,
    CIState,
    Lifecycle,
    Mergeability,
    PRCheck,
    PRComment,
    PRFacts,
    Priority,
    PRObservation,
    ReactionAction,
    ReactionKey,
    ReviewDecision,
    SessionState,
    TerminationReason,
    Trigger,
)
from orchestrator.domain.reaction_planner import (
    ENTRY_TRACKER,
    ReactionPlan,
    ci_brake_depth,
    entry_escalation_deadline,
    entry_reaction,
    plan_escalation,
    plan_reactions,
    terminal_reaction,
)
from orchestrator.domain.reaction_policy import (
    DEFAULT_REACTIONS,
    ReactionPolicy,
    load_reaction_policy,
)
from orchestrator.domain.reaction_text import escalation_message
from orchestrator.domain.records import OutboxItem, Tracker

T0 = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
PR_URL = "https://github.com/acme/app/pull/7"


def lc(state: SessionState, reason: TerminationReason = TerminationReason.NONE) -> Lifecycle:
    return Lifecycle(state=state, termination_reason=reason, is_alive=not state.is_terminal)


WORKING = lc(SessionState.WORKING)
IDLE = lc(SessionState.IDLE)
NO_PR = PRFacts()


def open_pr(**changes: object) -> PRFacts:
    return msgspec.structs.replace(PRFacts(exists=True, url=PR_URL, number=7), **changes)


def observation(
    *,
    checks: Sequence[PRCheck] = (),
    comments: Sequence[PRComment] = (),
    **changes: object,
) -> PRObservation:
    base = PRObservation(url=PR_URL, number=7, checks=tuple(checks), comments=tuple(comments))
    return msgspec.structs.replace(base, **changes)


def failing(commit: str, log: str = "boom", name: str = "test") -> PRCheck:
    return PRCheck(name=name, commit=commit, status=CheckStatus.FAILED, log_tail=log)


def passing(commit: str, name: str = "test") -> PRCheck:
    return PRCheck(name=name, commit=commit, status=CheckStatus.PASSED)


def comment(cid: str, body: str = "fix this", **changes: object) -> PRComment:
    return msgspec.structs.replace(
        PRComment(id=cid, author="alice", file="app.py", line=3, body=body), **changes
    )


class Session:
    """Drives the planner over several turns the way the engine will: trackers persist."""

    def __init__(self, policy: ReactionPolicy | None = None) -> None:
        self.policy = policy or ReactionPolicy()
        self.trackers: dict[str, Tracker] = {}
        self.lifecycle = WORKING
        self.outbox: list[OutboxItem] = []
        self.history: dict[str, list[CheckStatus]] = {}
        self.now = T0

    def _apply(self, plan: ReactionPlan) -> list[OutboxItem]:
        for key in plan.delete:
            self.trackers.pop(key, None)
        for tracker in plan.upsert:
            self.trackers[tracker.key] = tracker
        known = {item.dedup_key for item in self.outbox}
        fresh = [item for item in plan.outbox if item.dedup_key not in known]
        self.outbox.extend(fresh)
        return fresh

    def turn(
        self,
        trigger: Trigger,
        after: Lifecycle,
        pr: PRFacts = NO_PR,
        obs: PRObservation | None = None,
        *,
        advance: timedelta = timedelta(seconds=5),
    ) -> list[OutboxItem]:
        self.now += advance
        if obs is not None:
            for check in obs.checks:
                self.history.setdefault(check.name, []).insert(0, check.status)
        plan = plan_reactions(
            session_id="mer-1",
            project_id="mer",
            trigger=trigger,
            before=self.lifecycle,
            after=after,
            pr=pr,
            observation=obs,
            check_history=self.history,
            trackers=self.trackers,
            policy=self.policy,
            now=self.now,
        )
        self.lifecycle = after
        return self._apply(plan)

    def pr(self, obs: PRObservation, after: Lifecycle | None = None) -> list[OutboxItem]:
        return self.turn(Trigger.PR, after or self.lifecycle, obs.facts(), obs)

    def tick(self, at: datetime) -> list[OutboxItem]:
        self.now = at
        plan = plan_escalation(
            session_id="mer-1",
            project_id="mer",
            trackers=self.trackers,
            policy=self.policy,
            now=at,
        )
        return self._apply(plan)


def kinds(items: Sequence[OutboxItem]) -> list[tuple[ReactionAction, str]]:
    return [(i.action, i.event_type) for i in items]


# --- entry selection (the Go backend's reactionFor) ---------------------------------------

ENTRY_ROWS = [
    ("stuck", lc(SessionState.STUCK), open_pr(ci=CIState.FAILING), ReactionKey.AGENT_STUCK),
    ("needs input", lc(SessionState.NEEDS_INPUT), NO_PR, ReactionKey.AGENT_NEEDS_INPUT),
    ("closed pr", IDLE, open_pr(closed=True), ReactionKey.PR_CLOSED),
    ("merged pr", IDLE, open_pr(merged=True), None),
    ("ci failing is feedback", IDLE, open_pr(ci=CIState.FAILING), None),
    ("review is feedback", WORKING, open_pr(review=ReviewDecision.CHANGES_REQUESTED), None),
    ("comments are feedback", WORKING, open_pr(review_comments=True), None),
    ("conflict", WORKING, open_pr(mergeability=Mergeability.CONFLICTING), ReactionKey.MERGE_CONFLICTS),
    ("mergeable", WORKING, open_pr(mergeability=Mergeability.MERGEABLE), ReactionKey.APPROVED_AND_GREEN),
    ("approved", IDLE, open_pr(review=ReviewDecision.APPROVED), ReactionKey.APPROVED_AND_GREEN),
    ("idle", IDLE, NO_PR, ReactionKey.AGENT_IDLE),
    ("idle with plain pr", IDLE, open_pr(), ReactionKey.AGENT_IDLE),
    ("working", WORKING, NO_PR, None),
    ("not started", lc(SessionState.NOT_STARTED), NO_PR, None),
    ("detecting", lc(SessionState.DETECTING), NO_PR, None),
    ("runtime lost", lc(SessionState.TERMINATED, TerminationReason.RUNTIME_LOST), NO_PR, ReactionKey.AGENT_EXITED),
    ("merged session", lc(SessionState.TERMINATED, TerminationReason.PR_MERGED), NO_PR, ReactionKey.PR_MERGED),
    ("killed", lc(SessionState.TERMINATED, TerminationReason.MANUALLY_KILLED), NO_PR, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("lifecycle", "pr", "expected"), [r[1:] for r in ENTRY_ROWS], ids=[r[0] for r in ENTRY_ROWS]
)
def test_entry_reaction(lifecycle: Lifecycle, pr: PRFacts, expected: ReactionKey | None) -> None:
    assert entry_reaction(lifecycle, pr) is expected


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (TerminationReason.RUNTIME_LOST, ReactionKey.AGENT_EXITED),
        (TerminationReason.AGENT_PROCESS_EXITED, ReactionKey.AGENT_EXITED),
        (TerminationReason.PROBE_FAILURE, ReactionKey.AGENT_EXITED),
        (TerminationReason.ERROR_IN_PROCESS, ReactionKey.AGENT_EXITED),
        (TerminationReason.PR_MERGED, ReactionKey.PR_MERGED),
        (TerminationReason.MANUALLY_KILLED, None),
        (TerminationReason.AUTO_CLEANUP, None),
        (TerminationReason.NONE, None),
    ],
)
def test_terminal_reaction(reason: TerminationReason, expected: ReactionKey | None) -> None:
    assert terminal_reaction(reason) is expected


# --- D-5 entry reactions ------------------------------------------------------------------


def test_idle_nudges_once_then_escalates_once_after_15_minutes() -> None:
    """As the Go backend: one nudge; none at 14 min; one escalation at 15; none at 30."""
    s = Session()
    fired = s.turn(Trigger.ACTIVITY, IDLE)
    assert kinds(fired) == [(ReactionAction.SEND_TO_AGENT, "reaction.agent-idle")]
    assert fired[0].message == DEFAULT_REACTIONS[ReactionKey.AGENT_IDLE].message
    entered = s.now
    assert s.turn(Trigger.ACTIVITY, IDLE) == []  # steady state does not re-fire
    assert entry_escalation_deadline(s.trackers, s.policy) == entered + timedelta(minutes=15)
    assert s.tick(entered + timedelta(minutes=14)) == []
    paged = s.tick(entered + timedelta(minutes=15))
    assert kinds(paged) == [(ReactionAction.NOTIFY, ESCALATED_EVENT_TYPE)]
    assert paged[0].priority is Priority.URGENT
    assert paged[0].message == escalation_message(ReactionKey.AGENT_IDLE)
    assert s.tick(entered + timedelta(minutes=30)) == []
    assert entry_escalation_deadline(s.trackers, s.policy) is None


def test_leaving_rearms_and_reentry_nudges_again() -> None:
    s = Session()
    first = s.turn(Trigger.ACTIVITY, IDLE)
    assert s.turn(Trigger.ACTIVITY, WORKING) == []
    assert ENTRY_TRACKER not in s.trackers
    second = s.turn(Trigger.ACTIVITY, IDLE)
    assert len(first) == len(second) == 1
    assert first[0].dedup_key != second[0].dedup_key


def test_conflict_then_unknown_cancels_the_escalation() -> None:
    s = Session()
    conflict = open_pr(mergeability=Mergeability.CONFLICTING)
    assert kinds(s.turn(Trigger.PR, WORKING, conflict)) == [
        (ReactionAction.SEND_TO_AGENT, "reaction.merge-conflicts")
    ]
    s.turn(Trigger.PR, WORKING, open_pr())
    assert s.tick(T0 + timedelta(hours=1)) == []


def test_a_timer_turn_into_stuck_pages_once() -> None:
    """The detecting cap's timer moves a quiet session to stuck: one page, then steady."""
    s = Session()
    s.lifecycle = lc(SessionState.DETECTING)
    stuck = lc(SessionState.STUCK)
    assert [i.event_type for i in s.turn(Trigger.TIMER, stuck)] == ["reaction.agent-stuck"]
    assert s.turn(Trigger.TIMER, stuck) == []
    assert s.trackers[ENTRY_TRACKER].reaction is ReactionKey.AGENT_STUCK


def test_needs_input_pages_once_then_stuck_pages() -> None:
    s = Session()
    needs = lc(SessionState.NEEDS_INPUT)
    pages = [item for _ in range(3) for item in s.turn(Trigger.ACTIVITY, needs)]
    assert [p.event_type for p in pages] == ["reaction.agent-needs-input"]
    stuck = s.turn(Trigger.ACTIVITY, lc(SessionState.STUCK))
    assert [p.event_type for p in stuck] == ["reaction.agent-stuck"]


def test_closed_twice_notifies_once() -> None:
    s = Session()
    closed = observation(closed=True)
    assert [p.event_type for p in s.pr(closed) + s.pr(closed)] == ["reaction.pr-closed"]


def test_approved_then_mergeable_notifies_once() -> None:
    s = Session()
    items = s.pr(observation(review=ReviewDecision.APPROVED)) + s.pr(
        observation(review=ReviewDecision.APPROVED, mergeability=Mergeability.MERGEABLE)
    )
    assert [i.event_type for i in items] == ["reaction.approved-and-green"]


def test_runtime_lost_pages_once_and_clears_trackers() -> None:
    s = Session()
    s.turn(Trigger.ACTIVITY, IDLE)
    dead = lc(SessionState.TERMINATED, TerminationReason.RUNTIME_LOST)
    assert [i.event_type for i in s.turn(Trigger.RUNTIME, dead)] == ["reaction.agent-exited"]
    assert s.trackers == {}
    assert s.turn(Trigger.RUNTIME, dead) == []  # already terminal: nothing more


def test_merge_notifies_pr_merged_once() -> None:
    s = Session()
    merged = lc(SessionState.TERMINATED, TerminationReason.PR_MERGED)
    obs = observation(merged=True)
    assert [i.event_type for i in s.pr(obs, merged)] == ["reaction.pr-merged"]
    assert s.pr(obs, merged) == []


def test_kill_and_spawn_fire_nothing_and_reset_trackers() -> None:
    s = Session()
    s.turn(Trigger.ACTIVITY, IDLE)
    killed = lc(SessionState.TERMINATED, TerminationReason.MANUALLY_KILLED)
    assert s.turn(Trigger.KILL, killed) == []
    assert s.trackers == {}
    errored = lc(SessionState.TERMINATED, TerminationReason.ERROR_IN_PROCESS)
    s.lifecycle = WORKING
    assert s.turn(Trigger.KILL, errored) == []  # spawn rollback does not notify
    assert s.turn(Trigger.SPAWN, lc(SessionState.NOT_STARTED)) == []


# --- D-3 CI -------------------------------------------------------------------------------


def test_ci_nudge_carries_the_cleaned_log_tail() -> None:
    s = Session()
    sent = s.pr(
        observation(ci=CIState.FAILING, checks=[failing("c1", "\x1b[31mFAIL\x1b[0m x\x07")])
    )
    assert kinds(sent) == [(ReactionAction.SEND_TO_AGENT, "reaction.ci-failed")]
    assert sent[0].message == (
        "CI is failing on your PR. Review the output below and push a fix."
        "\n\nFailing check: test"
        "\n\nFailing output:\nFAIL x"
    )


def test_ci_nudge_names_the_check_and_links_its_run() -> None:
    s = Session()
    check = msgspec.structs.replace(
        failing("c1", "E boom", name="lint"), url="https://ci.example/runs/7"
    )
    sent = s.pr(observation(ci=CIState.FAILING, checks=[check]))
    assert "\n\nFailing check: lint (https://ci.example/runs/7)\n\nFailing output:\nE boom" in (
        sent[0].message
    )


def test_ci_nudge_with_empty_log_still_has_the_header() -> None:
    s = Session()
    sent = s.pr(observation(ci=CIState.FAILING, checks=[failing("c1", "")]))
    assert sent[0].message.endswith("\n\nFailing output:\n")


def test_ci_repoll_of_the_same_commit_never_nudges_twice() -> None:
    s = Session()
    obs = observation(ci=CIState.FAILING, checks=[failing("c1")])
    assert len(s.pr(obs)) == 1
    s.history["test"] = [CheckStatus.FAILED]  # the store upserts: one row per commit
    for _ in range(5):
        assert s.pr(obs) == []
        s.history["test"] = [CheckStatus.FAILED]


def test_ci_brake_three_failed_runs_escalate_once_then_silent_until_pass() -> None:
    s = Session()
    events = [
        [i.event_type for i in s.pr(observation(ci=CIState.FAILING, checks=[failing(c)]))]
        for c in ("c1", "c2", "c3", "c4")
    ]
    assert events == [
        ["reaction.ci-failed"],
        ["reaction.ci-failed"],
        [ESCALATED_EVENT_TYPE],
        [],  # silent while braked
    ]
    assert s.outbox[2].message == escalation_message(ReactionKey.CI_FAILED)
    assert s.pr(observation(ci=CIState.PASSING, checks=[passing("c5")])) == []
    again = s.pr(observation(ci=CIState.FAILING, checks=[failing("c6")]))
    assert [i.event_type for i in again] == ["reaction.ci-failed"]


def test_ci_brake_depth_follows_retries() -> None:
    s = Session(load_reaction_policy({"ci-failed": {"retries": 0}}))
    first = s.pr(observation(ci=CIState.FAILING, checks=[failing("c1")]))
    assert [i.event_type for i in first] == [ESCALATED_EVENT_TYPE]


def test_each_failing_check_is_tracked_on_its_own() -> None:
    s = Session()
    obs = observation(
        ci=CIState.FAILING, checks=[failing("c1", name="lint"), failing("c1", name="test")]
    )
    assert len(s.pr(obs)) == 2
    assert set(s.trackers) >= {f"ci:{PR_URL}:lint", f"ci:{PR_URL}:test"}


def test_stuck_session_with_failing_ci_gets_no_nudge_and_one_page() -> None:
    s = Session()
    stuck = lc(SessionState.STUCK)
    obs = observation(ci=CIState.FAILING, checks=[failing("c1")])
    items = s.pr(obs, stuck) + s.pr(obs, stuck)
    assert [i.event_type for i in items] == ["reaction.agent-stuck"]


# --- D-4 review ---------------------------------------------------------------------------


def test_review_nudge_carries_only_comments_not_yet_sent() -> None:
    s = Session()
    first = s.pr(observation(comments=[comment("1", "rename x")]))
    assert len(first) == 1
    assert first[0].message == (
        "A reviewer left feedback on your PR. Address it and push.\n\n@alice on app.py:3:\nrename x"
    )
    assert s.pr(observation(comments=[comment("1", "rename x")])) == []
    second = s.pr(
        observation(comments=[comment("1", "rename x"), comment("2", "add a test", author="bot")])
    )
    assert len(second) == 1
    assert "rename x" not in second[0].message
    assert "@bot on app.py:3:\nadd a test" in second[0].message


def test_resolved_comments_are_not_sent() -> None:
    s = Session()
    assert s.pr(observation(comments=[comment("1", resolved=True)])) == []


def test_review_budget_then_one_escalation_then_silence() -> None:
    s = Session()
    events = [
        [i.event_type for i in s.pr(observation(comments=[comment(str(n))]))] for n in range(6)
    ]
    assert events == [
        ["reaction.review-comments"],
        ["reaction.review-comments"],
        ["reaction.review-comments"],
        [ESCALATED_EVENT_TYPE],
        [],
        [],
    ]


def test_review_budget_follows_retries() -> None:
    s = Session(load_reaction_policy({"review-comments": {"retries": 1}}))
    events = [
        [i.event_type for i in s.pr(observation(comments=[comment(str(n))]))] for n in range(3)
    ]
    assert events == [["reaction.review-comments"], [ESCALATED_EVENT_TYPE], []]


@pytest.mark.parametrize(
    ("key", "budget"), [(ReactionKey.CI_FAILED, 2), (ReactionKey.REVIEW_COMMENTS, 3)]
)
def test_cleared_retries_fall_back_to_the_default_budget(key: ReactionKey, budget: int) -> None:
    """``retries: null`` in the config means the default, read from the defaults table."""
    policy = load_reaction_policy({key.value: {"retries": None}})
    assert policy[key].retries is None
    assert policy.retries(key) == budget == DEFAULT_REACTIONS[key].retries
    assert ci_brake_depth(policy) == 3


def test_changes_requested_without_comments_nudges_once() -> None:
    s = Session()
    obs = observation(review=ReviewDecision.CHANGES_REQUESTED)
    sent = s.pr(obs) + s.pr(obs)
    assert [i.message for i in sent] == [DEFAULT_REACTIONS[ReactionKey.REVIEW_COMMENTS].message]


def test_runtime_activity_and_timer_turns_never_resend_review_feedback() -> None:
    """The Go backend re-sent review feedback, without its comments, on every runtime and
    activity transition."""
    s = Session()
    obs = observation(comments=[comment("1")])
    assert len(s.pr(obs)) == 1
    facts = obs.facts()
    assert s.turn(Trigger.ACTIVITY, WORKING, facts) == []
    assert s.turn(Trigger.RUNTIME, WORKING, facts) == []
    assert s.turn(Trigger.TIMER, WORKING, facts) == []
    assert s.turn(Trigger.ACTIVITY, IDLE, facts) == []  # feedback owns the entry slot


def test_ci_and_review_in_one_observation_are_both_deduplicated() -> None:
    """The Go backend deduplicated only one of the two (three identical observations gave one
    CI nudge and three review nudges); now they give one of each."""
    s = Session()
    obs = observation(ci=CIState.FAILING, checks=[failing("c1")], comments=[comment("1")])
    sent = [i.event_type for _ in range(3) for i in s.pr(obs)]
    assert sorted(sent) == ["reaction.ci-failed", "reaction.review-comments"]


# --- D-6 auto: false ----------------------------------------------------------------------


def test_auto_false_notifies_instead_of_acting() -> None:
    s = Session(load_reaction_policy({"ci-failed": {"auto": False}, "agent-idle": {"auto": False}}))
    ci = s.pr(observation(ci=CIState.FAILING, checks=[failing("c1", "trace")]))
    assert kinds(ci) == [(ReactionAction.NOTIFY, "reaction.ci-failed")]
    assert ci[0].message.endswith("trace")
    idle = s.turn(Trigger.ACTIVITY, IDLE)
    assert kinds(idle) == [(ReactionAction.NOTIFY, "reaction.agent-idle")]


def test_configured_message_and_priority_are_used() -> None:
    s = Session(load_reaction_policy({"agent-stuck": {"message": "Help!", "priority": "action"}}))
    (item,) = s.turn(Trigger.ACTIVITY, lc(SessionState.STUCK))
    assert (item.message, item.priority) == ("Help!", Priority.ACTION)


# --- durable state ------------------------------------------------------------------------


def test_plans_are_deterministic_and_dedup_keys_unique() -> None:
    """The outbox's dedup_key makes a replayed turn harmless; distinct reactions differ."""
    s = Session()
    s.turn(Trigger.ACTIVITY, IDLE)
    s.pr(observation(ci=CIState.FAILING, checks=[failing("c1")], comments=[comment("1")]))
    s.turn(Trigger.ACTIVITY, lc(SessionState.STUCK))
    keys = [i.dedup_key for i in s.outbox]
    assert len(keys) == len(set(keys)) == 4
    # <episode start>/<session>/<what>: scoped to the session, and in time order, so the
    # outbox's unique index on the key grows at its end.
    assert all(k.split("/")[1] == "mer-1" for k in keys)
    assert [k.split("/")[0] for k in keys] == sorted(k.split("/")[0] for k in keys)


def test_replanning_with_persisted_trackers_fires_nothing_new() -> None:
    """After a restart the engine reloads trackers: the same state must not re-fire (D-2)."""
    s = Session()
    obs = observation(ci=CIState.FAILING, checks=[failing("c1")], comments=[comment("1")])
    s.pr(obs)
    reloaded = {
        k: msgspec.json.decode(msgspec.json.encode(t), type=Tracker) for k, t in s.trackers.items()
    }
    plan = plan_reactions(
        session_id="mer-1",
        project_id="mer",
        trigger=Trigger.PR,
        before=WORKING,
        after=WORKING,
        pr=obs.facts(),
        observation=obs,
        check_history={"test": [CheckStatus.FAILED]},
        trackers=reloaded,
        policy=ReactionPolicy(),
        now=T0 + timedelta(hours=1),
    )
    assert plan.outbox == ()


def test_activity_on_a_session_with_no_pr_and_no_entry_changes_nothing() -> None:
    plan = plan_reactions(
        session_id="mer-1",
        project_id="mer",
        trigger=Trigger.ACTIVITY,
        before=WORKING,
        after=msgspec.structs.replace(
            WORKING, activity=Activity(state=ActivityState.ACTIVE, last_activity_at=T0)
        ),
        pr=NO_PR,
        observation=None,
        check_history={},
        trackers={},
        policy=ReactionPolicy(),
        now=T0,
    )
    assert plan.is_empty
