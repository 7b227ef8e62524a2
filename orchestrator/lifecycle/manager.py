"""The lifecycle manager: routes every message about a session to that session's actor.

A turn is: load the session once (record, trackers, PRs), run the pure ``decide`` for the
message, plan its reactions, and commit everything — session row, PR rows, trackers,
outbox rows — as one unit. The call returns when that unit is durable (docs/design.md,
D-10); delivery is the outbox dispatcher's job. Sessions never wait on each other: each
has its own queue.

Deadlines (an entry reaction's ``escalateAfter``, the detecting quarantine's cap) live in
one timer task holding a heap; a due deadline becomes a timer message for its session.

A PR belongs to one session: the store refuses an observation of a PR another live session
owns (``ConflictError`` naming it), and ``claim_pr`` is the one way to move it
(docs/design.md, D-13).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import msgspec
import trio

from orchestrator.domain import decide
from orchestrator.domain.errors import (
    ConflictError,
    NotFoundError,
    OverloadedError,
    StoreError,
)
from orchestrator.domain.model import (
    ActivitySignal,
    CheckStatus,
    Lifecycle,
    PRFacts,
    PRObservation,
    ProjectId,
    RuntimeFacts,
    SessionId,
    SessionRecord,
    SessionStatus,
    SpawnOutcome,
    TerminationReason,
    Trigger,
)
from orchestrator.domain.prs import runs_with_observation, select_pr_facts, with_observation
from orchestrator.domain.reaction_planner import (
    ReactionPlan,
    ci_brake_depth,
    ci_tracker_seen,
    entry_escalation_deadline,
    plan_escalation,
    plan_reactions,
)
from orchestrator.domain.reaction_policy import ReactionPolicy
from orchestrator.domain.records import CommitUnit
from orchestrator.domain.status import derive_status
from orchestrator.lifecycle.actor import SessionActor
from orchestrator.lifecycle.messages import (
    ActivitySignalled,
    KillRequested,
    Message,
    PRObserved,
    Restored,
    RuntimeObserved,
    SpawnCompleted,
    TimerFired,
    TimerKind,
)
from orchestrator.ports import Clock, EngineStore

log = logging.getLogger(__name__)

# Enum members bound once for the turn and the timers (docs/design.md, "Hot path").
_TRIGGER_RUNTIME: Final = Trigger.RUNTIME
_TRIGGER_ACTIVITY: Final = Trigger.ACTIVITY
_TRIGGER_PR: Final = Trigger.PR
_TRIGGER_SPAWN: Final = Trigger.SPAWN
_TRIGGER_KILL: Final = Trigger.KILL
_TRIGGER_TIMER: Final = Trigger.TIMER
_TIMER_ESCALATION: Final = TimerKind.ESCALATION
_TIMER_DETECTING: Final = TimerKind.DETECTING
_CHECK_FAILED: Final = CheckStatus.FAILED


class ShuttingDownError(OverloadedError):
    """The engine is draining: no new messages are taken."""


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session as clients see it: the record, its derived status and its PR facts."""

    record: SessionRecord
    status: SessionStatus
    pr: PRFacts


@dataclass(frozen=True, slots=True)
class EngineLimits:
    """Backpressure: waiting messages per session, and how long a caller may wait for room."""

    mailbox_size: int = 64
    overload_wait: float = 0.05


_COMMANDS = (SpawnCompleted, Restored, KillRequested)


