"""In-memory implementations of every port, for tests and for trying the engine out.

``MemoryStore`` passes the same contract tests as the SQLite store, including the change-log
rows its triggers would write. The recording notifier and messenger can be told to fail;
the scripted runtime answers alive/dead/error/timeout per handle.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

import msgspec
import trio

from adapters import memory_retention
from orchestrator.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ProbeError,
    StoreError,
    TransientError,
)
from orchestrator.domain.health import StoreHealth
from orchestrator.domain.legacy import ImportBatch, ProvenanceRow
from orchestrator.domain.model import (
    ActivitySource,
    ActivityState,
    AgentHarness,
    CheckStatus,
    CIState,
    Lifecycle,
    Mergeability,
    NotificationEvent,
    PRCheck,
    PRComment,
    PRFacts,
    Priority,
    ProbeResult,
    PRObservation,
    ProjectId,
    PRState,
    ReactionAction,
    ReactionKey,
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
    CommitUnit,
    Notification,
    OutboxEntry,
    Project,
    Tracker,
)
from orchestrator.domain.retention import RetentionPolicy, RetentionReport
from orchestrator.domain.scm import (
    CheckKind,
    ChecksSnapshot,
    MergeMethod,
    MergeOutcome,
    NotModified,
    PRDetail,
    PRListing,
    PRMissing,
    PRRef,
    PRSummary,
    RateBudgetSnapshot,
    RepoRef,
    ReviewSnapshot,
    SCMAuthState,
    SCMNotFound,
    SCMPriority,
)
from orchestrator.domain.scm_rules import LogTail, checks_fingerprint
from orchestrator.ports import (
    ATTEMPT_UNDER_WAY,
    WEBHOOK_DELIVERIES_KEPT,
    LaunchConfig,
    RemovalCheck,
    RuntimeHandle,
    RuntimeProbe,
    RuntimeSpec,
    WorkspaceInfo,
)

# --- clock ---------------------------------------------------------------------------


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


# --- store ---------------------------------------------------------------------------


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


class MemoryStore:
    """SessionStore, PRReader, OutboxStore and ChangeLog in memory.

    Every write works on a copy of the tables and swaps it in only when the whole unit
    succeeded, so a failing unit keeps nothing, like a rolled-back transaction.
    """

    def __init__(self) -> None:
        self._t = _Tables()
        self.commits = 0
        self.fail_next_commit: Exception | None = None
        self.on_commit: Callable[[], None] | None = None
        self.storage_health = StoreHealth()  # what ``health()`` reports; tests may set it

    # -- transactions

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

    # -- projects

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

    # -- sessions

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

    async def commit(self, unit: CommitUnit) -> None:
        if self.fail_next_commit is not None:
            error, self.fail_next_commit = self.fail_next_commit, None
            raise error

        def apply(t: _Tables) -> None:
            if unit.session is not None:
                if unit.session.id != unit.session_id:
                    raise StoreError(f"unit.session.id {unit.session.id!r} != {unit.session_id!r}")
                self._update_session(t, unit.session, unit.changed)
            elif unit.changed:
                raise StoreError("unit.changed names fields but unit.session is None")
            if unit.pr is not None and unit.pr.fetched:
                self._write_pr(t, unit.session_id, unit.pr, unit.at)
            self._apply_trackers(t, unit)
            self._insert_outbox(t, unit)

        self._write(apply)
        self.commits += 1

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

    # -- imports

    async def import_batch(self, batch: ImportBatch) -> tuple[SessionId, ...]:
        """One project's import, all or nothing; existing rows are never touched."""
        inserted: list[SessionId] = []

        def apply(t: _Tables) -> None:
            inserted.clear()
            t.projects.setdefault(batch.project.id, batch.project)
            for imported in batch.sessions:
                record = imported.record
                if record.id in t.sessions:
                    continue
                if any(
                    s.project_id == record.project_id and s.num == record.num
                    for s in t.sessions.values()
                ):
                    raise StoreError(f"UNIQUE constraint failed: sessions num of {record.id!r}")
                t.sessions[record.id] = record
                self._log(
                    t,
                    record.project_id,
                    record.id,
                    ChangeType.SESSION_CREATED,
                    _session_payload(record),
                    record.updated_at,
                )
                if imported.pr is not None and imported.pr.url not in t.prs:
                    self._write_pr(t, record.id, imported.pr, batch.at)
                mine = t.trackers.setdefault(record.id, {})
                for tracker in imported.trackers:
                    mine[tracker.key] = tracker
                inserted.append(record.id)
            for row in batch.provenance:
                t.provenance.setdefault((row.target_kind, row.target_id), row)

        self._write(apply)
        return tuple(inserted)

    async def list_provenance(self) -> list[ProvenanceRow]:
        return [self._t.provenance[k] for k in sorted(self._t.provenance)]

    # -- PRs

    async def write_pr_observation(
        self, session_id: SessionId, observation: PRObservation, now: datetime
    ) -> None:
        """A unit's PR write on its own, for tests and tools (the engine writes PRs through
        ``commit``). A failed fetch (``fetched=False``) changes nothing."""
        if not observation.fetched:  # a failed fetch changes nothing
            return
        self._write(lambda t: self._write_pr(t, session_id, observation, now))

    def _write_pr(
        self, t: _Tables, session_id: SessionId, obs: PRObservation, now: datetime
    ) -> None:
        session = t.sessions.get(session_id)
        if session is None:
            raise StoreError(f"FOREIGN KEY constraint failed: unknown session {session_id!r}")
        state = obs.state
        _check_enum(CIState, obs.ci, "ci_state")
        _check_enum(ReviewDecision, obs.review, "review_decision")
        _check_enum(Mergeability, obs.mergeability, "mergeability")
        old = t.prs.get(obs.url)
        if old is not None and old.session_id != session_id:
            owner = t.sessions[old.session_id]
            if not owner.lifecycle.state.is_terminal:
                raise ConflictError(
                    f"PR {obs.url} belongs to session {owner.id}, which is live: "
                    f"claim it for {session_id} to move it "
                    f"(orchestrator pr claim {session_id} {obs.url})"
                )
        row = _PRRow(
            url=obs.url,
            session_id=session_id,
            number=obs.number,
            state=state,
            review=obs.review,
            ci=obs.ci,
            mergeability=obs.mergeability,
            updated_at=now,
            order=t.next_order,
            changed_at=now,
            head_sha=obs.head_sha,
        )
        t.next_order += 1
        t.prs[obs.url] = row
        project = session.project_id
        if old is None:
            self._log(t, project, session_id, ChangeType.PR_CREATED, _pr_payload(row), now)
        elif old.session_id != session_id:  # taken over from a session that ended
            self._log_claim(t, row, old.session_id)
        elif _pr_watch(old) != _pr_watch(row):
            self._log(t, project, session_id, ChangeType.PR_UPDATED, _pr_payload(row), now)
        else:
            row.changed_at = old.changed_at
        for check in obs.checks:
            _check_enum(CheckStatus, check.status, "pr_checks.status")
            key = (obs.url, check.name, check.commit)
            existing = t.checks.get(key)
            if existing is None:
                stored = msgspec.structs.replace(check, created_at=check.created_at or now)
                t.checks[key] = _CheckRow(stored, t.next_order)
                t.next_order += 1
                self._log(
                    t,
                    project,
                    session_id,
                    ChangeType.PR_CHECK_RECORDED,
                    _check_payload(obs.url, stored),
                    stored.created_at or now,
                )
            else:
                first_seen = existing.check.created_at
                stored = msgspec.structs.replace(check, created_at=first_seen)
                t.checks[key] = _CheckRow(stored, existing.order)
                if existing.check.status != check.status:
                    self._log(
                        t,
                        project,
                        session_id,
                        ChangeType.PR_CHECK_RECORDED,
                        _check_payload(obs.url, stored),
                        first_seen or now,
                    )
        by_id = {
            c.id: msgspec.structs.replace(c, created_at=c.created_at or now) for c in obs.comments
        }
        t.comments[obs.url] = sorted(by_id.values(), key=lambda c: (c.created_at or now, c.id))

    def _log_claim(self, t: _Tables, row: _PRRow, previous: SessionId) -> None:
        """What the store's claim trigger writes: one row for each of the two sessions."""
        payload = _claim_payload(row, previous)
        for side in (previous, row.session_id):
            project = t.sessions[side].project_id
            self._log(t, project, side, ChangeType.PR_UPDATED, payload, row.updated_at)

    async def claim_pr(
        self, session_id: SessionId, url: str, *, number: int, now: datetime
    ) -> SessionId | None:
        """Make ``session_id`` the PR's owner; returns the owner it had before (None when
        the PR is new here or was the session's already)."""
        previous: list[SessionId] = []

        def apply(t: _Tables) -> None:
            session = t.sessions.get(session_id)
            if session is None:
                raise NotFoundError(f"session {session_id!r} not found")
            if session.lifecycle.state.is_terminal:
                raise ConflictError(f"session {session_id} has ended: it cannot take a PR")
            old = t.prs.get(url)
            if old is not None and old.session_id == session_id:
                return
            row = _PRRow(
                url=url,
                session_id=session_id,
                number=number if old is None else old.number,
                state=PRState.OPEN if old is None else old.state,
                review=ReviewDecision.NONE if old is None else old.review,
                ci=CIState.UNKNOWN if old is None else old.ci,
                mergeability=Mergeability.UNKNOWN if old is None else old.mergeability,
                updated_at=now,
                order=t.next_order,
                changed_at=now,  # a claim writes change-log rows: a change for listings too
                head_sha="" if old is None else old.head_sha,
            )
            t.next_order += 1
            t.prs[url] = row
            if old is None:
                project = session.project_id
                self._log(t, project, session_id, ChangeType.PR_CREATED, _pr_payload(row), now)
            else:
                previous.append(old.session_id)
                self._log_claim(t, row, old.session_id)

        self._write(apply)
        return previous[0] if previous else None

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

    async def recent_check_runs(self, pr_url: str, check_name: str, limit: int) -> list[PRCheck]:
        rows = sorted(
            (
                r
                for (url, name, _), r in self._t.checks.items()
                if url == pr_url and name == check_name
            ),
            key=lambda r: (r.check.created_at or datetime.min.replace(tzinfo=UTC), r.order),
            reverse=True,
        )
        return [r.check for r in rows[:limit]]

    async def list_pr_comments(self, pr_url: str) -> list[PRComment]:
        return list(self._t.comments.get(pr_url, []))

    async def list_checks(self, pr_url: str) -> list[PRCheck]:
        return sorted(
            (r.check for (url, _, _), r in self._t.checks.items() if url == pr_url),
            key=lambda c: (c.name, c.created_at or datetime.min.replace(tzinfo=UTC)),
        )

    # -- trackers

    async def list_trackers(self, session_id: SessionId) -> list[Tracker]:
        return sorted(self._t.trackers.get(session_id, {}).values(), key=lambda tr: tr.key)

    @staticmethod
    def _apply_trackers(t: _Tables, unit: CommitUnit) -> None:
        if not unit.trackers_upsert and not unit.trackers_delete:
            return
        mine = t.trackers.setdefault(unit.session_id, {})
        for key in unit.trackers_delete:
            mine.pop(key, None)
        if unit.trackers_upsert and unit.session_id not in t.sessions:
            raise StoreError(f"FOREIGN KEY constraint failed: unknown session {unit.session_id!r}")
        for tracker in unit.trackers_upsert:
            _check_enum(ReactionKey, tracker.reaction, "reaction_trackers.reaction")
            mine[tracker.key] = tracker

    # -- outbox and notifications

    @staticmethod
    def _insert_outbox(t: _Tables, unit: CommitUnit) -> None:
        for item in unit.outbox:
            _check_enum(Priority, item.priority, "outbox.priority")
            _check_enum(ReactionAction, item.action, "outbox.action")
            if item.reaction is not None:
                _check_enum(ReactionKey, item.reaction, "outbox.reaction")
            if item.dedup_key in t.dedup_keys:
                continue  # like ON CONFLICT (dedup_key) DO NOTHING: no FK check either
            if item.session_id not in t.sessions or item.project_id not in t.projects:
                raise StoreError(
                    f"FOREIGN KEY constraint failed: unknown session {item.session_id!r} "
                    f"or project {item.project_id!r}"
                )
            t.dedup_keys.add(item.dedup_key)
            t.outbox[t.next_outbox_id] = OutboxEntry(
                id=t.next_outbox_id, item=item, created_at=unit.at
            )
            t.next_outbox_id += 1

    async def pending_outbox(self, *, now: datetime, limit: int) -> list[OutboxEntry]:
        open_rows = sorted(
            (e for e in self._t.outbox.values() if e.delivered_at is None and e.failed_at is None),
            key=lambda e: e.id,
        )
        waiting: set[SessionId] = set()  # sessions with an earlier row waiting for a retry
        due = []
        for entry in open_rows:
            session_id = entry.item.session_id
            if session_id in waiting:
                continue
            if entry.next_attempt_at is not None and entry.next_attempt_at > now:
                waiting.add(session_id)
                continue
            due.append(entry)
        return due[:limit]

    async def get_outbox_entry(self, entry_id: int) -> OutboxEntry | None:
        return self._t.outbox.get(entry_id)

    async def list_outbox(self) -> list[OutboxEntry]:
        return sorted(self._t.outbox.values(), key=lambda e: e.id)

    def _update_entry(self, entry_id: int, **changes: object) -> None:
        def apply(t: _Tables) -> None:
            entry = t.outbox.get(entry_id)
            if entry is not None:
                t.outbox[entry_id] = msgspec.structs.replace(entry, **changes)

        self._write(apply)

    async def begin_attempt(self, entry_id: int) -> None:
        self._update_entry(entry_id, next_attempt_at=ATTEMPT_UNDER_WAY)

    async def record_attempt(
        self, entry_id: int, *, error: str, next_attempt_at: datetime | None
    ) -> None:
        entry = self._t.outbox.get(entry_id)
        attempts = entry.attempts + 1 if entry else 0
        self._update_entry(
            entry_id, attempts=attempts, last_error=error, next_attempt_at=next_attempt_at
        )

    async def mark_delivered(
        self, entry_id: int, *, at: datetime, notification: NotificationEvent | None
    ) -> None:
        def apply(t: _Tables) -> None:
            entry = t.outbox.get(entry_id)
            if entry is None:
                return
            t.outbox[entry_id] = msgspec.structs.replace(
                entry, delivered_at=at, attempts=entry.attempts + 1
            )
            if entry.delivered_at is None:  # as the trigger: only the first delivery
                self._log_delivery(t, entry, at)
            if notification is not None:
                self._insert_notification(t, notification, at)

        self._write(apply)

    def _log_delivery(self, t: _Tables, entry: OutboxEntry, at: datetime) -> None:
        item = entry.item
        payload = _payload(
            id=entry.id,
            sessionId=item.session_id,
            action=item.action.value,
            reaction=None if item.reaction is None else item.reaction.value,
            type=item.event_type,
            priority=item.priority.value,
        )
        self._log(t, item.project_id, item.session_id, ChangeType.REACTION_DELIVERED, payload, at)

    def _insert_notification(self, t: _Tables, event: NotificationEvent, at: datetime) -> None:
        row = Notification(
            id=t.next_notification_id,
            session_id=event.session_id,
            project_id=event.project_id,
            type=event.type,
            priority=event.priority,
            message=event.message,
            created_at=at,
        )
        t.next_notification_id += 1
        t.notifications.append(row)
        self._log(
            t,
            row.project_id,
            row.session_id,
            ChangeType.NOTIFICATION_CREATED,
            _payload(
                id=row.id,
                sessionId=row.session_id,
                type=row.type,
                priority=row.priority.value,
                message=row.message,
            ),
            at,
        )

    async def mark_failed(
        self,
        entry_id: int,
        *,
        at: datetime,
        error: str,
        notification: NotificationEvent | None = None,
    ) -> None:
        def apply(t: _Tables) -> None:
            entry = t.outbox.get(entry_id)
            if entry is None:
                return
            t.outbox[entry_id] = msgspec.structs.replace(entry, failed_at=at, last_error=error)
            if notification is not None:
                self._insert_notification(t, notification, at)

        self._write(apply)

    async def list_notifications(
        self, *, project_id: ProjectId | None = None, limit: int = 100, unread: bool = False
    ) -> list[Notification]:
        rows = [
            n
            for n in self._t.notifications
            if (project_id is None or n.project_id == project_id) and not (unread and n.read)
        ]
        return sorted(rows, key=lambda n: n.id, reverse=True)[:limit]

    async def mark_notification_read(self, notification_id: int, at: datetime) -> bool:
        return self._mark_notification(notification_id, at, resolve=False)

    async def resolve_notification(self, notification_id: int, at: datetime) -> bool:
        return self._mark_notification(notification_id, at, resolve=True)

    def _mark_notification(self, notification_id: int, at: datetime, *, resolve: bool) -> bool:
        found = [n for n in self._t.notifications if n.id == notification_id]
        if found:
            self._write(lambda t: self._mark(t, {notification_id}, at, resolve=resolve))
        return bool(found)

    async def mark_all_notifications_read(
        self, at: datetime, *, project_id: ProjectId | None = None
    ) -> int:
        unread = {
            n.id
            for n in self._t.notifications
            if not n.read and (project_id is None or n.project_id == project_id)
        }
        if unread:
            self._write(lambda t: self._mark(t, unread, at, resolve=False))
        return len(unread)

    @staticmethod
    def _mark(t: _Tables, ids: set[int], at: datetime, *, resolve: bool) -> None:
        """Mark ``ids`` read (or resolved); a time already set stays, as in SQL."""
        for notification_id in ids:
            read_at, resolved_at = t.notification_marks.get(notification_id, (None, None))
            if resolve:
                resolved_at = resolved_at or at
            else:
                read_at = read_at or at
            t.notification_marks[notification_id] = (read_at, resolved_at)

        def marked(n: Notification) -> Notification:
            read_at, resolved_at = t.notification_marks[n.id]
            return msgspec.structs.replace(
                n,
                read=read_at is not None,
                resolved=resolved_at is not None,
                read_at=read_at,
                resolved_at=resolved_at,
            )

        t.notifications = [marked(n) if n.id in ids else n for n in t.notifications]

    # -- health and retention

    def health(self) -> StoreHealth:
        return self.storage_health

    async def apply_retention(self, policy: RetentionPolicy, *, now: datetime) -> RetentionReport:
        reports: list[RetentionReport] = []
        self._write(lambda t: reports.append(memory_retention.apply_retention(t, policy, now)))
        return reports[0]

    # -- change log

    async def changes_after(
        self, seq: int, *, limit: int, project_id: ProjectId | None = None
    ) -> list[ChangeEvent]:
        rows = [
            e
            for e in self._t.change_log
            if e.seq > seq and (project_id is None or e.project_id == project_id)
        ]
        return rows[:limit]

    async def max_change_seq(self) -> int:
        return self._t.next_seq - 1

    # -- webhook deliveries

    async def record_webhook_delivery(
        self, delivery_id: str, *, at: datetime, keep: int = WEBHOOK_DELIVERIES_KEPT
    ) -> bool:
        """Remember a delivery id; False when it was remembered already (a replay). Only the
        newest ``keep`` ids are kept."""
        if delivery_id in self._t.deliveries:
            return False

        def apply(t: _Tables) -> None:
            t.deliveries[delivery_id] = None
            while len(t.deliveries) > keep:
                del t.deliveries[next(iter(t.deliveries))]

        self._write(apply)
        return True


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


