"""The in-memory store's second layer: PR rows, check runs, comments, claims and
reaction trackers."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from adapters.memory_tables import (
    StoreTables,
    _check_enum,
    _check_payload,
    _CheckRow,
    _claim_payload,
    _pr_payload,
    _pr_watch,
    _PRRow,
    _Tables,
)
from orchestrator.domain.errors import (
    ConflictError,
    NotFoundError,
    StoreError,
)
from orchestrator.domain.model import (
    CheckStatus,
    CIState,
    Mergeability,
    PRCheck,
    PRComment,
    PRObservation,
    PRState,
    ReactionKey,
    ReviewDecision,
    SessionId,
)
from orchestrator.domain.records import (
    ChangeType,
    CommitUnit,
    Tracker,
)


class StoreWithPRs(StoreTables):
    """``StoreTables`` with PRs, their checks and comments, and trackers."""

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
