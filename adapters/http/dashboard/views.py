"""What the templates render: cards, the board and its zones, labels and ages.

Pure functions of stored facts and ``now``: the derived status (``derive_status``) and the
zone (``zone_of``) are the domain's, computed here on the server, so the page never
recomputes either and never disagrees with the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from urllib.parse import quote

from adapters.http.dashboard.reads import CardFacts
from orchestrator.domain.model import (
    ESCALATED_EVENT_TYPE,
    Activity,
    ActivityState,
    Mergeability,
    PRFacts,
    ReactionKey,
    SessionKind,
    SessionStatus,
    TerminationReason,
)
from orchestrator.domain.records import Tracker
from orchestrator.domain.status import derive_status
from orchestrator.domain.zones import BOARD_ZONES, ZONE_LABELS, Zone, zone_of

DONE_SHOWN: Final = 50
"""The Done list shows the most recently ended sessions, newest first."""

STATUS_LABELS: Final[Mapping[SessionStatus, str]] = {
    SessionStatus.SPAWNING: "Spawning",
    SessionStatus.WORKING: "Working",
    SessionStatus.DETECTING: "Checking liveness",
    SessionStatus.PR_OPEN: "PR open",
    SessionStatus.DRAFT: "Draft PR",
    SessionStatus.CI_FAILED: "CI failed",
    SessionStatus.REVIEW_PENDING: "Review pending",
    SessionStatus.CHANGES_REQUESTED: "Changes requested",
    SessionStatus.APPROVED: "Approved",
    SessionStatus.MERGEABLE: "Mergeable",
    SessionStatus.MERGED: "Merged",
    SessionStatus.CLEANUP: "Cleaned up",
    SessionStatus.NEEDS_INPUT: "Needs input",
    SessionStatus.STUCK: "Stuck",
    SessionStatus.ERRORED: "Errored",
    SessionStatus.KILLED: "Killed",
    SessionStatus.IDLE: "Idle",
    SessionStatus.DONE: "Done",
    SessionStatus.TERMINATED: "Terminated",
}

REASON_LABELS: Final[Mapping[TerminationReason, str]] = {
    TerminationReason.NONE: "",
    TerminationReason.MANUALLY_KILLED: "killed by a person",
    TerminationReason.RUNTIME_LOST: "agent exited unexpectedly: its tmux session is gone",
    TerminationReason.AGENT_PROCESS_EXITED: "agent exited unexpectedly: its process ended",
    TerminationReason.PROBE_FAILURE: "ended after probes failed",
    TerminationReason.ERROR_IN_PROCESS: "the spawn failed",
    TerminationReason.AUTO_CLEANUP: "cleaned up automatically",
    TerminationReason.PR_MERGED: "PR merged",
}

# The activity dot's colour class; idle gets a grey dot of its own, not Working's green.
_DOT: Final[Mapping[ActivityState, str]] = {
    ActivityState.ACTIVE: "active",
    ActivityState.READY: "idle",
    ActivityState.IDLE: "idle",
    ActivityState.WAITING_INPUT: "waiting",
    ActivityState.BLOCKED: "waiting",
    ActivityState.EXITED: "exited",
}


def ago(when: datetime | None, now: datetime) -> str:
    """``42s ago``, ``5m ago``, ``3h ago``, ``2d ago`` (app.js keeps these current)."""
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def first_line(text: str, limit: int = 120) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def card_title(*, issue_id: str, prompt: str, branch: str, session_id: str) -> str:
    """Issue, else the prompt's first line, else the branch, else the id."""
    if issue_id:
        return f"Issue {issue_id}"
    return first_line(prompt) or branch or session_id


@dataclass(frozen=True, slots=True)
class FailingCheck:
    name: str
    url: str
    commit: str
    notified: bool
    """The agent was sent this check's failure on this commit."""


@dataclass(frozen=True, slots=True)
class Card:
    """One session as the board shows it. Every field the card template reads is a plain
    value computed once here: a board renders a thousand of these."""

    id: str
    project_id: str
    num: int
    kind: SessionKind
    title: str
    subtitle: str
    """The prompt's first line, when the title is the issue."""
    branch: str
    agent: str
    status: SessionStatus
    status_label: str
    zone: Zone
    zone_class: str
    is_alive: bool
    ended: bool
    resumable: bool
    """A restore can resume the agent's conversation (its id is known); otherwise Restore
    restarts the original prompt fresh, and the button says so."""
    reason: TerminationReason
    reason_label: str
    activity: Activity | None
    dot: str
    pr: PRFacts
    pr_state: str
    """``open``, ``draft``, ``merged`` or ``closed``; empty without a PR."""
    failing_checks: tuple[FailingCheck, ...]
    ci_braked: bool
    changes_requested: bool
    review_notified: bool
    review_escalated: bool
    conflicting: bool
    can_merge: bool
    href: str
    order: str
    """Where the card sorts in its column: by project, then session number."""
    updated_at: datetime

    @property
    def can_send(self) -> bool:
        return not self.ended

    @property
    def can_kill(self) -> bool:
        return not self.ended

    @property
    def can_restore(self) -> bool:
        return self.ended