# --- delivery ------------------------------------------------------------------------


class RecordingNotifier:
    """Keeps every event it was given. ``fail_times`` makes the next calls raise."""

    def __init__(self) -> None:
        self.events: list[NotificationEvent] = []
        self.calls = 0
        self.fail_times = 0
        self.failure: Callable[[], Exception] = lambda: TransientError("notifier unavailable")
        self.block: trio.Event | None = None

    async def notify(self, event: NotificationEvent) -> None:
        self.calls += 1
        if self.block is not None:
            await self.block.wait()
        if self.fail_times > 0:
            self.fail_times -= 1
            raise self.failure()
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


class RecordingMessenger:
    """Keeps every message per session. Can fail the next calls or block a session."""

    def __init__(self) -> None:
        self.sent: list[tuple[SessionId, str]] = []
        self.resent: list[tuple[SessionId, str]] = []  # the sends that were marked resend
        self.calls = 0
        self.fail_times = 0
        self.failure: Callable[[], Exception] = lambda: TransientError("agent unreachable")
        self.blocked: dict[SessionId, trio.Event] = {}

    async def send(self, session_id: SessionId, message: str, *, resend: bool = False) -> None:
        self.calls += 1
        gate = self.blocked.get(session_id)
        if gate is not None:
            await gate.wait()
        if self.fail_times > 0:
            self.fail_times -= 1
            raise self.failure()
        self.sent.append((session_id, message))
        if resend:
            self.resent.append((session_id, message))

    def messages_for(self, session_id: SessionId) -> list[str]:
        return [m for sid, m in self.sent if sid == session_id]


