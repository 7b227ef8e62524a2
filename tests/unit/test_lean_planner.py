"""The lean entry-only planner plans exactly what the full planner plans.

``plan_reactions`` sends every live session's runtime, activity and timer turn to
``plan_entry_only``, which skips the general planner because those turns can only fire or
re-arm the entry reaction. These properties pin that shortcut to the full planner over
broadly generated turns: any lifecycle, PR, observation, check history, trackers and
policy. The precondition the dispatcher uses decides which generated turns the lean
planner is held to.

The ``planner_*`` strategies are local to this module for now; they belong with the
shared strategies in ``tests/strategies.py`` once that exists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from orchestrator.domain.model import (
    TERMINAL_STATES,
    Activity,
    ActivityState,
    AgentHarness,
    CheckStatus,
    CIState,
    DetectingState,
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
    ENTRY_ONLY_TRIGGERS,
    ENTRY_TRACKER,
    plan_entry_only,
    plan_in_full,
    plan_reactions,
)
from orchestrator.domain.reaction_policy import ReactionPolicy, load_reaction_policy
from orchestrator.domain.records import Tracker

# A few URLs and names, so trackers, observations and PR facts often refer to each other.
PLANNER_PR_URLS = ("https://github.com/acme/app/pull/1", "https://github.com/acme/app/pull/2")
PLANNER_CHECK_NAMES = ("test", "lint")

planner_datetimes = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
planner_urls = st.sampled_from(PLANNER_PR_URLS)
planner_short_texts = st.text(alphabet="abc", max_size=3)

planner_lifecycles = st.builds(
    Lifecycle,
    state=st.sampled_from(SessionState),
    termination_reason=st.sampled_from(TerminationReason),
    is_alive=st.booleans(),
    activity=st.none()
    | st.builds(Activity, state=st.sampled_from(ActivityState), last_activity_at=planner_datetimes),
    harness=st.sampled_from(AgentHarness),
    detecting=st.none()
    | st.builds(
        DetectingState,
        attempts=st.integers(1, 3),
        started_at=planner_datetimes,
        evidence_hash=planner_short_texts,
    ),
)

planner_pr_facts = st.builds(
    PRFacts,
    exists=st.booleans(),
    url=planner_urls,
    number=st.integers(0, 3),
    draft=st.booleans(),
    merged=st.booleans(),
    closed=st.booleans(),
    ci=st.sampled_from(CIState),
    review=st.sampled_from(ReviewDecision),
    mergeability=st.sampled_from(Mergeability),
    review_comments=st.booleans(),
)

planner_observations = st.builds(
    PRObservation,
    fetched=st.booleans(),
    url=planner_urls,
    merged=st.booleans(),
    closed=st.booleans(),
    ci=st.sampled_from(CIState),
    review=st.sampled_from(ReviewDecision),
    mergeability=st.sampled_from(Mergeability),
    head_sha=st.sampled_from(["", "abc"]),
    checks=st.lists(
        st.builds(
            PRCheck,
            name=st.sampled_from(PLANNER_CHECK_NAMES),
            commit=planner_short_texts,
            status=st.sampled_from(CheckStatus),
            log_tail=st.text(max_size=20),
        ),
        max_size=3,
    ).map(tuple),
    comments=st.lists(
        st.builds(
            PRComment,
            id=planner_short_texts,
            author=planner_short_texts,
            file=planner_short_texts,
            line=st.integers(0, 9),
            body=st.text(max_size=20),
            resolved=st.booleans(),
        ),
        max_size=3,
    ).map(tuple),
)

planner_check_histories = st.dictionaries(
    st.sampled_from(PLANNER_CHECK_NAMES),
    st.lists(st.sampled_from(CheckStatus), max_size=4),
    max_size=2,
)

planner_tracker_keys = st.sampled_from(
    [
        ENTRY_TRACKER,
        *(f"review:{url}" for url in PLANNER_PR_URLS),
        *(f"ci:{url}:{name}" for url in PLANNER_PR_URLS for name in PLANNER_CHECK_NAMES),
    ]
)


@st.composite
def planner_trackers(draw: st.DrawFn) -> dict[str, Tracker]:
    """Durable trackers as the store returns them: keyed by their own ``key``."""
    keys = draw(st.lists(planner_tracker_keys, max_size=4, unique=True))
    return {
        key: Tracker(
            key=key,
            reaction=draw(st.sampled_from(ReactionKey)),
            attempts=draw(st.integers(0, 4)),
            first_at=draw(st.none() | planner_datetimes),
            escalated=draw(st.booleans()),
            seen=tuple(draw(st.lists(planner_short_texts, max_size=3))),
        )
        for key in keys
    }


def planner_overrides(key: str) -> st.SearchStrategy[dict[str, Any]]:
    """What a user may write under ``reactions.<key>`` (``auto-merge`` for one key only)."""
    actions = [
        a.value
        for a in ReactionAction
        if a is not ReactionAction.AUTO_MERGE or key == ReactionKey.APPROVED_AND_GREEN
    ]
    return st.fixed_dictionaries(
        {},
        optional={
            "auto": st.booleans(),
            "action": st.sampled_from(actions),
            "message": st.text(min_size=1, max_size=10),
            "priority": st.sampled_from([p.value for p in Priority]),
            "retries": st.none() | st.integers(0, 4),
            "escalateAfter": st.none() | st.sampled_from(["90s", "15m", "1h30m"]),
        },
    )


planner_policies = st.one_of(
    st.just(ReactionPolicy()),
    st.lists(st.sampled_from([k.value for k in ReactionKey]), unique=True)
    .flatmap(lambda keys: st.fixed_dictionaries({k: planner_overrides(k) for k in keys}))
    .map(load_reaction_policy),
)


@st.composite
def planner_turns(draw: st.DrawFn) -> dict[str, Any]:
    """Every input ``plan_reactions`` takes. Half the time the PR facts are the ones the
    observation implies, as on the engine's PR turns; otherwise each is drawn on its own."""
    observation = draw(st.none() | planner_observations)
    coherent = observation is not None and draw(st.booleans())
    return {
        "session_id": draw(st.sampled_from(["app-1", "app-2"])),
        "project_id": "app",
        "trigger": draw(st.sampled_from(Trigger)),
        "before": draw(planner_lifecycles),
        "after": draw(planner_lifecycles),
        "pr": observation.facts() if coherent and observation else draw(planner_pr_facts),
        "observation": observation,
        "check_history": draw(planner_check_histories),
        "trackers": draw(planner_trackers()),
        "policy": draw(planner_policies),
        "now": draw(planner_datetimes),
    }