_ENDED_STATUSES: Final = frozenset(
    {
        SessionStatus.DONE,
        SessionStatus.KILLED,
        SessionStatus.CLEANUP,
        SessionStatus.ERRORED,
        SessionStatus.TERMINATED,
    }
)
_MERGE_READY: Final = frozenset({SessionStatus.MERGEABLE, SessionStatus.APPROVED})
_CHANGES_REQUESTED: Final = SessionStatus.CHANGES_REQUESTED
_CONFLICTING: Final = Mergeability.CONFLICTING


def pr_state(pr: PRFacts) -> str:
    if not pr.exists:
        return ""
    return "merged" if pr.merged else "closed" if pr.closed else "draft" if pr.draft else "open"


def build_card(facts: CardFacts) -> Card:
    record, pr = facts.record, facts.pr
    lifecycle = record.lifecycle
    status = derive_status(lifecycle, pr)
    trackers = {tracker.key: tracker for tracker in facts.trackers}
    ci_prefix = f"ci:{pr.url}:"
    braked = pr.exists and any(
        tr.escalated for key, tr in trackers.items() if key.startswith(ci_prefix)
    )
    review = trackers.get(f"review:{pr.url}") if pr.exists else None
    zone = zone_of(
        status,
        termination_reason=lifecycle.termination_reason,
        activity=None if lifecycle.activity is None else lifecycle.activity.state,
        ci_braked=braked,
    )
    ended = status in _ENDED_STATUSES
    return Card(
        id=record.id,
        project_id=record.project_id,
        num=record.num,
        kind=record.kind,
        title=card_title(
            issue_id=record.issue_id,
            prompt=record.metadata.prompt,
            branch=record.metadata.branch,
            session_id=record.id,
        ),
        subtitle=first_line(record.metadata.prompt) if record.issue_id else "",
        branch=record.metadata.branch,
        agent=record.metadata.agent or lifecycle.harness.value,
        status=status,
        status_label=STATUS_LABELS[status],
        zone=zone,
        zone_class=zone_slug(zone),
        is_alive=lifecycle.is_alive,
        ended=ended,
        resumable=bool(record.metadata.agent_session_id),
        reason=lifecycle.termination_reason,
        reason_label=REASON_LABELS[lifecycle.termination_reason],
        activity=lifecycle.activity,
        dot="none" if lifecycle.activity is None else _DOT[lifecycle.activity.state],
        pr=pr,
        pr_state=pr_state(pr),
        failing_checks=tuple(
            FailingCheck(
                name=check.name,
                url=check.url,
                commit=check.commit,
                notified=check.commit in _seen(trackers.get(f"{ci_prefix}{check.name}")),
            )
            for check in facts.failing_checks
        ),
        ci_braked=braked,
        changes_requested=status is _CHANGES_REQUESTED,
        review_notified=review is not None and review.attempts > 0,
        review_escalated=review is not None and review.escalated,
        conflicting=pr.is_open and pr.mergeability is _CONFLICTING,
        can_merge=pr.is_open and status in _MERGE_READY,
        href="/s/" + quote(record.id, safe=""),
        order=f"{record.project_id} {record.num:012d}",
        updated_at=record.updated_at,
    )


def _seen(tracker: Tracker | None) -> tuple[str, ...]:
    return () if tracker is None else tracker.seen


@dataclass(frozen=True, slots=True)
class Column:
    zone: Zone
    cards: list[Card]

    @property
    def label(self) -> str:
        return ZONE_LABELS[self.zone]


@dataclass(frozen=True, slots=True)
class Board:
    columns: list[Column]
    done: list[Card]
    """The newest ``DONE_SHOWN`` ended sessions, newest first."""
    done_total: int
    counts: dict[Zone, int] = field(default_factory=dict)

    @property
    def needs_you(self) -> int:
        return self.counts.get(Zone.NEEDS_YOU, 0)

    @property
    def empty(self) -> bool:
        return not self.done_total and not any(column.cards for column in self.columns)


def build_board(cards: Iterable[Card]) -> Board:
    """Cards into columns (in the given order, by project and number) and the Done list."""
    by_zone: dict[Zone, list[Card]] = {zone: [] for zone in Zone}
    for card in cards:
        by_zone[card.zone].append(card)
    done = sorted(by_zone[Zone.DONE], key=lambda c: (c.updated_at, c.order), reverse=True)
    return Board(
        columns=[Column(zone, by_zone[zone]) for zone in BOARD_ZONES],
        done=done[:DONE_SHOWN],
        done_total=len(done),
        counts={zone: len(cards) for zone, cards in by_zone.items()},
    )


NOTIFICATION_LABELS: Final[Mapping[str, str]] = {
    **{key.event_type: key.value.replace("-", " ") for key in ReactionKey},
    ESCALATED_EVENT_TYPE: "needs a human: automatic handling exhausted",
}


def notification_label(event_type: str) -> str:
    return NOTIFICATION_LABELS.get(event_type, event_type)


def title_prefix(needs_you: int) -> str:
    """The page title's lead: how many sessions need the human, when any do."""
    return f"({needs_you} need you) " if needs_you else ""


def zone_slug(zone: Zone) -> str:
    return zone.value.replace("_", "-")


def short_commit(commit: str) -> str:
    return commit[:8]


__all__ = [
    "DONE_SHOWN",
    "REASON_LABELS",
    "STATUS_LABELS",
    "Board",
    "Card",
    "Column",
    "FailingCheck",
    "ago",
    "build_board",
    "build_card",
    "card_title",
    "first_line",
    "notification_label",
    "short_commit",
    "title_prefix",
    "zone_slug",
]
