"""Durable records beside the session: projects, reaction trackers, the outbox, notifications,
the change log, and the unit of work that commits a transition atomically with the
reactions it causes, so a crash can neither lose a page nor send one for a transition that
never committed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from orchestrator.domain.model import (
    Model,
    NotificationEvent,
    Priority,
    PRObservation,
    ProjectId,
    ReactionAction,
    ReactionKey,
    SessionId,
    SessionRecord,
)


class Project(Model, frozen=True, kw_only=True):
    """A repository sessions are spawned in. Archived projects stay so old ids resolve."""

    id: ProjectId
    path: str
    repo_origin_url: str = ""
    display_name: str = ""
    registered_at: datetime
    archived_at: datetime | None = None


class Tracker(Model, frozen=True, kw_only=True):
    """Durable reaction state for one session and one tracker key, so a restart never
    repeats a nudge or a page (docs/behaviour.md, "Reactions").

    Keys: ``entry`` (the current entry reaction), ``ci:<pr url>:<check>`` (the CI brake),
    ``review:<pr url>`` (review feedback). ``seen`` holds what was already acted on: commits for CI,
    comment ids for review. ``first_at`` is when the reaction fired first in this episode.
    """

    key: str
    reaction: ReactionKey
    attempts: int = 0
    first_at: datetime | None = None
    escalated: bool = False
    seen: tuple[str, ...] = ()


class OutboxItem(Model, frozen=True, kw_only=True):
    """A reaction to deliver, committed in the same transaction as its cause.

    ``dedup_key`` is unique across the outbox: the same reaction is never queued twice.
    ``pr_url`` and ``head_sha`` name what an ``auto-merge`` merges ("" for the others)."""

    dedup_key: str
    session_id: SessionId
    project_id: ProjectId
    action: ReactionAction
    reaction: ReactionKey | None
    event_type: str
    priority: Priority
    message: str
    pr_url: str = ""
    head_sha: str = ""

    def event(self) -> NotificationEvent:
        return NotificationEvent(
            type=self.event_type,
            priority=self.priority,
            session_id=self.session_id,
            project_id=self.project_id,
            message=self.message,
        )


class OutboxEntry(Model, frozen=True, kw_only=True):
    """An outbox row as stored, with its delivery bookkeeping."""

    id: int
    item: OutboxItem
    attempts: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None
    last_error: str = ""
    created_at: datetime


class Notification(Model, frozen=True, kw_only=True):
    """What the human was told, kept for listing and the change feed."""

    id: int
    session_id: SessionId
    project_id: ProjectId
    type: str
    priority: Priority
    message: str
    created_at: datetime
    read: bool = False
    resolved: bool = False


class ChangeType(StrEnum):
    SESSION_CREATED = "session_created"
    SESSION_UPDATED = "session_updated"
    SESSION_DELETED = "session_deleted"
    PR_CREATED = "pr_created"
    PR_UPDATED = "pr_updated"
    PR_CHECK_RECORDED = "pr_check_recorded"
    NOTIFICATION_CREATED = "notification_created"


class ChangeEvent(Model, frozen=True, kw_only=True):
    """One change-log row. ``payload`` is the raw JSON the trigger wrote."""

    seq: int
    project_id: ProjectId
    session_id: SessionId = ""
    type: ChangeType
    payload: str
    created_at: datetime


class CommitUnit(Model, frozen=True, kw_only=True):
    """Everything one session turn writes, committed all-or-nothing.

    ``at`` stamps every row the unit writes. ``session`` is the full next record;
    ``changed`` names what differs from the stored row — ``Lifecycle`` field names plus
    ``"metadata"`` — so the writer updates just those columns (``updated_at`` always
    moves with a session). Metadata merges: only its non-empty fields are written, so an
    engine that does not cache the prompt never clears it. ``pr`` is written with its
    checks and comments. Trackers are upserted or deleted by key, outbox items inserted once per
    ``dedup_key`` (a repeated key is ignored, never an error).
    """

    session_id: SessionId
    at: datetime
    session: SessionRecord | None = None
    changed: frozenset[str] = frozenset()
    pr: PRObservation | None = None
    trackers_upsert: tuple[Tracker, ...] = ()
    trackers_delete: tuple[str, ...] = ()
    outbox: tuple[OutboxItem, ...] = ()

    @property
    def is_empty(self) -> bool:
        return (
            self.session is None
            and self.pr is None
            and not self.trackers_upsert
            and not self.trackers_delete
            and not self.outbox
        )
