"""The rule for an agent session id a hook reports (``decide.with_reported_agent_session``)."""

from __future__ import annotations

import pytest

from orchestrator.domain.decide import with_reported_agent_session
from orchestrator.domain.model import Lifecycle, SessionMetadata, SessionState

KNOWN = SessionMetadata(branch="b", prompt="Fix it", agent_session_id="conv-1")


@pytest.mark.parametrize("state", [s for s in SessionState if not s.is_terminal])
def test_a_live_session_records_a_new_id_and_keeps_the_rest(state: SessionState) -> None:
    after = with_reported_agent_session(Lifecycle(state=state), KNOWN, "conv-2")
    assert after == SessionMetadata(branch="b", prompt="Fix it", agent_session_id="conv-2")


@pytest.mark.parametrize(
    ("state", "reported"),
    [
        (SessionState.WORKING, ""),  # the hook did not say
        (SessionState.WORKING, "conv-1"),  # the same id again
        (SessionState.TERMINATED, "conv-2"),  # terminal sessions ignore observations
        (SessionState.DONE, "conv-2"),
    ],
)
def test_nothing_changes_otherwise(state: SessionState, reported: str) -> None:
    assert with_reported_agent_session(Lifecycle(state=state), KNOWN, reported) is KNOWN
