"""Builders shared by the store contract tests (run over MemoryStore and SqliteStore)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec

from orchestrator.domain.model import (
    Activity,
    ActivityState,
    CheckStatus,
    CIState,
    Mergeability,
    PRCheck,
    PRComment,
    Priority,
    PRObservation,
    ReactionAction,
    ReactionKey,
    ReviewDecision,
    SessionRecord,
    SessionState,
)
from orchestrator.domain.records import (
    ChangeEvent,
    CommitUnit,
    OutboxEntry,
    OutboxItem,
    Project,
)
from orchestrator.ports import Store

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PR1 = "https://github.com/acme/app/pull/1"
PR2 = "https://github.com/acme/app/pull/2"
PR3 = "https://github.com/acme/app/pull/3"


class ContractStore(Store, Protocol):
    """The ports plus the inspection reads (and the direct PR write) both stores offer to
    tests and tools."""

    async def write_pr_observation(
        self, session_id: str, observation: PRObservation, now: datetime
    ) -> None: ...

    async def claim_pr(
        self, session_id: str, url: str, *, number: int, now: datetime
    ) -> str | None: ...

    async def record_webhook_delivery(
        self, delivery_id: str, *, at: datetime, keep: int = ...
    ) -> bool: ...

    async def list_pr_comments(self, pr_url: str) -> list[PRComment]: ...

    async def list_checks(self, pr_url: str) -> list[PRCheck]: ...

    async def get_outbox_entry(self, entry_id: int) -> OutboxEntry | None: ...

    async def list_outbox(self) -> list[OutboxEntry]: ...


def at(seconds: float) -> datetime:
    """A fixed instant ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


async def project(store: ContractStore, project_id: str = "mer") -> Project:
    return await store.upsert_project(
        Project(id=project_id, path=f"/repos/{project_id}", registered_at=T0)
    )


async def session(store: ContractStore, project_id: str = "mer") -> SessionRecord:
    """A fresh session in ``project_id`` (the project is created if missing)."""
    if await store.get_project(project_id) is None:
        await project(store, project_id)
    return await store.create_session(project_id, now=T0)


def moved(
    record: SessionRecord,
    when: datetime,
    *,
    state: SessionState | None = None,
    is_alive: bool | None = None,
    activity: ActivityState | None = None,
) -> tuple[SessionRecord, frozenset[str]]:
    """``record`` with the given lifecycle fields changed and ``updated_at=when``, and the
    ``changed`` set naming them."""
    lc = record.lifecycle
    changes: dict[str, Any] = {}
    if state is not None:
        changes["state"] = state
    if is_alive is not None:
        changes["is_alive"] = is_alive
    if activity is not None:
        changes["activity"] = Activity(state=activity, last_activity_at=when)
    new = msgspec.structs.replace(
        record, lifecycle=msgspec.structs.replace(lc, **changes), updated_at=when
    )
    return new, frozenset(changes)


def unit_for(record: SessionRecord, changed: frozenset[str], **extra: Any) -> CommitUnit:
    return CommitUnit(
        session_id=record.id, at=record.updated_at, session=record, changed=changed, **extra
    )


def observation(
    url: str = PR1,
    *,
    number: int = 1,
    draft: bool = False,
    merged: bool = False,
    closed: bool = False,
    ci: CIState = CIState.UNKNOWN,
    review: ReviewDecision = ReviewDecision.NONE,
    mergeability: Mergeability = Mergeability.UNKNOWN,
    checks: tuple[PRCheck, ...] = (),
    comments: tuple[PRComment, ...] = (),
    head_sha: str = "",
) -> PRObservation:
    return PRObservation(
        url=url,
        number=number,
        draft=draft,
        merged=merged,
        closed=closed,
        ci=ci,
        review=review,
        mergeability=mergeability,
        checks=checks,
        comments=comments,
        head_sha=head_sha,
    )


def check(
    commit: str,
    status: CheckStatus,
    *,
    name: str = "ci",
    created_at: datetime | None = None,
) -> PRCheck:
    return PRCheck(name=name, commit=commit, status=status, created_at=created_at)


def outbox_item(
    record: SessionRecord,
    dedup_key: str,
    *,
    message: str = "CI failed",
    priority: Priority = Priority.ACTION,
) -> OutboxItem:
    return OutboxItem(
        dedup_key=dedup_key,
        session_id=record.id,
        project_id=record.project_id,
        action=ReactionAction.SEND_TO_AGENT,
        reaction=ReactionKey.CI_FAILED,
        event_type=ReactionKey.CI_FAILED.event_type,
        priority=priority,
        message=message,
    )


async def changes(store: ContractStore, after: int = 0) -> list[ChangeEvent]:
    return await store.changes_after(after, limit=10_000)


def types(events: list[ChangeEvent]) -> list[str]:
    return [e.type.value for e in events]


def payloads(events: list[ChangeEvent]) -> list[dict[str, Any]]:
    return [json.loads(e.payload) for e in events]