# --- runtime, workspace, agent ---------------------------------------------------------


class Script(StrEnum):
    """What the scripted runtime answers for a handle."""

    ALIVE = "alive"
    DEAD = "dead"
    EXITED = "exited"  # the pane is up, the agent process is gone
    ERROR = "error"
    TIMEOUT = "timeout"  # never answers; the caller's deadline must fire


class ScriptedRuntime:
    """A runtime whose probe answers come from a script per handle id."""

    def __init__(self, name: str = "scripted") -> None:
        self.name = name
        self.script: dict[str, Script] = {}
        self.created: list[RuntimeSpec] = []
        self.destroyed: list[str] = []
        self.probes = 0
        self.fail_create: Exception | None = None
        self.fail_destroy: Exception | None = None
        self.probe_delay: dict[str, float] = {}
        # What an EXITED pane shows: (exit status, last output) per handle id.
        self.exits: dict[str, tuple[int | None, str]] = {}
        self._ids = itertools.count(1)

    async def create(self, spec: RuntimeSpec) -> RuntimeHandle:
        if self.fail_create is not None:
            raise self.fail_create
        self.created.append(spec)
        handle = RuntimeHandle(id=f"{spec.session_id}#{next(self._ids)}", runtime_name=self.name)
        self.script[handle.id] = Script.ALIVE
        return handle

    async def probe(self, handle: RuntimeHandle) -> RuntimeProbe:
        self.probes += 1
        delay = self.probe_delay.get(handle.id, 0.0)
        if delay:
            await trio.sleep(delay)
        answer = self.script.get(handle.id, Script.DEAD)
        if answer is Script.TIMEOUT:
            await trio.sleep_forever()
        if answer is Script.ERROR:
            raise ProbeError(f"scripted probe error for {handle.id}")
        if answer is Script.EXITED:
            status, output = self.exits.get(handle.id, (None, ""))
            return RuntimeProbe(
                runtime=ProbeResult.ALIVE,
                process=ProbeResult.DEAD,
                exit_status=status,
                last_output=output,
            )
        result = ProbeResult.ALIVE if answer is Script.ALIVE else ProbeResult.DEAD
        return RuntimeProbe(runtime=result, process=result)

    async def destroy(self, handle: RuntimeHandle) -> None:
        if self.fail_destroy is not None:
            raise self.fail_destroy
        self.destroyed.append(handle.id)
        self.script[handle.id] = Script.DEAD

    async def list_handles(self) -> list[RuntimeHandle]:
        """Every handle whose pane is not scripted dead (a ``RuntimeInventory``)."""
        return [
            RuntimeHandle(id=handle_id, runtime_name=self.name)
            for handle_id, answer in self.script.items()
            if answer is not Script.DEAD
        ]


