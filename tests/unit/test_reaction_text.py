"""What reactions say: the escalation page and the CI log tail a nudge carries."""

from __future__ import annotations

from orchestrator.domain.model import ReactionKey
from orchestrator.domain.reaction_text import (
    LOG_TAIL_MAX_CHARS,
    ci_nudge_message,
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


def test_ci_message_names_the_check_cleans_it_and_omits_a_missing_url() -> None:
    assert ci_nudge_message("CI failed.", "E boom", check="te\x1b[1mst", url="") == (
        "CI failed.\n\nFailing check: test\n\nFailing output:\nE boom"
    )
    assert ci_nudge_message("CI failed.", "", check="lint", url="https://ci/1") == (
        "CI failed.\n\nFailing check: lint (https://ci/1)\n\nFailing output:\n"
    )
    assert ci_nudge_message("CI failed.", "x") == "CI failed.\n\nFailing output:\nx"
