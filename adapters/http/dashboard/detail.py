"""The session page: its facts, PR panel and timeline, read from the store."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgspec

from adapters.http.dashboard.reads import (
    BoardReads,
    CardFacts,
    DashboardStore,
    failing,
    latest_runs,
)
from adapters.http.dashboard.views import REASON_LABELS, Card, build_card, first_line
from orchestrator.domain.model import (
    PRCheck,
    PRComment,
    PRFacts,
    ReactionAction,
    SessionId,
    SessionRecord,
    TerminationReason,
)
from orchestrator.domain.prs import select_pr_facts
from orchestrator.domain.records import ChangeEvent, ChangeType, OutboxEntry

TIMELINE_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str
    """``created``, ``state``, ``pr``, ``check``, ``page`` or ``nudge`` (a CSS class)."""
    text: str


@dataclass(frozen=True, slots=True)
class SessionPage:
    card: Card
    record: SessionRecord
    checks: list[PRCheck]
    """The latest run of each check of the session's PR, by name."""
    comments: list[PRComment]
    """The PR's unresolved review comments."""
    other_prs: list[PRFacts]
    timeline: list[TimelineEntry]
    attach_command: str


async def read_session_page(
    store: DashboardStore, reads: BoardReads, session_id: SessionId, *, tmux_socket: str
) -> SessionPage | None:
    record = await store.get_session(session_id)
    if record is None:
        return None
    prs = await store.list_pr_facts(session_id)
    pr = select_pr_facts(prs)
    checks = latest_runs(await store.list_checks(pr.url)) if pr.exists else []
    comments = await store.list_pr_comments(pr.url) if pr.exists else []
    trackers = await store.list_trackers(session_id)
    card = build_card(
        CardFacts(record=record, pr=pr, failing_checks=failing(checks), trackers=tuple(trackers))
    )
    changes = await reads.session_changes(session_id, record.project_id, TIMELINE_LIMIT)
    nudges = await reads.session_nudges(session_id, TIMELINE_LIMIT)
    return SessionPage(
        card=card,
        record=record,
        checks=checks,
        comments=[c for c in comments if not c.resolved],
        other_prs=[p for p in prs if p.url != pr.url],
        timeline=timeline(changes, nudges),
        attach_command=attach_command(tmux_socket, record.metadata.runtime_handle_id),
    )


def attach_command(socket: str, handle: str) -> str:
    if not handle:
        return ""
    target = f"tmux -S {shlex.quote(socket)}" if socket else "tmux"
    return f"{target} attach -t {shlex.quote(handle)}"


def timeline(changes: Iterable[ChangeEvent], nudges: Iterable[OutboxEntry]) -> list[TimelineEntry]:
    """What happened to the session, newest first: transitions, PR and check changes and
    pages from the change log, and the messages the daemon sent the agent."""
    entries = [_change_entry(event) for event in changes]
    entries += [_nudge_entry(n) for n in nudges if n.item.action is ReactionAction.SEND_TO_AGENT]
    return sorted(entries, key=lambda e: e.at, reverse=True)[:TIMELINE_LIMIT]


def _change_entry(event: ChangeEvent) -> TimelineEntry:
    try:
        payload: dict[str, Any] = msgspec.json.decode(event.payload or "{}")
    except msgspec.DecodeError:
        payload = {}
    kind = event.type
    if kind is ChangeType.SESSION_CREATED:
        return TimelineEntry(event.created_at, "created", "Session created")
    if kind is ChangeType.SESSION_UPDATED:
        return TimelineEntry(event.created_at, "state", _state_text(payload))
    if kind in (ChangeType.PR_CREATED, ChangeType.PR_UPDATED):
        verb = "seen" if kind is ChangeType.PR_CREATED else "now"
        text = (
            f"PR {payload.get('url', '')} {verb}: {payload.get('state', '')}, CI "
            f"{payload.get('ci', '')}, review {payload.get('review', '')}, "
            f"mergeability {payload.get('mergeability', '')}"
        )
        return TimelineEntry(event.created_at, "pr", text)
    if kind is ChangeType.PR_CHECK_RECORDED:
        text = (
            f"Check {payload.get('name', '')} {payload.get('status', '')} on "
            f"{str(payload.get('commit', ''))[:8]}"
        )
        return TimelineEntry(event.created_at, "check", text)
    text = f"Paged ({payload.get('priority', '')}): {payload.get('message', '')}"
    return TimelineEntry(event.created_at, "page", text)  # notification_created


def _state_text(payload: dict[str, Any]) -> str:
    if payload.get("state") == "not_started" and payload.get("isAlive"):
        return "Spawned: waiting for the agent's first report"
    parts = [f"State {payload.get('state', '')}"]
    reason = payload.get("terminationReason") or ""
    if reason:
        try:
            parts.append(REASON_LABELS[TerminationReason(reason)])
        except ValueError:
            parts.append(reason)
    if payload.get("activity"):
        parts.append(f"agent {payload['activity']}")
    if not payload.get("isAlive"):
        parts.append("not alive")
    return ", ".join(parts)


def _nudge_entry(entry: OutboxEntry) -> TimelineEntry:
    item = entry.item
    what = item.reaction.value if item.reaction is not None else item.event_type
    if entry.delivered_at is not None:
        at, outcome = entry.delivered_at, "sent to the agent"
    elif entry.failed_at is not None:
        at, outcome = entry.failed_at, f"could not be sent ({entry.last_error})"
    else:
        at, outcome = entry.created_at, "queued for the agent"
    return TimelineEntry(at, "nudge", f"Nudge {what} {outcome}: {first_line(item.message)}")


__all__ = [
    "TIMELINE_LIMIT",
    "SessionPage",
    "TimelineEntry",
    "attach_command",
    "read_session_page",
    "timeline",
]
