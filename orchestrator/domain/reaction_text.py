"""What reactions say: the default messages, and the text a nudge carries.

A CI nudge carries the failing check's log tail and a review nudge the comments the agent
has not been sent yet (docs/behaviour.md, "Reactions"). Both end up pasted into an agent's
terminal, so they are cleaned of escape sequences and bounded in size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from orchestrator.domain.model import PRComment, ReactionKey
from orchestrator.domain.text import clean_text

DEFAULT_MESSAGES: Final[Mapping[ReactionKey, str]] = MappingProxyType(
    {
        ReactionKey.CI_FAILED: "CI is failing on your PR. Review the output below and push a fix.",
        ReactionKey.REVIEW_COMMENTS: "A reviewer left feedback on your PR. Address it and push.",
        ReactionKey.MERGE_CONFLICTS: (
            "Your PR has merge conflicts. Rebase onto the base branch and resolve them."
        ),
        ReactionKey.AGENT_IDLE: "You appear idle. Continue the task or say what is blocking you.",
        ReactionKey.APPROVED_AND_GREEN: "PR is approved and green — ready to merge.",
        ReactionKey.AGENT_STUCK: "Agent is stuck and needs attention.",
        ReactionKey.AGENT_NEEDS_INPUT: "Agent needs input to continue.",
        ReactionKey.AGENT_EXITED: "Agent process exited unexpectedly.",
        ReactionKey.PR_CLOSED: "PR was closed without merging.",
        ReactionKey.PR_MERGED: "PR merged — work complete.",
    }
)

CI_OUTPUT_HEADER: Final = "\n\nFailing output:\n"
LOG_TAIL_MAX_CHARS: Final = 4000


def escalation_message(key: ReactionKey) -> str:
    """The page sent when automatic handling gives up (the key quoted as Go's ``%q`` does)."""
    return f'Automatic handling of "{key}" is exhausted — needs a human.'


def clean_log_tail(log: str, max_chars: int = LOG_TAIL_MAX_CHARS) -> str:
    """The end of a CI log, safe to paste into an agent's terminal and bounded in size."""
    text = clean_text(log)
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    newline = tail.find("\n")
    return tail[newline + 1 :] if 0 <= newline < len(tail) - 1 else tail


def ci_nudge_message(message: str, log_tail: str) -> str:
    """The configured CI message followed by the failing check's cleaned log tail."""
    return message + CI_OUTPUT_HEADER + clean_log_tail(log_tail)


def format_comment(comment: PRComment) -> str:
    """``@author on file:line:`` then the body, so the agent knows where to look."""
    where = comment.file + (f":{comment.line}" if comment.file and comment.line else "")
    who = f"@{comment.author}" if comment.author else "A reviewer"
    heading = f"{who} on {where}:" if where else f"{who}:"
    return f"{heading}\n{clean_text(comment.body)}"


def review_nudge_message(message: str, fresh: Iterable[PRComment]) -> str:
    """The configured review message followed by each comment not sent before, if any."""
    comments = "\n\n".join(format_comment(c) for c in fresh)
    return f"{message}\n\n{comments}" if comments else message