class MemoryWorkspace:
    """Workspaces as paths in a dict. ``dirty`` paths refuse destroy, like uncommitted work;
    ``broken_repos`` maps a project path to why ``check_repository`` refuses it; branches
    of live workspaces and ``branches`` exist already; ``stale`` is what ``prune`` forgets."""

    def __init__(self, root: str = "/memory-workspaces") -> None:
        self.root = root
        self.live: dict[str, str] = {}
        self.dirty: set[str] = set()
        self.destroyed: list[str] = []
        self.fail_create: Exception | None = None
        self.broken_repos: dict[str, str] = {}
        self.branches: set[str] = set()
        self.stale: dict[ProjectId, list[str]] = {}

    def _path(self, project: Project, session_id: SessionId) -> str:
        for bad in ("..", "/", "\\"):
            if bad in session_id or not session_id:
                raise InvalidInputError(f"invalid session id {session_id!r}")
        return f"{self.root}/{project.id}/{session_id}"

    async def create(
        self, project: Project, session_id: SessionId, branch: str = ""
    ) -> WorkspaceInfo:
        if self.fail_create is not None:
            raise self.fail_create
        path = self._path(project, session_id)
        branch = branch or f"orchestrator/{session_id}"
        self.live[path] = branch
        self.branches.add(branch)
        return WorkspaceInfo(path=path, branch=branch)

    async def restore(self, project: Project, session_id: SessionId, branch: str) -> WorkspaceInfo:
        return await self.create(project, session_id, branch)

    async def destroy(self, workspace_path: str) -> None:
        if workspace_path in self.dirty:
            raise ConflictError(f"workspace {workspace_path} has uncommitted changes; kept")
        self.live.pop(workspace_path, None)
        self.destroyed.append(workspace_path)

    async def removal_check(self, workspace_path: str) -> RemovalCheck:
        if workspace_path not in self.live:
            return RemovalCheck(exists=False)
        dirty = workspace_path in self.dirty
        return RemovalCheck(exists=True, blocker="it has uncommitted changes" if dirty else "")

    async def check_repository(self, path: str, *, require_commit: bool) -> None:
        reason = self.broken_repos.get(path)
        if reason is not None:
            raise InvalidInputError(reason)

    async def check_branch(self, project: Project, branch: str) -> None:
        if not branch or branch.startswith("-") or " " in branch:
            raise InvalidInputError(f"{branch!r} is not a valid branch name")
        if branch in self.branches:
            raise ConflictError(f"branch {branch} already exists in {project.path}")

    async def prune(self, project: Project, *, dry_run: bool = False) -> list[str]:
        stale = list(self.stale.get(project.id, []))
        if not dry_run:
            self.stale.pop(project.id, None)
        return stale


