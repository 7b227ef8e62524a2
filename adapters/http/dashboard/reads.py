"""What the dashboard reads, and a reader built on the store's ports alone.

The pages read the store only: never GitHub, tmux or an agent on the request path. The
board needs, for every session, its record, the PR that speaks for it, that PR's failing
checks and the session's reaction trackers (for the "agent notified" ticks and the CI
brake); the session page also needs its slice of the change log and outbox.

``StoreBoardReads`` gets all of that through the store's ordinary methods, a few reads per
session: fine for the memory store and small boards, and the reference the bulk SQLite
reader (``adapters.http.dashboard.sqlite_reads``) is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from orchestrator.domain.model import (
    CheckStatus,
    PRCheck,
    PRComment,
    PRFacts,
    ProjectId,
    SessionId,
    SessionRecord,
)
from orchestrator.domain.prs import select_pr_facts
from orchestrator.domain.records import ChangeEvent, Notification, OutboxEntry, Tracker
from orchestrator.ports import Store

UNREAD_SCAN: Final = 1000
"""How many recent notifications the port reader looks at to count unread ones."""


@dataclass(frozen=True, slots=True)
class CardFacts:
    """Everything one board card shows, as stored."""

    record: SessionRecord
    pr: PRFacts
    failing_checks: tuple[PRCheck, ...]
    """Checks of ``pr`` whose latest run failed, by name (log tails left out)."""
    trackers: tuple[Tracker, ...]


class BoardReads(Protocol):
    """The dashboard's reads that no single store method answers."""

    async def card_facts(self, project_id: ProjectId | None) -> list[CardFacts]:
        """Every session (of one project, or all), ordered by (project, num)."""
        ...

    async def card_facts_of(self, session_id: SessionId) -> CardFacts | None: ...

    async def session_changes(
        self, session_id: SessionId, project_id: ProjectId, limit: int
    ) -> list[ChangeEvent]:
        """The session's newest change-log rows, newest first."""
        ...

    async def session_nudges(self, session_id: SessionId, limit: int) -> list[OutboxEntry]:
        """The session's newest outbox rows, newest first."""
        ...

    async def unread_notifications(self, project_id: ProjectId | None) -> int:
        """How many notifications are neither read nor resolved."""
        ...


class DashboardStore(Store, Protocol):
    """The store methods the pages use beyond the ``Store`` port (both stores have them)."""

    async def list_checks(self, pr_url: str) -> list[PRCheck]: ...

    async def list_pr_comments(self, pr_url: str) -> list[PRComment]: ...

    async def list_outbox(self) -> list[OutboxEntry]: ...


def latest_runs(runs_by_name_then_age: Sequence[PRCheck]) -> list[PRCheck]:
    """The latest run of each check, by name, from runs ordered by (name, first seen),
    as ``list_checks`` returns them."""
    latest: dict[str, PRCheck] = {}
    for run in runs_by_name_then_age:
        latest[run.name] = run  # later runs of a name overwrite earlier ones
    return [latest[name] for name in sorted(latest)]


def failing(runs: Sequence[PRCheck]) -> tuple[PRCheck, ...]:
    return tuple(run for run in runs if run.status is CheckStatus.FAILED)


class StoreBoardReads:
    """``BoardReads`` over any ``DashboardStore``: a few reads per session."""

    def __init__(self, store: DashboardStore) -> None:
        self._store = store

    async def card_facts(self, project_id: ProjectId | None) -> list[CardFacts]:
        return [await self._facts(r) for r in await self._store.list_sessions(project_id)]

    async def card_facts_of(self, session_id: SessionId) -> CardFacts | None:
        record = await self._store.get_session(session_id)
        return None if record is None else await self._facts(record)

    async def _facts(self, record: SessionRecord) -> CardFacts:
        pr = select_pr_facts(await self._store.list_pr_facts(record.id))
        checks = latest_runs(await self._store.list_checks(pr.url)) if pr.exists else []
        trackers = await self._store.list_trackers(record.id)
        return CardFacts(
            record=record,
            pr=pr,
            failing_checks=tuple(_without_log(run) for run in failing(checks)),
            trackers=tuple(trackers),
        )

    async def session_changes(
        self, session_id: SessionId, project_id: ProjectId, limit: int
    ) -> list[ChangeEvent]:
        found: list[ChangeEvent] = []
        seq = 0
        while True:
            page = await self._store.changes_after(seq, limit=512, project_id=project_id)
            found.extend(e for e in page if e.session_id == session_id)
            if len(page) < 512:
                break
            seq = page[-1].seq
        return found[::-1][:limit]

    async def session_nudges(self, session_id: SessionId, limit: int) -> list[OutboxEntry]:
        rows = [e for e in await self._store.list_outbox() if e.item.session_id == session_id]
        return rows[::-1][:limit]

    async def unread_notifications(self, project_id: ProjectId | None) -> int:
        rows = await self._store.list_notifications(project_id=project_id, limit=UNREAD_SCAN)
        return sum(1 for n in rows if is_unread(n))


def is_unread(notification: Notification) -> bool:
    return not notification.read and not notification.resolved


def _without_log(run: PRCheck) -> PRCheck:
    return PRCheck(
        name=run.name, commit=run.commit, status=run.status, url=run.url, created_at=run.created_at
    )


__all__ = [
    "BoardReads",
    "CardFacts",
    "DashboardStore",
    "StoreBoardReads",
    "failing",
    "is_unread",
    "latest_runs",
]
