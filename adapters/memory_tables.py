"""The in-memory store's tables and its first layer: projects and sessions, and the
change-log rows the SQLite triggers would write for them (``MemoryStore`` is built
in layers, one module each, so no module grows past a screenful of concerns)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

import msgspec

from orchestrator.domain.errors import (
    ConflictError,
    StoreError,
)
from orchestrator.domain.health import StoreHealth
from orchestrator.domain.legacy import ProvenanceRow
from orchestrator.domain.model import (
    ActivitySource,
    ActivityState,
    AgentHarness,
    CIState,
    Lifecycle,
    Mergeability,
    PRCheck,
    PRComment,
    PRFacts,
    ProjectId,
    PRState,
    ReviewDecision,
    SessionId,
    SessionKind,
    SessionRecord,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.pages import (
    SessionListing,
    SessionPage,
    check_page_limit,
    decode_cursor,
    encode_cursor,
)
from orchestrator.domain.prs import select_pr_facts
from orchestrator.domain.records import (
    ChangeEvent,
    ChangeType,
    Notification,
    OutboxEntry,
    Project,
    Tracker,
)


def _payload(**fields: object) -> str:
    """JSON with the key order given, as SQLite's json_object writes it."""
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


_CHANGEABLE = frozenset(Lifecycle.__struct_fields__) | {"metadata", "ended"}
_RECORD_FIELDS: Final = frozenset({"metadata", "ended"})  # changed names outside the lifecycle


def _check_enum(enum: type[StrEnum], value: str, what: str) -> None:
    try:
        enum(value)
    except ValueError:
        raise StoreError(f"CHECK constraint failed: {what} {value!r}") from None


@dataclass
class _PRRow:
    url: str
    session_id: SessionId
    number: int
    state: PRState
    review: ReviewDecision
    ci: CIState
    mergeability: Mergeability
    updated_at: datetime
    order: int
    changed_at: datetime  # when the watched facts last changed, as migration 0006's triggers
    head_sha: str = ""


@dataclass
class _CheckRow:
    check: PRCheck
    order: int


@dataclass
class _Tables:
    projects: dict[ProjectId, Project] = field(default_factory=dict)
    sessions: dict[SessionId, SessionRecord] = field(default_factory=dict)
    prs: dict[str, _PRRow] = field(default_factory=dict)
    checks: dict[tuple[str, str, str], _CheckRow] = field(default_factory=dict)
    comments: dict[str, list[PRComment]] = field(default_factory=dict)
    trackers: dict[SessionId, dict[str, Tracker]] = field(default_factory=dict)
    outbox: dict[int, OutboxEntry] = field(default_factory=dict)
    dedup_keys: set[str] = field(default_factory=set)
    notifications: list[Notification] = field(default_factory=list)
    # notification id -> (read_at, resolved_at), the columns the SQLite store keeps
    notification_marks: dict[int, tuple[datetime | None, datetime | None]] = field(
        default_factory=dict
    )
    change_log: list[ChangeEvent] = field(default_factory=list)
    provenance: dict[tuple[str, str], ProvenanceRow] = field(default_factory=dict)
    last_session_num: dict[ProjectId, int] = field(default_factory=dict)
    deliveries: dict[str, None] = field(default_factory=dict)  # insertion order: oldest first
    next_seq: int = 1
    next_outbox_id: int = 1
    next_notification_id: int = 1
    next_order: int = 1


def _session_payload(record: SessionRecord, *, agent_session: bool = False) -> str:
    lc = record.lifecycle
    extra = {"agentSessionId": record.metadata.agent_session_id} if agent_session else {}
    return _payload(
        id=record.id,
        state=lc.state.value,
        terminationReason=lc.termination_reason.value,
        isAlive=int(lc.is_alive),
        activity=lc.activity.state.value if lc.activity else "",
        **extra,
    )


def _session_watch(record: SessionRecord) -> tuple[object, ...]:
    lc = record.lifecycle
    return (
        lc.state,
        lc.termination_reason,
        lc.is_alive,
        lc.activity.state if lc.activity else "",
    )


def _pr_payload(row: _PRRow) -> str:
    return _payload(
        url=row.url,
        session=row.session_id,
        state=row.state.value,
        ci=row.ci.value,
        review=row.review.value,
        mergeability=row.mergeability.value,
    )


def _claim_payload(row: _PRRow, previous: SessionId) -> str:
    return _payload(
        url=row.url,
        session=row.session_id,
        previousSession=previous,
        state=row.state.value,
        ci=row.ci.value,
        review=row.review.value,
        mergeability=row.mergeability.value,
    )