class StubAgent:
    """An agent whose commands are plain lists, for tests. ``chosen_session_id`` is what
    ``choose_session_id`` hands out (appended to the launch as ``--agent-session``);
    ``missing`` makes ``check_installed`` refuse; ``unsupported`` is why it cannot resume."""

    def __init__(
        self,
        name: str = "stub",
        env: Mapping[str, str] | None = None,
        *,
        chosen_session_id: str = "",
        missing: bool = False,
        unsupported: str = "",
    ) -> None:
        self.name = name
        self._env = dict(env or {})
        self.chosen_session_id = chosen_session_id
        self.missing = missing
        self.unsupported = unsupported

    def launch_command(self, config: LaunchConfig) -> Sequence[str]:
        chosen = ("--agent-session", config.agent_session_id) if config.agent_session_id else ()
        return ("stub-agent", "--session", config.session_id, *chosen, config.prompt)

    def restore_command(self, agent_session_id: str) -> Sequence[str]:
        if self.unsupported:
            raise InvalidInputError(self.unsupported)
        return ("stub-agent", "--resume", agent_session_id)

    def environment(self, config: LaunchConfig) -> Mapping[str, str]:
        return dict(self._env)

    def choose_session_id(self) -> str:
        return self.chosen_session_id

    def resume_unsupported(self) -> str:
        return self.unsupported

    def check_installed(self, *, resume: bool = False) -> None:
        if self.missing:
            raise InvalidInputError(f"agent {self.name}: `stub-agent` is not on PATH")


