"""``orchestrator events`` in words: one line per change saying what changed.

A change-log event carries a session's or a PR's state *after* the change, not before it,
so the narrator remembers the last state it printed of each session and PR and describes
the difference: ``my-app-1  working → needs input (agent waiting for input)``. A session
or PR first met mid-stream (``--since``) is described by its new state alone (``now …``).

Payloads are read loosely (a missing or unexpected field is skipped, an unknown event type
is shown as its ``key=value`` pairs): the change log is the daemon's, and a newer daemon
may send events this CLI does not know yet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import msgspec
from rich.text import Text

from orchestrator.api import EventOut
from orchestrator.domain.text import clean_strings

SESSION_STATES: Final = {
    "not_started": "not started",
    "needs_input": "needs input",
}
ACTIVITIES: Final = {
    "active": "agent active",
    "ready": "agent ready",
    "idle": "agent idle",
    "waiting_input": "agent waiting for input",
    "blocked": "agent blocked",
    "exited": "agent exited",
}
TERMINATION_REASONS: Final = {
    "manually_killed": "killed",
    "agent_process_exited": "the agent exited",
    "probe_failure": "probes kept failing",
    "auto_cleanup": "cleaned up",
    "pr_merged": "its PR merged",
}
CHECKS: Final = {"failed": "failed", "passed": "passed", "in_progress": "running"}
CI: Final = {"failing": "checks failing", "passing": "checks passing", "pending": "checks running"}
REVIEWS: Final = {
    "approved": "approved",
    "changes_requested": "changes requested",
    "review_required": "review required",
    "none": "no review",
}
MERGEABILITY: Final = {
    "conflicting": "merge conflicts",
    "mergeable": "mergeable",
    "blocked": "merge blocked",
    "unstable": "mergeable, checks unstable",
}
_PR_NUMBER: Final = re.compile(r"/(?:pull|pulls|merge_requests)/(\d+)/?$")
WHO_WIDTH: Final = 10
"""Session ids are padded to this width so the descriptions mostly line up."""


def words(value: object, table: Mapping[str, str] | None = None) -> str:
    """An enum value in words: from ``table``, else with ``_`` as spaces."""
    text = str(value)
    return (table or {}).get(text) or text.replace("_", " ")


def pr_name(url: object) -> str:
    """``PR #12`` for a PR's URL, or the URL when it names no number."""
    match = _PR_NUMBER.search(str(url))
    return f"PR #{match.group(1)}" if match else f"PR {url}"


def _payload(event: EventOut) -> dict[str, Any]:
    """The event's payload with every string sanitised (it carries messages, branch names
    and log text from agents, reviewers and CI)."""
    try:
        value = clean_strings(msgspec.json.decode(bytes(event.payload)))
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


class EventNarrator:
    """Turns each event into one line; remembers what it printed to describe the next."""

    def __init__(self) -> None:
        self._sessions: dict[str, dict[str, Any]] = {}
        self._prs: dict[str, dict[str, Any]] = {}

    def line(self, event: EventOut) -> Text:
        """``seq  time  session  what changed``."""
        line = Text(f"{event.seq:>5}  ", style="dim")
        line += Text(f"{_clock(event.created_at)}  ")
        line += Text(f"{event.session_id or event.project_id:<{WHO_WIDTH}}  ", style="bold")
        line += self.describe(event)
        return line

    def describe(self, event: EventOut) -> Text:
        payload = _payload(event)
        match event.type:
            case "session_created":
                self._sessions[event.session_id] = payload
                return Text(f"session created ({words(payload.get('state'), SESSION_STATES)})")
            case "session_updated":
                return Text(self._session_change(event.session_id, payload))
            case "pr_created" | "pr_updated":
                return Text(self._pr_change(payload))
            case "pr_check_recorded":
                status = words(payload.get("status"), CHECKS)
                commit = str(payload.get("commit", ""))[:8]
                at = f" at {commit}" if commit else ""
                style = "red" if payload.get("status") == "failed" else ""
                return Text(
                    f"{pr_name(payload.get('pr'))} check {payload.get('name')} {status}{at}",
                    style=style,
                )
            case "notification_created":
                priority = payload.get("priority", "")
                style = {"urgent": "bold red", "action": "yellow"}.get(str(priority), "")
                line = Text(f"notification ({priority}): ", style=style)
                return line + Text(_one_line(payload.get("message", "")))
        pairs = ", ".join(f"{key}={_one_line(value)}" for key, value in payload.items())
        return Text(f"{event.type.replace('_', ' ')}: {pairs}" if pairs else event.type)

    def _session_change(self, session_id: str, now: dict[str, Any]) -> str:
        before = self._sessions.get(session_id)
        self._sessions[session_id] = now
        old, new = before or {}, now.get("state")
        if before is None:
            head = f"now {words(new, SESSION_STATES)}"
        elif old.get("state") != new:
            head = f"{words(old.get('state'), SESSION_STATES)} → {words(new, SESSION_STATES)}"
        else:
            head = ""
        reason = now.get("terminationReason") or ""
        if reason and old.get("terminationReason") != reason:
            why = words(reason, TERMINATION_REASONS)
            head = f"{head}: {why}" if head else why
        activity = now.get("activity") or ""
        if activity and old.get("activity") != activity:
            doing = words(activity, ACTIVITIES)
            head = f"{head} ({doing})" if head else doing
        parts = [head] if head else []
        alive = bool(now.get("isAlive"))
        if before is not None and bool(old.get("isAlive")) != alive and not reason:
            parts.append("runtime up" if alive else "runtime gone")
        return ", ".join(parts) or "updated"

    def _pr_change(self, now: dict[str, Any]) -> str:
        url = str(now.get("url", ""))
        before = self._prs.get(url)
        self._prs[url] = now
        name = pr_name(url)
        if before is None:
            facts = [
                words(now.get("state")),
                CI.get(str(now.get("ci"))),
                REVIEWS.get(str(now.get("review"))) if now.get("review") != "none" else None,
                MERGEABILITY.get(str(now.get("mergeability"))),
            ]
            return f"{name} " + ", ".join(fact for fact in facts if fact)
        changes = []
        if before.get("state") != now.get("state"):
            changes.append(words(now.get("state")))
        for key, table in (("ci", CI), ("review", REVIEWS), ("mergeability", MERGEABILITY)):
            if before.get(key) != now.get(key):
                changes.append(table.get(str(now.get(key))) or f"{key} {words(now.get(key))}")
        return f"{name} " + (", ".join(changes) or "updated")


def _clock(moment: datetime) -> str:
    """Local ``HH:MM:SS`` today, else ``MM-DD HH:MM``."""
    local = moment.astimezone()
    today = datetime.now(local.tzinfo).date()
    return f"{local:%H:%M:%S}" if local.date() == today else f"{local:%m-%d %H:%M}"


__all__ = ["EventNarrator", "pr_name", "words"]
