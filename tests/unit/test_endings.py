"""How a session's end is recorded and told, and when a merged session is cleaned up
(orchestrator/domain/endings.py; docs/behaviour.md, "Terminal reasons")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from msgspec.structs import replace

from orchestrator.domain.decide import on_kill_requested, on_merge_cleaned, on_spawn_completed
from orchestrator.domain.endings import (
    LAST_OUTPUT_MAX_CHARS,
    LAST_OUTPUT_MAX_LINES,
    WORKSPACE_KEPT_EVENT,
    awaits_merge_cleanup,
    clean_output,
    describe_exit,
    ended_after,
    last_line,
    merge_cleanup_deadline,
    with_exit_detail,
    workspace_kept_notice,
)
from orchestrator.domain.model import (
    Lifecycle,
    Priority,
    ReactionAction,
    ReactionKey,
    SessionEnd,
    SessionMetadata,
    SessionRecord,
    SessionState,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.domain.reaction_planner import NO_REACTIONS, ReactionPlan
from orchestrator.domain.records import OutboxItem

T0 = datetime(2026, 5, 31, 12, tzinfo=UTC)
LIVE = Lifecycle(state=SessionState.WORKING, is_alive=True)
MERGED = Lifecycle(state=SessionState.TERMINATED, termination_reason=TerminationReason.PR_MERGED)


def record(lifecycle: Lifecycle, ended: SessionEnd | None = None) -> SessionRecord:
    return SessionRecord(
        id="mer-1",
        project_id="mer",
        num=1,
        lifecycle=lifecycle,
        ended=ended,
        created_at=T0,
        updated_at=T0,
    )


def page(key: ReactionKey, message: str) -> OutboxItem:
    return OutboxItem(
        dedup_key=f"-/mer-1/entry/{key}",
        session_id="mer-1",
        project_id="mer",
        action=ReactionAction.NOTIFY,
        reaction=key,
        event_type=key.event_type,
        priority=Priority.URGENT,
        message=message,
    )


# --- the output kept ----------------------------------------------------------------------


def test_clean_output_drops_escapes_controls_and_trailing_blank_lines() -> None:
    raw = "\x1b[31mred\x1b[0m\r\nbell\x07\ttab  \n\n\n"
    assert clean_output(raw) == "red\nbell\ttab"


def test_clean_output_keeps_the_last_lines_and_characters() -> None:
    many = "\n".join(f"line {i}" for i in range(100))
    kept = clean_output(many).splitlines()
    assert len(kept) == LAST_OUTPUT_MAX_LINES
    assert kept[-1] == "line 99"
    assert len(clean_output("x" * (LAST_OUTPUT_MAX_CHARS * 2))) == LAST_OUTPUT_MAX_CHARS


def test_last_line_is_the_last_non_blank_one_shortened() -> None:
    assert last_line("first\n  exec: claude: not found  \n\n") == "exec: claude: not found"
    assert last_line("") == ""
    long = last_line("y" * 500)
    assert len(long) == 200
    assert long.endswith("…")


# --- when an end is recorded -----------------------------------------------------------------


def test_a_step_that_ends_the_session_records_when_and_how() -> None:
    step = on_kill_requested(LIVE, TerminationReason.ERROR_IN_PROCESS)
    end = ended_after(None, step, T0, exit_status=127, last_output="sh: exec: x: not found\n\n")
    assert end == SessionEnd(at=T0, exit_status=127, last_output="sh: exec: x: not found")


def test_a_step_on_an_ended_session_keeps_its_end() -> None:
    end = SessionEnd(at=T0, exit_status=3)
    terminal = Lifecycle(state=SessionState.TERMINATED)
    assert ended_after(end, on_kill_requested(terminal), T0 + timedelta(1)) is end
    cleaned = on_merge_cleaned(MERGED)
    assert ended_after(end, cleaned, T0 + timedelta(1)) is end


def test_a_restore_or_a_live_step_has_no_end() -> None:
    end = SessionEnd(at=T0, exit_status=3)
    step, _ = on_spawn_completed(MERGED, SessionMetadata(), SpawnOutcome())
    assert ended_after(end, step, T0) is None
    assert ended_after(None, on_merge_cleaned(LIVE), T0) is None


# --- what the page says ------------------------------------------------------------------------


def test_the_exit_description_names_the_status_or_why_there_is_none() -> None:
    assert describe_exit(SessionEnd(at=T0, exit_status=3), TerminationReason.NONE) == (
        "exit status 3"
    )
    assert describe_exit(SessionEnd(at=T0), TerminationReason.RUNTIME_LOST) == (
        "its runtime is gone, so no exit status"
    )
    assert describe_exit(SessionEnd(at=T0), TerminationReason.ERROR_IN_PROCESS) == (
        "exit status unknown"
    )


def test_the_agent_exited_page_names_the_exit_status_and_the_last_line() -> None:
    other = page(ReactionKey.PR_MERGED, "PR merged — work complete.")
    plan = ReactionPlan(outbox=(page(ReactionKey.AGENT_EXITED, "Agent exited."), other))
    end = SessionEnd(at=T0, exit_status=3, last_output="building\nerror: no such flag --x\n")
    told = with_exit_detail(plan, end, TerminationReason.AGENT_PROCESS_EXITED)
    assert [item.message for item in told.outbox] == [
        "Agent exited. (exit status 3; last output: error: no such flag --x)",
        "PR merged — work complete.",
    ]
    lost = with_exit_detail(plan, SessionEnd(at=T0), TerminationReason.RUNTIME_LOST)
    assert lost.outbox[0].message == "Agent exited. (its runtime is gone, so no exit status)"


def test_a_plan_without_an_agent_exited_page_is_left_as_it_is() -> None:
    end = SessionEnd(at=T0, exit_status=3)
    assert with_exit_detail(NO_REACTIONS, end, TerminationReason.RUNTIME_LOST) is NO_REACTIONS


# --- the cleanup after a merge --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifecycle", "awaits"),
    [
        (MERGED, True),
        (replace(MERGED, state=SessionState.DONE), False),  # cleaned up already
        (replace(MERGED, termination_reason=TerminationReason.RUNTIME_LOST), False),
        (Lifecycle(state=SessionState.WORKING, termination_reason=TerminationReason.NONE), False),
    ],
    ids=["merged", "done", "exited", "live"],
)
def test_only_a_merged_session_not_yet_done_awaits_its_cleanup(
    lifecycle: Lifecycle, awaits: bool
) -> None:
    assert awaits_merge_cleanup(record(lifecycle)) is awaits


def test_the_cleanup_is_due_the_grace_period_after_the_end() -> None:
    merged = record(MERGED, SessionEnd(at=T0))
    assert merge_cleanup_deadline(merged, timedelta(minutes=5)) == T0 + timedelta(minutes=5)
    assert merge_cleanup_deadline(merged, None) is None  # cleanup.afterMerge: never
    assert merge_cleanup_deadline(record(MERGED), timedelta(minutes=5)) is None  # no end known
    done = record(replace(MERGED, state=SessionState.DONE), SessionEnd(at=T0))
    assert merge_cleanup_deadline(done, timedelta(minutes=5)) is None


def test_the_cleanup_makes_a_merged_session_done_and_nothing_else() -> None:
    step = on_merge_cleaned(MERGED)
    assert step.after == replace(MERGED, state=SessionState.DONE)
    assert step.changed == {"state"}
    assert not on_merge_cleaned(step.after).is_changed  # never twice
    assert not on_merge_cleaned(LIVE).is_changed  # restored meanwhile
    exited = replace(MERGED, termination_reason=TerminationReason.RUNTIME_LOST)
    assert not on_merge_cleaned(exited).is_changed


def test_the_workspace_kept_notice_says_why_once_per_end() -> None:
    why = "refusing to delete workspace /w/mer-1: it has uncommitted changes (notes.txt)"
    notice = workspace_kept_notice("mer-1", "mer", SessionEnd(at=T0), why)
    assert notice.event_type == WORKSPACE_KEPT_EVENT
    assert (notice.action, notice.reaction, notice.priority) == (
        ReactionAction.NOTIFY,
        None,
        Priority.ACTION,
    )
    assert why in notice.message
    assert "orchestrator cleanup" in notice.message
    again = workspace_kept_notice("mer-1", "mer", SessionEnd(at=T0), why)
    assert again.dedup_key == notice.dedup_key
