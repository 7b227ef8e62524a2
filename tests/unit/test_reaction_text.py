"""What reactions say: the escalation page and the CI log tail a nudge carries."""

from __future__ import annotations

from orchestrator.domain.model import ReactionKey
from orchestrator.domain.reaction_text import (
    LOG_TAIL_MAX_CHARS,
    clean_log_tail,
    escalation_message,
)


def test_escalation_message_quotes_the_key() -> None:
    assert (
        escalation_message(ReactionKey.AGENT_IDLE)
        == 'Automatic handling of "agent-idle" is exhausted — needs a human.'
    )


def test_log_tail_is_bounded_and_starts_on_a_line() -> None:
    log = "\n".join(f"line {n}" for n in range(5000))
    tail = clean_log_tail(log)
    assert len(tail) <= LOG_TAIL_MAX_CHARS
    assert tail.startswith("line ")
    assert tail.endswith("line 4999")
