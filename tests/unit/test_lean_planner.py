"""The lean entry-only planner plans exactly what the full planner plans.

``plan_reactions`` sends every live session's runtime, activity and timer turn to
``plan_entry_only``, which skips the general planner because those turns can only fire or
re-arm the entry reaction. These properties pin that shortcut to the full planner over
broadly generated turns: any lifecycle, PR, observation, check history, trackers and
policy. The precondition the dispatcher uses decides which generated turns the lean
planner is held to.

The ``planner_*`` strategies live with the shared ones in ``tests/strategies.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import assume, event, given, settings

from orchestrator.domain.model import (
    TERMINAL_STATES,
    Lifecycle,
    PRFacts,
    ReactionKey,
    SessionState,
)
from orchestrator.domain.reaction_planner import (
    ENTRY_ONLY_TRIGGERS,
    ENTRY_TRACKER,
    plan_entry_only,
    plan_in_full,
    plan_reactions,
)
from orchestrator.domain.reaction_policy import ReactionPolicy
from tests.strategies import planner_turns


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