def takes_the_lean_path(turn: dict[str, Any]) -> bool:
    """The dispatcher's precondition for the lean planner."""
    return turn["trigger"] in ENTRY_ONLY_TRIGGERS and turn["after"].state not in TERMINAL_STATES


@settings(max_examples=200)
@given(planner_turns())
def test_the_lean_planner_plans_what_the_full_planner_plans(turn: dict[str, Any]) -> None:
    assume(takes_the_lean_path(turn))
    lean = plan_entry_only(
        turn["session_id"],
        turn["project_id"],
        turn["after"],
        turn["pr"],
        turn["trackers"],
        turn["policy"],
        turn["now"],
    )
    event("fires" if lean.outbox else "re-arms" if lean.delete else "steady")
    assert lean == plan_in_full(**turn)


@settings(max_examples=200)
@given(planner_turns())
def test_plan_reactions_plans_what_the_full_planner_plans(turn: dict[str, Any]) -> None:
    """Whichever planner the dispatcher picks, the plan is the full planner's."""
    event("lean path" if takes_the_lean_path(turn) else "full path")
    assert plan_reactions(**turn) == plan_in_full(**turn)


def test_the_lean_planner_fires_re_arms_and_keeps_steady() -> None:
    """Examples of the three outcomes the properties compare, so none goes unexercised."""
    now = datetime(2026, 5, 31, 12, tzinfo=UTC)
    idle = Lifecycle(state=SessionState.IDLE, is_alive=True)
    working = Lifecycle(state=SessionState.WORKING, is_alive=True)
    policy = ReactionPolicy()
    fired = plan_entry_only("app-1", "app", idle, PRFacts(), {}, policy, now)
    assert [i.reaction for i in fired.outbox] == [ReactionKey.AGENT_IDLE]
    trackers = {t.key: t for t in fired.upsert}
    assert plan_entry_only("app-1", "app", idle, PRFacts(), trackers, policy, now).is_empty
    rearmed = plan_entry_only("app-1", "app", working, PRFacts(), trackers, policy, now)
    assert (rearmed.outbox, rearmed.upsert, rearmed.delete) == ((), (), (ENTRY_TRACKER,))