__all__ = [
    "ManualClock",
    "MemoryStore",
    "MemoryWorkspace",
    "RecordingMessenger",
    "RecordingNotifier",
    "Script",
    "ScriptedRuntime",
    "StubAgent",
]


# --- source control ------------------------------------------------------------------


def _etag_of(value: object) -> str:
    return 'W/"' + hashlib.sha256(msgspec.json.encode(value)).hexdigest()[:32] + '"'


class FakeSCMProvider:
    """``SCMProvider`` over an in-memory GitHub: PRs (``PRDetail`` values, checks
    included), reviews and job logs. A guard's ETag is a digest of what it returns, so an
    unchanged world answers ``NotModified`` as GitHub does. ``fail(method, error)`` makes
    the next calls of a method raise; ``calls`` records every call."""

    def __init__(self) -> None:
        self.prs: dict[tuple[str, int], PRDetail] = {}
        self.reviews: dict[tuple[str, int], ReviewSnapshot] = {}
        self.logs: dict[tuple[str, int], str] = {}
        self.auth = SCMAuthState(available=True, source="fake")
        self.budget = RateBudgetSnapshot()
        self.calls: list[str] = []
        self.merged: list[tuple[PRRef, str, MergeMethod]] = []
        self.default_branch = "main"  # what listings report as every repository's
        self._failures: dict[str, list[BaseException]] = {}

    # -- scenario helpers

    def put_pr(self, detail: PRDetail) -> PRDetail:
        self.prs[(detail.repo.full_name.lower(), detail.number)] = detail
        return detail

    def update_pr(self, repo: RepoRef, number: int, **changes: object) -> PRDetail:
        key = (repo.full_name.lower(), number)
        return self.put_pr(msgspec.structs.replace(self.prs[key], **changes))

    def put_reviews(self, repo: RepoRef, number: int, snapshot: ReviewSnapshot) -> None:
        self.reviews[(repo.full_name.lower(), number)] = snapshot

    def put_log(self, repo: RepoRef, job_id: int, text: str) -> None:
        self.logs[(repo.full_name.lower(), job_id)] = text

    def fail(self, method: str, error: BaseException, *, times: int = 1) -> None:
        self._failures.setdefault(method, []).extend([error] * times)

    def _enter(self, method: str, *args: object) -> None:
        self.calls.append(" ".join([method, *map(str, args)]))
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    def _of_repo(self, repo: RepoRef) -> list[PRDetail]:
        return [d for (name, _), d in self.prs.items() if name == repo.full_name.lower()]

    def _summary(self, detail: PRDetail) -> PRSummary:
        return PRSummary(
            node_id=detail.node_id,
            number=detail.number,
            url=detail.url,
            title=detail.title,
            state=detail.state,
            head_ref=detail.head_ref,
            head_sha=detail.head_sha,
            head_repo=detail.head_repo,
            base_ref=detail.base_ref,
            author=detail.author,
            updated_at=detail.updated_at,
            default_branch=self.default_branch,
        )

    # -- SCMProvider

    def rate_budget(self) -> RateBudgetSnapshot:
        return self.budget

    async def auth_state(self) -> SCMAuthState:
        self._enter("auth_state")
        return self.auth

    async def list_open_prs(
        self,
        repo: RepoRef,
        *,
        etag: str | None = None,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> PRListing | NotModified:
        self._enter("list_open_prs", repo.full_name)
        open_prs = [d for d in self._of_repo(repo) if d.state in (PRState.OPEN, PRState.DRAFT)]
        open_prs.sort(key=lambda d: d.updated_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        prs = tuple(self._summary(d) for d in open_prs)
        current = _etag_of(prs)
        return NotModified(etag=current) if etag == current else PRListing(etag=current, prs=prs)

    async def find_prs_for_branch(
        self,
        repo: RepoRef,
        head_owner: str,
        branch: str,
        *,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> tuple[PRSummary, ...]:
        self._enter("find_prs_for_branch", repo.full_name, f"{head_owner}:{branch}")
        return tuple(
            self._summary(d)
            for d in self._of_repo(repo)
            if d.head_ref == branch
            and (d.head_repo or "").split("/")[0].lower() == head_owner.lower()
        )

    async def _checks(
        self, method: str, repo: RepoRef, sha: str, kind: CheckKind, etag: str | None
    ) -> ChecksSnapshot | NotModified:
        self._enter(method, repo.full_name, sha)
        checks = tuple(
            c for d in self._of_repo(repo) if d.head_sha == sha for c in d.checks if c.kind is kind
        )
        current = _etag_of(checks)
        if etag == current:
            return NotModified(etag=current)
        return ChecksSnapshot(
            etag=current, commit=sha, checks=checks, fingerprint=checks_fingerprint(checks)
        )

    async def check_runs(
        self,
        repo: RepoRef,
        sha: str,
        *,
        etag: str | None = None,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> ChecksSnapshot | NotModified:
        return await self._checks("check_runs", repo, sha, CheckKind.CHECK_RUN, etag)

    async def commit_status(
        self,
        repo: RepoRef,
        sha: str,
        *,
        etag: str | None = None,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> ChecksSnapshot | NotModified:
        return await self._checks("commit_status", repo, sha, CheckKind.STATUS, etag)

    async def fetch_pull_requests(
        self, refs: Sequence[PRRef], *, priority: SCMPriority = SCMPriority.BACKGROUND
    ) -> list[PRDetail | PRMissing]:
        self._enter("fetch_pull_requests", *(f"{r.repo.full_name}#{r.number}" for r in refs))
        found: list[PRDetail | PRMissing] = []
        for ref in refs:
            detail = self.prs.get((ref.repo.full_name.lower(), ref.number))
            found.append(detail or PRMissing(ref=ref, reason="not found"))
        return found

    async def fetch_reviews(
        self, ref: PRRef, *, priority: SCMPriority = SCMPriority.BACKGROUND
    ) -> ReviewSnapshot:
        self._enter("fetch_reviews", f"{ref.repo.full_name}#{ref.number}")
        key = (ref.repo.full_name.lower(), ref.number)
        if key not in self.prs:
            raise SCMNotFound(f"{ref.repo.full_name}#{ref.number}: no such pull request")
        return self.reviews.get(key) or ReviewSnapshot(decision=self.prs[key].review)

    async def fetch_log_tail(
        self, repo: RepoRef, job_id: int, *, priority: SCMPriority = SCMPriority.BACKGROUND
    ) -> str:
        self._enter("fetch_log_tail", repo.full_name, job_id)
        text = self.logs.get((repo.full_name.lower(), job_id))
        if text is None:
            raise SCMNotFound(f"no log for job {job_id}")
        tail = LogTail()
        tail.feed(text.encode())
        return tail.text()

    async def merge(
        self,
        ref: PRRef,
        *,
        sha: str,
        method: MergeMethod = MergeMethod.SQUASH,
        priority: SCMPriority = SCMPriority.KICK,
    ) -> MergeOutcome:
        self._enter("merge", f"{ref.repo.full_name}#{ref.number}", sha)
        key = (ref.repo.full_name.lower(), ref.number)
        detail = self.prs.get(key)
        if detail is None:
            raise SCMNotFound(f"{ref.repo.full_name}#{ref.number}: no such pull request")
        if detail.head_sha != sha:
            return MergeOutcome(merged=False, message="Head branch was modified")
        if detail.state is not PRState.OPEN:
            return MergeOutcome(merged=False, message="Pull Request is not mergeable")
        self.merged.append((ref, sha, method))
        self.put_pr(msgspec.structs.replace(detail, state=PRState.MERGED))
        return MergeOutcome(merged=True, sha=f"merge-{sha}", message="Pull Request merged")


__all__ += ["FakeSCMProvider"]