def _pr_watch(row: _PRRow) -> tuple[object, ...]:
    return (row.state, row.ci, row.review, row.mergeability)


def _check_payload(pr_url: str, check: PRCheck) -> str:
    return _payload(pr=pr_url, name=check.name, commit=check.commit, status=check.status.value)


class StoreTables:
    """Projects and sessions in memory; the tables every layer of ``MemoryStore``
    writes."""

    def __init__(self) -> None:
        self._t = _Tables()
        self.commits = 0
        self.fail_next_commit: Exception | None = None
        self.on_commit: Callable[[], None] | None = None
        self.storage_health = StoreHealth()  # what ``health()`` reports; tests may set it

    def _write(self, apply: Callable[[_Tables], None]) -> None:
        draft = copy.deepcopy(self._t)
        apply(draft)
        self._t = draft
        if self.on_commit is not None:
            self.on_commit()

    @staticmethod
    def _log(
        t: _Tables,
        project_id: ProjectId,
        session_id: SessionId,
        kind: ChangeType,
        payload: str,
        at: datetime,
    ) -> None:
        t.change_log.append(
            ChangeEvent(
                seq=t.next_seq,
                project_id=project_id,
                session_id=session_id,
                type=kind,
                payload=payload,
                created_at=at,
            )
        )
        t.next_seq += 1

    async def upsert_project(self, project: Project) -> Project:
        def apply(t: _Tables) -> None:
            old = t.projects.get(project.id)
            registered = old.registered_at if old else project.registered_at
            t.projects[project.id] = msgspec.structs.replace(project, registered_at=registered)

        self._write(apply)
        return self._t.projects[project.id]

    async def get_project(self, project_id: ProjectId) -> Project | None:
        return self._t.projects.get(project_id)

    async def list_projects(self, *, include_archived: bool = False) -> list[Project]:
        return sorted(
            (p for p in self._t.projects.values() if include_archived or p.archived_at is None),
            key=lambda p: p.id,
        )

    async def create_session(
        self,
        project_id: ProjectId,
        *,
        now: datetime,
        issue_id: str = "",
        kind: SessionKind = SessionKind.WORKER,
        harness: AgentHarness = AgentHarness.NONE,
    ) -> SessionRecord:
        created: list[SessionRecord] = []

        def apply(t: _Tables) -> None:
            if project_id not in t.projects:
                raise StoreError(f"FOREIGN KEY constraint failed: unknown project {project_id!r}")
            _check_enum(AgentHarness, harness, "harness")
            _check_enum(SessionKind, kind, "kind")
            num = 1 + max(
                [
                    t.last_session_num.get(project_id, 0),
                    *(s.num for s in t.sessions.values() if s.project_id == project_id),
                ]
            )
            t.last_session_num[project_id] = num  # never handed out again, even once removed
            record = SessionRecord(
                id=f"{project_id}-{num}",
                project_id=project_id,
                num=num,
                issue_id=issue_id,
                kind=kind,
                lifecycle=Lifecycle(harness=harness),
                created_at=now,
                updated_at=now,
            )
            t.sessions[record.id] = record
            self._log(
                t, project_id, record.id, ChangeType.SESSION_CREATED, _session_payload(record), now
            )
            created.append(record)

        self._write(apply)
        return created[0]

    async def get_session(self, session_id: SessionId) -> SessionRecord | None:
        return self._t.sessions.get(session_id)

    async def delete_session(self, session_id: SessionId, *, at: datetime) -> bool:
        removed: list[bool] = []

        def apply(t: _Tables) -> None:
            record = t.sessions.get(session_id)
            if record is None:
                return
            pending = sum(
                1
                for e in t.outbox.values()
                if e.item.session_id == session_id
                and e.delivered_at is None
                and e.failed_at is None
            )
            if pending:
                raise ConflictError(
                    f"session {session_id} has {pending} reaction(s) still being delivered; "
                    "try again once they are"
                )
            del t.sessions[session_id]
            t.trackers.pop(session_id, None)
            for url in [u for u, row in t.prs.items() if row.session_id == session_id]:
                del t.prs[url]
                t.comments.pop(url, None)
                for key in [k for k in t.checks if k[0] == url]:
                    del t.checks[key]
            for entry_id in [i for i, e in t.outbox.items() if e.item.session_id == session_id]:
                t.dedup_keys.discard(t.outbox.pop(entry_id).item.dedup_key)
            t.notifications = [n for n in t.notifications if n.session_id != session_id]
            self._log(
                t,
                record.project_id,
                session_id,
                ChangeType.SESSION_DELETED,
                _session_payload(record),
                at,
            )
            removed.append(True)

        self._write(apply)
        return bool(removed)

    async def list_sessions(self, project_id: ProjectId | None = None) -> list[SessionRecord]:
        return sorted(
            (
                s
                for s in self._t.sessions.values()
                if project_id is None or s.project_id == project_id
            ),
            key=lambda s: (s.project_id, s.num),
        )

    async def list_session_page(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        project_id: ProjectId | None = None,
    ) -> SessionPage:
        check_page_limit(limit)
        after = None if cursor is None else decode_cursor(cursor)
        listed = [
            s
            for s in await self.list_sessions(project_id)
            if after is None or (s.project_id, s.num) > after
        ]
        page = listed[:limit]
        items = []
        for record in page:
            pr = await self.pr_facts_for_session(record.id)
            row = self._t.prs.get(pr.url) if pr.exists else None
            changed_at = None if row is None else row.changed_at
            items.append(SessionListing(record=record, pr=pr, pr_changed_at=changed_at))
        more = len(listed) > limit
        return SessionPage(
            items=tuple(items),
            next_cursor=encode_cursor(page[-1].project_id, page[-1].num) if more else None,
        )

    def _update_session(self, t: _Tables, record: SessionRecord, changed: frozenset[str]) -> None:
        unknown = changed - _CHANGEABLE
        if unknown:
            raise StoreError(f"unknown changed field(s) {sorted(unknown)}")
        old = t.sessions.get(record.id)
        if old is None:
            raise StoreError(f"session {record.id!r} does not exist")
        # Like the SQL UPDATE: only the fields named in ``changed`` (and updated_at) move.
        record = msgspec.structs.replace(
            old,
            lifecycle=msgspec.structs.replace(
                old.lifecycle,
                **{
                    name: getattr(record.lifecycle, name)
                    for name in changed
                    if name not in _RECORD_FIELDS
                },
            ),
            metadata=record.metadata if "metadata" in changed else old.metadata,
            ended=record.ended if "ended" in changed else old.ended,
            updated_at=record.updated_at,
        )
        lc = record.lifecycle
        _check_enum(SessionState, lc.state, "session_state")
        _check_enum(TerminationReason, lc.termination_reason, "termination_reason")
        _check_enum(AgentHarness, lc.harness, "harness")
        if lc.activity is not None:
            _check_enum(ActivityState, lc.activity.state, "activity_state")
            _check_enum(ActivitySource, lc.activity.source, "activity_source")
        # id, project and num are immutable, as in the SQL UPDATE; metadata merges (an
        # empty field never clears a stored one, so callers may omit the prompt).
        new = msgspec.structs.replace(
            record,
            project_id=old.project_id,
            num=old.num,
            created_at=old.created_at,
            metadata=old.metadata.merged_with(record.metadata),
        )
        t.sessions[record.id] = new
        # One row per update, as the triggers write it: a new agent session id is its own
        # row (with the id in the payload), whatever else the update changed.
        if old.metadata.agent_session_id != new.metadata.agent_session_id:
            self._log(
                t,
                new.project_id,
                new.id,
                ChangeType.SESSION_UPDATED,
                _session_payload(new, agent_session=True),
                new.updated_at,
            )
        elif _session_watch(old) != _session_watch(new):
            self._log(
                t,
                new.project_id,
                new.id,
                ChangeType.SESSION_UPDATED,
                _session_payload(new),
                new.updated_at,
            )

    async def pr_facts_for_session(self, session_id: SessionId) -> PRFacts:
        return select_pr_facts(await self.list_pr_facts(session_id))

    def _facts(self, row: _PRRow) -> PRFacts:
        return PRFacts.of_pr(
            url=row.url,
            number=row.number,
            state=row.state,
            ci=row.ci,
            review=row.review,
            mergeability=row.mergeability,
            review_comments=any(not c.resolved for c in self._t.comments.get(row.url, [])),
            head_sha=row.head_sha,
        )

    async def list_pr_facts(self, session_id: SessionId) -> list[PRFacts]:
        rows = sorted(
            (r for r in self._t.prs.values() if r.session_id == session_id),
            key=lambda r: (r.updated_at, r.order),
            reverse=True,
        )
        return [self._facts(r) for r in rows]
