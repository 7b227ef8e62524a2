"""How a session's end is recorded and told, and when a merged session is cleaned up.

Pure. A turn that ends a session records a ``SessionEnd`` (when, and what the agent's pane
last showed of it); a restore clears it. The ``agent-exited`` page names the exit status.
A merged session is cleaned up (its runtime stopped, its workspace removed) a grace period
after it ended; a workspace kept because of uncommitted work is reported to the human
(docs/behaviour.md, "Terminal reasons").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import msgspec

from orchestrator.domain.decide import Transition
from orchestrator.domain.model import (
    TERMINAL_STATES,
    Priority,
    ProjectId,
    ReactionAction,
    ReactionKey,
    SessionEnd,
    SessionId,
    SessionRecord,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.reaction_planner import ReactionPlan
from orchestrator.domain.records import OutboxItem
from orchestrator.domain.text import clean_text
from orchestrator.domain.timestamps import utc_text

LAST_OUTPUT_MAX_LINES: Final = 40
LAST_OUTPUT_MAX_CHARS: Final = 8000
_SUMMARY_MAX_CHARS: Final = 200

WORKSPACE_KEPT_EVENT: Final = "session.workspace_kept"

_TERMINATED: Final = SessionState.TERMINATED
_REASON_PR_MERGED: Final = TerminationReason.PR_MERGED
_REASON_RUNTIME_LOST: Final = TerminationReason.RUNTIME_LOST
_AGENT_EXITED: Final = ReactionKey.AGENT_EXITED


def clean_output(text: str) -> str:
    """A pane's text as kept: escape sequences and control characters removed, trailing
    blank lines dropped, at most the last ``LAST_OUTPUT_MAX_LINES`` lines and
    ``LAST_OUTPUT_MAX_CHARS`` characters."""
    lines = clean_text(text).rstrip().splitlines()[-LAST_OUTPUT_MAX_LINES:]
    return "\n".join(line.rstrip() for line in lines)[-LAST_OUTPUT_MAX_CHARS:]


def ended_after(
    previous: SessionEnd | None,
    step: Transition,
    now: datetime,
    *,
    exit_status: int | None = None,
    last_output: str = "",
) -> SessionEnd | None:
    """The session's end after ``step``: recorded when the step ends it, cleared when the
    session is live (a restore), else the one it had."""
    if step.after.state not in TERMINAL_STATES:
        return None
    if step.before.state in TERMINAL_STATES:
        return previous
    return SessionEnd(at=now, exit_status=exit_status, last_output=clean_output(last_output))


def last_line(output: str) -> str:
    """The last non-blank line of ``output``, shortened for a one-line message."""
    for line in reversed(output.splitlines()):
        if line.strip():
            line = line.strip()
            if len(line) > _SUMMARY_MAX_CHARS:
                return line[: _SUMMARY_MAX_CHARS - 1] + "…"
            return line
    return ""


def describe_exit(end: SessionEnd, reason: TerminationReason) -> str:
    """``exit status 3``, or why there is none."""
    if end.exit_status is not None:
        return f"exit status {end.exit_status}"
    if reason is _REASON_RUNTIME_LOST:
        return "its runtime is gone, so no exit status"
    return "exit status unknown"


def with_exit_detail(
    plan: ReactionPlan, end: SessionEnd, reason: TerminationReason
) -> ReactionPlan:
    """``plan`` with its ``agent-exited`` page naming how the agent exited (and the last
    line it printed, when there is one)."""
    if not any(item.reaction is _AGENT_EXITED for item in plan.outbox):
        return plan
    detail = describe_exit(end, reason)
    line = last_line(end.last_output)
    if line:
        detail += f"; last output: {line}"
    outbox = tuple(
        msgspec.structs.replace(item, message=f"{item.message} ({detail})")
        if item.reaction is _AGENT_EXITED
        else item
        for item in plan.outbox
    )
    return msgspec.structs.replace(plan, outbox=outbox)


def awaits_merge_cleanup(record: SessionRecord) -> bool:
    """Ended by its merged PR, and not cleaned up yet (cleaned up, it is ``done``)."""
    lifecycle = record.lifecycle
    return lifecycle.state is _TERMINATED and lifecycle.termination_reason is _REASON_PR_MERGED


def merge_cleanup_deadline(record: SessionRecord, after: timedelta | None) -> datetime | None:
    """When a merged session's runtime and workspace go: ``after`` its end (None: never)."""
    if after is None or record.ended is None or not awaits_merge_cleanup(record):
        return None
    return record.ended.at + after


def workspace_kept_notice(
    session_id: SessionId, project_id: ProjectId, end: SessionEnd | None, why: str
) -> OutboxItem:
    """The page that tells a human a merged session's workspace was kept, and why. One per
    session end: its dedup key leads with the end's time."""
    episode = utc_text(end.at) if end is not None else "-"
    return OutboxItem(
        dedup_key=f"{episode}/{session_id}/cleanup/workspace-kept",
        session_id=session_id,
        project_id=project_id,
        action=ReactionAction.NOTIFY,
        reaction=None,
        event_type=WORKSPACE_KEPT_EVENT,
        priority=Priority.ACTION,
        message=(
            f"PR merged; the agent was stopped but its workspace was kept: {why}. "
            "Commit or discard the changes, then run `orchestrator cleanup`."
        ),
    )


__all__ = [
    "LAST_OUTPUT_MAX_CHARS",
    "LAST_OUTPUT_MAX_LINES",
    "WORKSPACE_KEPT_EVENT",
    "awaits_merge_cleanup",
    "clean_output",
    "describe_exit",
    "ended_after",
    "last_line",
    "merge_cleanup_deadline",
    "with_exit_detail",
    "workspace_kept_notice",
]
