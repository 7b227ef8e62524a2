"""``MemoryStore``: the in-memory store, passing the same contract tests as the SQLite
store (the outbox, notifications, retention, the change log and webhook deliveries here;
sessions and PRs in ``memory_tables`` and ``memory_prs``)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from adapters import memory_retention
from adapters.memory_prs import StoreWithPRs
from adapters.memory_tables import (
    _check_enum,
    _payload,
    _session_payload,
    _Tables,
)
from orchestrator.domain.errors import (
    StoreError,
)
from orchestrator.domain.health import StoreHealth
from orchestrator.domain.legacy import ImportBatch, ProvenanceRow
from orchestrator.domain.model import (
    NotificationEvent,
    Priority,
    ProjectId,
    ReactionAction,
    ReactionKey,
    SessionId,
)
from orchestrator.domain.records import (
    ChangeEvent,
    ChangeType,
    CommitUnit,
    Notification,
    OutboxEntry,
)
from orchestrator.domain.retention import RetentionPolicy, RetentionReport
from orchestrator.ports import (
    ATTEMPT_UNDER_WAY,
    WEBHOOK_DELIVERIES_KEPT,
)


class MemoryStore(StoreWithPRs):
    """SessionStore, PRReader, OutboxStore and ChangeLog in memory.

    Every write works on a copy of the tables and swaps it in only when the whole unit
    succeeded, so a failing unit keeps nothing, like a rolled-back transaction.
    """

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

    def health(self) -> StoreHealth:
        return self.storage_health

    async def apply_retention(self, policy: RetentionPolicy, *, now: datetime) -> RetentionReport:
        reports: list[RetentionReport] = []
        self._write(lambda t: reports.append(memory_retention.apply_retention(t, policy, now)))
        return reports[0]

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
