"""Reactions: what the engine does on its own when a session's state calls for it.

One import point for the three parts, each its own module:

* ``reaction_policy``: the defaults table and the user's overrides deep-merged over it;
* ``reaction_planner``: which outbox items a turn commits and how the trackers change;
* ``reaction_text``: the default messages and the text a nudge carries.
"""

from __future__ import annotations

from orchestrator.domain.model import Trigger
from orchestrator.domain.reaction_planner import (
    ENTRY_TRACKER,
    NO_REACTIONS,
    ReactionPlan,
    ci_brake_depth,
    ci_tracker_seen,
    entry_escalation_deadline,
    entry_reaction,
    has_review_feedback,
    plan_escalation,
    plan_reactions,
    terminal_reaction,
)
from orchestrator.domain.reaction_policy import (
    DEFAULT_REACTIONS,
    DURATION_HINT,
    ReactionConfig,
    ReactionPolicy,
    load_reaction_policy,
    parse_duration,
)
from orchestrator.domain.reaction_text import (
    CI_OUTPUT_HEADER,
    DEFAULT_MESSAGES,
    LOG_TAIL_MAX_CHARS,
    clean_log_tail,
    escalation_message,
    format_comment,
)

__all__ = [
    "CI_OUTPUT_HEADER",
    "DEFAULT_MESSAGES",
    "DEFAULT_REACTIONS",
    "DURATION_HINT",
    "ENTRY_TRACKER",
    "LOG_TAIL_MAX_CHARS",
    "NO_REACTIONS",
    "ReactionConfig",
    "ReactionPlan",
    "ReactionPolicy",
    "Trigger",
    "ci_brake_depth",
    "ci_tracker_seen",
    "clean_log_tail",
    "entry_escalation_deadline",
    "entry_reaction",
    "escalation_message",
    "format_comment",
    "has_review_feedback",
    "load_reaction_policy",
    "parse_duration",
    "plan_escalation",
    "plan_reactions",
    "terminal_reaction",
]
