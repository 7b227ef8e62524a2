"""The reaction table and the user's overrides merged over it (docs/behaviour.md, "Reactions")."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import Priority, ReactionAction, ReactionKey
from orchestrator.domain.reaction_policy import (
    DEFAULT_REACTIONS,
    ReactionPolicy,
    load_reaction_policy,
    parse_duration,
)

# --- the table -----------------------------------------------------------------------

TABLE = [
    (ReactionKey.CI_FAILED, ReactionAction.SEND_TO_AGENT, Priority.ACTION, None,
     "CI is failing on your PR. Review the output below and push a fix."),
    (ReactionKey.REVIEW_COMMENTS, ReactionAction.SEND_TO_AGENT, Priority.ACTION, None,
     "A reviewer left feedback on your PR. Address it and push."),
    (ReactionKey.MERGE_CONFLICTS, ReactionAction.SEND_TO_AGENT, Priority.ACTION, timedelta(minutes=15),
     "Your PR has merge conflicts. Rebase onto the base branch and resolve them."),
    (ReactionKey.AGENT_IDLE, ReactionAction.SEND_TO_AGENT, Priority.INFO, timedelta(minutes=15),
     "You appear idle. Continue the task or say what is blocking you."),
    (ReactionKey.APPROVED_AND_GREEN, ReactionAction.NOTIFY, Priority.ACTION, None,
     "PR is approved and green — ready to merge."),
    (ReactionKey.AGENT_STUCK, ReactionAction.NOTIFY, Priority.URGENT, None,
     "Agent is stuck and needs attention."),
    (ReactionKey.AGENT_NEEDS_INPUT, ReactionAction.NOTIFY, Priority.URGENT, None,
     "Agent needs input to continue."),
    (ReactionKey.AGENT_EXITED, ReactionAction.NOTIFY, Priority.URGENT, None,
     "Agent process exited unexpectedly."),
    (ReactionKey.PR_CLOSED, ReactionAction.NOTIFY, Priority.ACTION, None,
     "PR was closed without merging."),
    (ReactionKey.PR_MERGED, ReactionAction.NOTIFY, Priority.INFO, None,
     "PR merged — work complete."),
]  # fmt: skip


@pytest.mark.parametrize(("key", "action", "priority", "escalate_after", "message"), TABLE)
def test_default_reaction_table(
    key: ReactionKey,
    action: ReactionAction,
    priority: Priority,
    escalate_after: timedelta | None,
    message: str,
) -> None:
    config = DEFAULT_REACTIONS[key]
    assert (config.action, config.priority, config.escalate_after, config.message) == (
        action,
        priority,
        escalate_after,
        message,
    )
    assert config.auto
    assert key.event_type == f"reaction.{key.value}"


# --- config --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d", timedelta(days=1)),
        ("2h", timedelta(hours=2)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("500ms", timedelta(milliseconds=500)),
        ("1s250ms", timedelta(seconds=1, milliseconds=250)),
        ("5m5ms", timedelta(minutes=5, milliseconds=5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "15", "1x", "0s", "m", "1m1h", "-5m", "1.5h", "15 m x", "0ms", "5ms1s", "ms"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|zero"):
        parse_duration(text)


def test_partial_override_keeps_the_other_defaults() -> None:
    """The peer project's #405: writing only ``retries`` must not lose send-to-agent."""
    policy = load_reaction_policy({"ci-failed": {"retries": 5}})
    config = policy[ReactionKey.CI_FAILED]
    assert config.retries == 5
    assert config.action is ReactionAction.SEND_TO_AGENT
    assert config.message == DEFAULT_REACTIONS[ReactionKey.CI_FAILED].message
    assert policy[ReactionKey.AGENT_IDLE] == DEFAULT_REACTIONS[ReactionKey.AGENT_IDLE]


def test_override_every_field() -> None:
    policy = load_reaction_policy(
        {
            "agent-idle": {
                "auto": False,
                "action": "notify",
                "message": "Still there?",
                "priority": "urgent",
                "retries": 1,
                "escalateAfter": "1h30m",
            },
            "merge-conflicts": {"escalateAfter": None},
        }
    )
    idle = policy[ReactionKey.AGENT_IDLE]
    assert (idle.auto, idle.action, idle.message, idle.priority, idle.retries) == (
        False,
        ReactionAction.NOTIFY,
        "Still there?",
        Priority.URGENT,
        1,
    )
    assert idle.escalate_after == timedelta(hours=1, minutes=30)
    assert policy[ReactionKey.MERGE_CONFLICTS].escalate_after is None


def test_no_reactions_section_means_defaults() -> None:
    assert load_reaction_policy(None) == ReactionPolicy()


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"changes-requested": {}}, "reactions.changes-requested"),
        ({"ci-failed": {"retry": 2}}, "reactions.ci-failed"),
        ({"ci-failed": {"retries": -1}}, "reactions.ci-failed.retries"),
        ({"ci-failed": {"retries": "two"}}, "reactions.ci-failed.retries"),
        ({"agent-idle": {"priority": "loud"}}, "reactions.agent-idle.priority"),
        ({"agent-idle": {"action": "auto-merge"}}, "reactions.agent-idle.action"),
        ({"agent-idle": {"auto": "yes"}}, "reactions.agent-idle.auto"),
        ({"agent-idle": {"message": ""}}, "reactions.agent-idle.message"),
        ({"agent-idle": {"escalateAfter": "soon"}}, "reactions.agent-idle.escalateAfter"),
        ({"agent-idle": {"escalateAfter": 2}}, "reactions.agent-idle.escalateAfter"),
        ({"agent-idle": ["notify"]}, "reactions.agent-idle"),
        (["ci-failed"], "reactions"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(raw: object, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_reaction_policy(raw)
    assert names in str(caught.value)


def test_unknown_field_names_the_field() -> None:
    with pytest.raises(ConfigError, match="retry"):
        load_reaction_policy({"ci-failed": {"retry": 2}})


def test_a_reaction_without_a_budget_has_no_retries() -> None:
    with pytest.raises(ValueError, match="agent-idle"):
        ReactionPolicy().retries(ReactionKey.AGENT_IDLE)