class LifecycleManager:
    def __init__(
        self,
        store: EngineStore,
        *,
        clock: Clock,
        policy: ReactionPolicy | None = None,
        limits: EngineLimits | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy or ReactionPolicy()
        self._limits = limits or EngineLimits()
        self._actors: dict[SessionId, SessionActor] = {}
        self._timers: list[tuple[float, int, SessionId, TimerKind, datetime]] = []
        self._timer_seq = itertools.count()
        self._timers_changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._closing = False
        self._in_turn = 0
        self._idle = trio.Event()
        self._idle.set()
        self.unknown_observations = 0
        self.stale_observations = 0  # probes dropped: begun before a runtime restart

    # --- running ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the timer task until cancelled. Start with ``await nursery.start(mgr.run)``."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await self._run_timers()

    async def arm_timers(self) -> int:
        """Load every running session so pending deadlines survive a restart. Returns the
        number of sessions loaded."""
        sessions = await self._store.list_sessions()
        running = [s for s in sessions if not s.lifecycle.state.is_terminal]
        for session in running:
            actor = self._actors.setdefault(session.id, SessionActor(session.id))
            if actor.busy or actor.loaded:
                continue
            actor.busy = True
            try:
                await self._load(actor)
            finally:
                actor.release()
        return len(running)

    async def close(self) -> None:
        """Stop taking messages and wait until every queued turn has finished."""
        self._closing = True
        await self._idle.wait()

    # --- entry points (each returns once the transition is durable) ----------------------

    async def apply_runtime_observation(self, session_id: SessionId, facts: RuntimeFacts) -> None:
        await self._turn(session_id, RuntimeObserved(facts=facts))

    async def apply_activity_signal(self, session_id: SessionId, signal: ActivitySignal) -> None:
        if signal.valid:
            await self._turn(session_id, ActivitySignalled(signal=signal))

    async def apply_pr_observation(self, session_id: SessionId, observation: PRObservation) -> None:
        if observation.fetched:  # a failed fetch is not "PR closed"
            await self._turn(session_id, PRObserved(observation=observation))

    async def on_spawn_completed(
        self, session_id: SessionId, outcome: SpawnOutcome
    ) -> SessionRecord:
        return await self._command(session_id, SpawnCompleted(outcome=outcome))

    async def on_restored(self, session_id: SessionId, outcome: SpawnOutcome) -> SessionRecord:
        return await self._command(session_id, Restored(outcome=outcome))

    async def on_kill_requested(
        self, session_id: SessionId, reason: TerminationReason = TerminationReason.NONE
    ) -> SessionRecord:
        return await self._command(session_id, KillRequested(reason=reason))

    async def remove(self, session_id: SessionId) -> None:
        """Delete a terminal session (its change-log history stays) in the session's own
        turn, so no message about it runs meanwhile, and forget it. ``NotFoundError`` for
        an unknown id; ``ConflictError`` for a live session, or one with reactions still
        to deliver."""
        async with self._exclusive(session_id) as actor:
            state = actor.current.lifecycle.state
            if not state.is_terminal:
                raise ConflictError(f"session {session_id} is {state}, not terminated")
            if not await self._store.delete_session(session_id, at=self._clock.now()):
                raise NotFoundError(f"session {session_id!r} not found")
            # Forgotten: the actor is dropped on release, and queued timers find no actor.
            actor.loaded, actor.record, actor.scheduled = False, None, None

    async def claim_pr(self, session_id: SessionId, url: str, number: int) -> SessionId | None:
        """Make the session the owner of the PR at ``url`` (its newest PR), in the session's
        own turn; returns the previous owner, None when there was none. Durable on return.
        The previous owner's engine state forgets the PR in that session's turn. A PR not
        seen yet is recorded with only its number; the next observation plans reactions.
        ``NotFoundError`` for an unknown session, ``ConflictError`` for one that ended."""
        async with self._exclusive(session_id) as actor:
            if actor.current.lifecycle.state.is_terminal:
                raise ConflictError(f"session {session_id} has ended: it cannot take a PR")
            try:
                previous = await self._store.claim_pr(
                    session_id, url, number=number, now=self._clock.now()
                )
                actor.prs = await self._store.list_pr_facts(session_id)
            except BaseException:
                actor.loaded = False  # reload before this session's next turn
                raise
        if previous is not None and previous in self._actors:
            async with self._exclusive(previous) as old_owner:
                old_owner.prs = await self._store.list_pr_facts(previous)
        return previous

    @asynccontextmanager
    async def _exclusive(self, session_id: SessionId) -> AsyncIterator[SessionActor]:
        """The session's loaded actor, held for one turn that is not a ``decide`` message
        (``NotFoundError`` for an unknown session)."""
        if self._closing:
            raise ShuttingDownError("the engine is shutting down")
        actor = self._actors.setdefault(session_id, SessionActor(session_id))
        self._enter()
        try:
            await actor.acquire(
                limit=self._limits.mailbox_size, overload_wait=self._limits.overload_wait
            )
            try:
                if not actor.loaded and not await self._load(actor):
                    raise NotFoundError(f"session {session_id!r} not found")
                yield actor
            finally:
                actor.release()
                if not actor.loaded and not actor.busy:
                    self._actors.pop(session_id, None)  # never cache unknown ids
        finally:
            self._leave()

    # --- reads ---------------------------------------------------------------------------

    async def running_sessions(self) -> list[SessionRecord]:
        """Non-terminal sessions ordered by (project, num)."""
        return [s for s in await self._store.list_sessions() if not s.lifecycle.state.is_terminal]

    async def exists(self, session_id: SessionId) -> bool:
        """Whether the session exists; free for sessions the engine holds (a removed
        session is forgotten in its removal's turn), one read otherwise."""
        actor = self._actors.get(session_id)
        if actor is not None and actor.loaded:
            return True
        return await self._store.get_session(session_id) is not None

    async def get(self, session_id: SessionId) -> SessionView:
        record = await self._store.get_session(session_id)
        if record is None:
            raise NotFoundError(f"session {session_id!r} not found")
        return await self._view(record)

    async def list(self, project_id: ProjectId | None = None) -> list[SessionView]:
        return [await self._view(r) for r in await self._store.list_sessions(project_id)]

    async def _view(self, record: SessionRecord) -> SessionView:
        pr = await self._store.pr_facts_for_session(record.id)
        return SessionView(record=record, status=derive_status(record.lifecycle, pr), pr=pr)

    @property
    def _timer_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("LifecycleManager.run() has not been started")
        return self._nursery

    @property
    def cached_sessions(self) -> int:
        return len(self._actors)

    # --- turns ---------------------------------------------------------------------------

    async def _command(self, session_id: SessionId, message: Message) -> SessionRecord:
        record = await self._turn(session_id, message)
        if record is None:
            raise NotFoundError(f"session {session_id!r} not found")
        return record

    async def _turn(self, session_id: SessionId, message: Message) -> SessionRecord | None:
        if self._closing:
            raise ShuttingDownError("the engine is shutting down")
        actor = self._actors.get(session_id)
        if actor is None:
            actor = self._actors[session_id] = SessionActor(session_id)
        self._enter()
        try:
            if not actor.try_acquire():
                await actor.acquire(
                    limit=self._limits.mailbox_size, overload_wait=self._limits.overload_wait
                )
            try:
                if not actor.loaded and not await self._load(actor):
                    if not isinstance(message, _COMMANDS):
                        self.unknown_observations += 1
                        log.info(
                            "ignored %s for unknown session %s", type(message).__name__, session_id
                        )
                    return None
                return await self._apply(actor, message)
            finally:
                actor.release()
                if not actor.loaded and not actor.busy:
                    self._actors.pop(session_id, None)  # never cache unknown ids
        finally:
            self._leave()

    def _enter(self) -> None:
        if self._in_turn == 0:
            self._idle = trio.Event()
        self._in_turn += 1

    def _leave(self) -> None:
        self._in_turn -= 1
        if self._in_turn == 0:
            self._idle.set()

    async def _load(self, actor: SessionActor) -> bool:
        record = await self._store.get_session(actor.session_id)
        if record is None:
            return False
        actor.record = _without_prompt(record)
        actor.trackers = {t.key: t for t in await self._store.list_trackers(actor.session_id)}
        actor.prs = await self._store.list_pr_facts(actor.session_id)
        actor.loaded = True
        self._schedule(actor)
        return True

    async def _apply(self, actor: SessionActor, message: Message) -> SessionRecord:
        record = actor.current
        now = self._clock.now()
        before = record.lifecycle
        metadata = record.metadata
        observation: PRObservation | None = None
        plan: ReactionPlan | None = None
        match message:
            case RuntimeObserved(facts=facts):
                if _probed_an_older_runtime(facts, actor.runtime_since):
                    self.stale_observations += 1
                    log.debug("dropped a probe of %s begun before its runtime restarted", record.id)
                    return record
                step, trigger = decide.on_runtime_observed(before, facts), _TRIGGER_RUNTIME
            case ActivitySignalled(signal=signal):
                step, trigger = decide.on_activity_signalled(before, signal), _TRIGGER_ACTIVITY
                if signal.agent_session_id:
                    metadata = decide.with_reported_agent_session(
                        before, metadata, signal.agent_session_id
                    )
            case PRObserved(observation=observation):
                step, trigger = decide.on_pr_observed(before, observation), _TRIGGER_PR
            case SpawnCompleted(outcome=outcome):
                if before.state.is_terminal:
                    raise ConflictError(f"session {record.id} ended before its spawn completed")
                step, metadata = decide.on_spawn_completed(before, metadata, outcome)
                trigger = _TRIGGER_SPAWN
            case Restored(outcome=outcome):
                if not before.state.is_terminal:
                    raise ConflictError(f"session {record.id} is not restorable (not terminal)")
                step, metadata = decide.on_spawn_completed(before, metadata, outcome)
                trigger = _TRIGGER_SPAWN
            case KillRequested(reason=reason):
                step, trigger = decide.on_kill_requested(before, reason), _TRIGGER_KILL
            case TimerFired(kind=kind, due=due):
                now, trigger = max(now, due), _TRIGGER_TIMER
                if kind is _TIMER_ESCALATION:
                    step = decide.transition(before, before)
                    plan = plan_escalation(
                        session_id=record.id,
                        project_id=record.project_id,
                        trackers=actor.trackers,
                        policy=self._policy,
                        now=now,
                    )
                else:
                    step = decide.on_detecting_timeout(before, now)
        prs = with_observation(actor.prs, observation) if observation is not None else actor.prs
        if plan is None:
            history = {} if observation is None else await self._check_history(actor, observation)
            plan = plan_reactions(
                session_id=record.id,
                project_id=record.project_id,
                trigger=trigger,
                before=before,
                after=step.after,
                pr=select_pr_facts(prs),
                observation=observation,
                check_history=history,
                trackers=actor.trackers,
                policy=self._policy,
                now=now,
            )
        changed = step.changed
        if metadata is not record.metadata and metadata != record.metadata:
            changed = changed | {"metadata"}
        if not changed and observation is None and plan.is_empty:
            return record  # nothing to write: no-op signals never reach the writer
        next_record = (
            msgspec.structs.replace(record, lifecycle=step.after, metadata=metadata, updated_at=now)
            if changed
            else None
        )
        unit = CommitUnit(
            session_id=record.id,
            at=now,
            session=next_record,
            changed=changed,
            pr=observation,
            trackers_upsert=plan.upsert,
            trackers_delete=plan.delete,
            outbox=plan.outbox,
        )
        try:
            await self._store.commit(unit)
        except BaseException:
            # We cannot know what the store kept: reload before this session's next turn.
            actor.loaded = False
            raise
        if next_record is not None:
            record = actor.record = _without_prompt(next_record)
        for key in plan.delete:
            actor.trackers.pop(key, None)
        for tracker in plan.upsert:
            actor.trackers[tracker.key] = tracker
        actor.prs = prs
        if trigger is _TRIGGER_SPAWN:
            actor.runtime_since = now
        # Only tracker changes move the escalation deadline; only these fields the detecting one.
        if plan.upsert or plan.delete:
            self._arm_escalation(actor)
        if not changed.isdisjoint(("state", "detecting")):
            self._arm_detecting(actor, step.after)
        return record

    async def _check_history(
        self, actor: SessionActor, observation: PRObservation
    ) -> Mapping[str, Sequence[CheckStatus]]:
        """Recent runs of each newly failing check, this observation's run included: the
        CI brake's input (docs/design.md, D-3). Only checks with a commit not acted on yet
        need it."""
        depth = ci_brake_depth(self._policy)
        history: dict[str, Sequence[CheckStatus]] = {}
        for check in observation.checks:
            if check.status is not _CHECK_FAILED or check.name in history:
                continue
            if check.commit in ci_tracker_seen(actor.trackers, observation.url, check.name):
                continue
            stored = await self._store.recent_check_runs(observation.url, check.name, depth)
            history[check.name] = runs_with_observation(stored, check)
        return history

    # --- timers --------------------------------------------------------------------------

    def _schedule(self, actor: SessionActor) -> None:
        """Hand the session's current deadlines to the timer heap."""
        self._arm_escalation(actor)
        self._arm_detecting(actor, actor.current.lifecycle)

    def _arm_escalation(self, actor: SessionActor) -> None:
        self._arm(actor, _TIMER_ESCALATION, entry_escalation_deadline(actor.trackers, self._policy))

    def _arm_detecting(self, actor: SessionActor, lifecycle: Lifecycle) -> None:
        self._arm(actor, _TIMER_DETECTING, decide.detecting_deadline(lifecycle))

    def _arm(self, actor: SessionActor, kind: TimerKind, when: datetime | None) -> None:
        scheduled = actor.scheduled
        if when is None:
            if scheduled is not None:
                scheduled.pop(kind, None)  # a queued heap entry finds nothing to fire
            return
        if scheduled is None:
            scheduled = actor.scheduled = {}
        if scheduled.get(kind) == when:
            return
        scheduled[kind] = when
        queued = actor.queued.get(kind) if actor.queued is not None else None
        if queued is None or when < queued:
            self._queue(actor, kind, when)
        # Otherwise the queued entry wakes first and queues the new deadline (_run_timers):
        # a session flapping in and out of idle re-arms without touching the heap.

    def _queue(self, actor: SessionActor, kind: TimerKind, when: datetime) -> None:
        """Push a heap entry for ``when``; it becomes the one entry the actor tracks for
        ``kind`` (an earlier one it replaces turns void when popped)."""
        if actor.queued is None:
            actor.queued = {}
        actor.queued[kind] = when
        delay = max(0.0, (when - self._clock.now()).total_seconds())
        entry = (trio.current_time() + delay, next(self._timer_seq), actor.session_id, kind, when)
        heapq.heappush(self._timers, entry)
        if self._timers[0] is entry:
            self._timers_changed.set()

    async def _run_timers(self) -> None:
        while True:
            self._timers_changed = trio.Event()
            deadline = self._timers[0][0] if self._timers else math.inf
            with trio.move_on_at(deadline):
                await self._timers_changed.wait()
            now = trio.current_time()
            while self._timers and self._timers[0][0] <= now:
                _, _, session_id, kind, when = heapq.heappop(self._timers)
                actor = self._actors.get(session_id)
                if actor is None or actor.queued is None or actor.queued.get(kind) != when:
                    continue  # replaced by an earlier entry
                del actor.queued[kind]
                due = actor.scheduled.get(kind) if actor.scheduled is not None else None
                if due is None:
                    continue  # the session left that deadline
                if due != when:
                    self._queue(actor, kind, due)  # the deadline moved later: wait for it
                    continue
                self._timer_nursery.start_soon(
                    self._fire, session_id, TimerFired(kind=kind, due=due)
                )

    async def _fire(self, session_id: SessionId, timer: TimerFired) -> None:
        try:
            await self._turn(session_id, timer)
        except (OverloadedError, StoreError) as error:
            log.warning("timer %s for %s not applied: %s", timer.kind, session_id, error)


def _probed_an_older_runtime(facts: RuntimeFacts, runtime_since: datetime | None) -> bool:
    """Whether the probe began before the session's runtime was last (re)started: a kill and
    restore while it ran would have it report the old runtime's death as the new one's."""
    started = facts.probe_started_at
    return started is not None and runtime_since is not None and started < runtime_since


def _without_prompt(record: SessionRecord) -> SessionRecord:
    """The cached record: no decision reads the prompt, and it can be large."""
    if not record.metadata.prompt:
        return record
    metadata = msgspec.structs.replace(record.metadata, prompt="")
    return msgspec.structs.replace(record, metadata=metadata)
