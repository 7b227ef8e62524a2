"""Delivers committed reactions: agent messages, human notifications and auto-merges.

Outbox rows are written in the same transaction as the transition that caused them
(docs/design.md, D-1), so delivery only has to be at-least-once and ordered per session.
Transient failures are retried with exponential backoff (tenacity); cancellation never is.
An agent message that finally fails becomes a notification to the human instead
(docs/design.md, D-6), and a notification that fails stays queued and is retried later: a
page is never dropped.

An auto-merge goes through the ``PRMerger`` port at the row's head commit. It settles once
GitHub answered, merged or not, and is never repeated; its outcome (a refusal carries
GitHub's reason) is recorded as a notification with the row and sent to the notifiers,
best effort: the merge cannot be undone to retry a failed page. A merge that could not be
sent (network, rate limit) stays queued like a notification.

The store's bookkeeping (each attempt, a delivery, a give-up) is retried with backoff until
it is recorded: a full disk during delivery holds that session's delivery back rather than
ending the dispatcher (and the daemon with it). A read of what is due that fails is tried
again on the next poll. Each is logged once when it starts failing and once when it works
again.

At-least-once means an agent may get a message twice: the daemon can die after typing it
and before marking it delivered. So each agent-message attempt is recorded as begun before
it starts (``OutboxStore.begin_attempt``), and a row that had an attempt before this process
started is sent as ``(re-sent after a restart) [msg <row id>] <message>``: the agent can
tell the copy from a new request. Every attempt after the first asks the messenger to clear
a half-typed line first (``resend``), so a copy never lands on the same line as the text an
interrupted attempt left (docs/behaviour.md, "Reactions").
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import msgspec
import trio
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from orchestrator.domain.errors import DeliveryError, StoreError, TransientError
from orchestrator.domain.model import NotificationEvent, Priority, ReactionAction, SessionId
from orchestrator.domain.records import OutboxEntry, OutboxItem
from orchestrator.domain.scm import MergeOutcome, SCMError, SCMRateLimited
from orchestrator.ports import AgentMessenger, Clock, Notifier, OutboxStore, PRMerger

log = logging.getLogger(__name__)

RESENT_PREFIX = "(re-sent after a restart)"


def resent_text(entry_id: int, message: str) -> str:
    """What the agent gets when an attempt before this process started may have reached
    it: the marker and the row's id, which stays the same however often it is re-sent."""
    return f"{RESENT_PREFIX} [msg {entry_id}] {message}"


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Retries within one delivery, and how long a failed notification waits to be retried."""

    attempts: int = 4
    initial_backoff: float = 0.25
    max_backoff: float = 10.0
    attempt_timeout: float = 30.0
    requeue_after: timedelta = timedelta(seconds=30)
    batch: int = 256
    idle_poll: float = 5.0
    bookkeeping_backoff: float = 0.5
    """The first wait before recording a delivery again after the store refused it; it
    doubles up to ``max_bookkeeping_backoff``."""
    max_bookkeeping_backoff: float = 30.0


def agent_fallback(item: OutboxItem, error: BaseException) -> NotificationEvent:
    """What the human is told when a message could not reach the agent (docs/design.md, D-6)."""
    return NotificationEvent(
        type=item.event_type,
        priority=Priority.URGENT,
        session_id=item.session_id,
        project_id=item.project_id,
        message=(
            f"Could not deliver a message to the agent ({error}). "
            f"It needs a human; the message was:\n\n{item.message}"
        ),
    )


def merge_outcome_event(item: OutboxItem, outcome: MergeOutcome) -> NotificationEvent:
    """What the human is told of an auto-merge: done, or refused and why."""
    sha = item.head_sha[:12]
    if outcome.merged:
        message = f"Merged {item.pr_url} at {sha}."
    else:
        message = f"Auto-merge of {item.pr_url} at {sha} was refused: {outcome.message}"
    return NotificationEvent(
        type=item.event_type,
        priority=item.priority if outcome.merged else Priority.ACTION,
        session_id=item.session_id,
        project_id=item.project_id,
        message=message,
    )


class OutboxDispatcher:
    """Delivers pending outbox rows: sessions in parallel, each session's rows in order.
    Without a ``merger`` (no GitHub) an auto-merge row settles as refused, with that reason."""

    def __init__(
        self,
        store: OutboxStore,
        *,
        messenger: AgentMessenger,
        notifier: Notifier,
        clock: Clock,
        policy: DeliveryPolicy | None = None,
        merger: PRMerger | None = None,
    ) -> None:
        self._store = store
        self._messenger = messenger
        self._notifier = notifier
        self._merger = merger
        self._clock = clock
        self._policy = policy or DeliveryPolicy()
        self._wakeup = trio.Event()
        self._in_flight: set[SessionId] = set()
        # Sessions whose oldest open row was requeued for a retry, by that row's id: their
        # later rows wait for it, so a session's rows are delivered in order.
        self._held: dict[SessionId, int] = {}
        self._settled = trio.Event()
        self._settled.set()
        self._store_failing = False  # an episode of store faults is logged once
        # Open rows this process has seen, by id: whether an attempt had begun before it
        # started (then the row goes out marked as re-sent). Forgotten once a row settles.
        self._tried_before_start: dict[int, bool] = {}
        self.delivered = 0
        self.failed = 0
        self.store_faults = 0
        """Store calls that failed (each retried), for tests and diagnostics."""

    def wake(self) -> None:
        """Something was committed: look at the outbox again."""
        self._wakeup.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled, resuming whatever was left undelivered at start."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._wakeup = trio.Event()
                try:
                    await self._dispatch(nursery)
                except StoreError as error:  # what is due could not be read: next poll
                    self._store_fault("read the due reactions", error)
                with trio.move_on_after(self._policy.idle_poll):
                    await self._wakeup.wait()

    async def drain(self) -> None:
        """Deliver everything due now, and what that delivery makes due, then return. If
        the store cannot say what is due, what is left stays queued for the next start."""
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    started = await self._dispatch(nursery)
                    await self._settled.wait()
                    if not started and not await self._due():
                        return
                except StoreError as error:
                    self._store_fault("read the due reactions", error)
                    return

    async def _due(self) -> bool:
        return bool(await self._deliverable())

    async def _deliverable(self) -> dict[SessionId, list[OutboxEntry]]:
        """Due rows by session, oldest first; a held session only once its row is due."""
        pending = await self._store.pending_outbox(now=self._clock.now(), limit=self._policy.batch)
        by_session: dict[SessionId, list[OutboxEntry]] = defaultdict(list)
        for entry in pending:
            by_session[entry.item.session_id].append(entry)
        held = self._held
        return {
            session_id: entries
            for session_id, entries in by_session.items()
            if session_id not in held or entries[0].id == held[session_id]
        }

    async def _dispatch(self, nursery: trio.Nursery) -> int:
        started = 0
        for session_id, entries in (await self._deliverable()).items():
            if session_id in self._in_flight:
                continue
            if not self._in_flight:
                self._settled = trio.Event()
            self._in_flight.add(session_id)
            nursery.start_soon(self._deliver_session, session_id, entries)
            started += 1
        return started

    async def _deliver_session(self, session_id: SessionId, entries: list[OutboxEntry]) -> None:
        try:
            for entry in entries:
                if not await self._deliver(entry):
                    # Requeued: keep this session's order, later rows wait for this one.
                    self._held[session_id] = entry.id
                    break
                self._held.pop(session_id, None)
        finally:
            self._in_flight.discard(session_id)
            if not self._in_flight:
                self._settled.set()
            self.wake()

    async def _deliver(self, entry: OutboxEntry) -> bool:
        """Deliver one row. True when the row is settled (delivered or handed to a human)."""
        settled = await self._deliver_once(entry)
        if settled:
            self._tried_before_start.pop(entry.id, None)
        return settled

    async def _deliver_once(self, entry: OutboxEntry) -> bool:
        item = entry.item
        if item.action is ReactionAction.AUTO_MERGE:
            return await self._merge(entry)
        try:
            if item.action is ReactionAction.SEND_TO_AGENT:
                await self._with_retries(entry, self._agent_sender(entry), item)
            else:
                await self._with_retries(entry, self._notify, item)
        except (TransientError, DeliveryError) as error:
            if item.action is ReactionAction.SEND_TO_AGENT:
                return await self._fall_back_to_human(entry, error)
            await self._requeue(entry, error)
            return False
        notification = item.event() if item.action is ReactionAction.NOTIFY else None
        at = self._clock.now()
        await self._bookkeep(
            f"the delivery of {item.dedup_key}",
            partial(self._store.mark_delivered, entry.id, at=at, notification=notification),
        )
        self.delivered += 1
        return True

    def _agent_sender(self, entry: OutboxEntry) -> Callable[[OutboxItem], Awaitable[None]]:
        """Sends ``entry``'s message, each attempt recorded as begun first; marked as re-sent
        when an attempt had begun before this process started, with a cleared line
        whenever any attempt came before."""
        tried_before_start = self._tried_before_start.setdefault(
            entry.id, entry.attempts > 0 or entry.next_attempt_at is not None
        )
        message = entry.item.message
        if tried_before_start:
            message = resent_text(entry.id, message)
        tried = tried_before_start or entry.attempts > 0

        async def send(item: OutboxItem) -> None:
            nonlocal tried
            await self._store.begin_attempt(entry.id)
            resend, tried = tried, True
            await self._within_attempt_timeout(
                self._messenger.send(item.session_id, message, resend=resend)
            )

        return send

    async def _notify(self, item: OutboxItem) -> None:
        await self._within_attempt_timeout(self._notifier.notify(item.event()))

    async def _within_attempt_timeout(self, attempt: Awaitable[None]) -> None:
        with trio.move_on_after(self._policy.attempt_timeout) as scope:
            await attempt
        if scope.cancelled_caught:
            raise TransientError(f"delivery timed out after {self._policy.attempt_timeout:g}s")

    async def _with_retries(
        self,
        entry: OutboxEntry | None,
        send: Callable[[OutboxItem], Awaitable[None]],
        item: OutboxItem,
    ) -> None:
        """``send(item)``, retried on transient errors; each failure is recorded on
        ``entry`` (None: on no row, the row is settled already)."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._policy.attempts),
            wait=wait_exponential(
                multiplier=self._policy.initial_backoff, max=self._policy.max_backoff
            ),
            retry=retry_if_exception_type(TransientError),
            reraise=True,
            sleep=trio.sleep,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    await send(item)
                except (TransientError, DeliveryError) as error:
                    if entry is not None:
                        await self._bookkeep(
                            f"an attempt at {entry.item.dedup_key}",
                            partial(
                                self._store.record_attempt,
                                entry.id,
                                error=str(error),
                                next_attempt_at=None,
                            ),
                        )
                    raise

    async def _merge(self, entry: OutboxEntry) -> bool:
        item = entry.item
        outcome: list[MergeOutcome] = []

        async def send(item: OutboxItem) -> None:
            if self._merger is None:
                outcome.append(MergeOutcome(merged=False, message="GitHub is not configured"))
                return
            with trio.move_on_after(self._policy.attempt_timeout) as scope:
                outcome.append(await self._merger.merge(item.pr_url, head_sha=item.head_sha))
            if scope.cancelled_caught:
                raise TransientError(f"merge timed out after {self._policy.attempt_timeout:g}s")

        try:
            await self._with_retries(entry, send, item)
        except SCMRateLimited as error:
            await self._requeue(entry, error, at=error.until)
            return False
        except (TransientError, DeliveryError) as error:
            await self._requeue(entry, error)
            return False
        except SCMError as error:  # permanent for this merge: not found, forbidden, auth
            outcome.append(MergeOutcome(merged=False, message=str(error)))
        result = outcome[-1]
        event = merge_outcome_event(item, result)
        now = self._clock.now()
        if result.merged:
            await self._bookkeep(
                f"the merge of {item.dedup_key}",
                partial(self._store.mark_delivered, entry.id, at=now, notification=event),
            )
            self.delivered += 1
        else:
            await self._bookkeep(
                f"the refused merge of {item.dedup_key}",
                partial(
                    self._store.mark_failed,
                    entry.id,
                    at=now,
                    error=result.message,
                    notification=event,
                ),
            )
            self.failed += 1
            log.warning("auto-merge %s refused: %s", item.dedup_key, result.message)
        try:  # the row is settled: a failure here must not reopen it (the merge happened)
            await self._with_retries(None, self._notify, _as_notification(item, event))
        except (TransientError, DeliveryError) as error:
            log.warning("auto-merge %s: the human could not be told: %s", item.dedup_key, error)
        return True

    async def _fall_back_to_human(self, entry: OutboxEntry, error: BaseException) -> bool:
        event = agent_fallback(entry.item, error)
        fallback = OutboxItem(
            dedup_key=entry.item.dedup_key,
            session_id=event.session_id,
            project_id=event.project_id,
            action=ReactionAction.NOTIFY,
            reaction=entry.item.reaction,
            event_type=event.type,
            priority=event.priority,
            message=event.message,
        )
        try:
            await self._with_retries(entry, self._notify, fallback)
        except (TransientError, DeliveryError) as notify_error:
            await self._requeue(entry, notify_error)
            return False
        at = self._clock.now()
        await self._bookkeep(
            f"the give-up on {entry.item.dedup_key}",
            partial(self._store.mark_failed, entry.id, at=at, error=str(error), notification=event),
        )
        self.failed += 1
        log.warning("agent message %s failed, human notified: %s", entry.item.dedup_key, error)
        return True

    async def _requeue(
        self, entry: OutboxEntry, error: BaseException, *, at: datetime | None = None
    ) -> None:
        retry_at = max(self._clock.now() + self._policy.requeue_after, at or self._clock.now())
        await self._bookkeep(
            f"the retry time of {entry.item.dedup_key}",
            partial(
                self._store.record_attempt, entry.id, error=str(error), next_attempt_at=retry_at
            ),
        )
        log.warning(
            "delivery of %s failed, retrying at %s: %s", entry.item.dedup_key, retry_at, error
        )

    async def _bookkeep(self, what: str, record: Callable[[], Awaitable[None]]) -> None:
        """``record()`` (a store write about a delivery), retried with backoff until the
        store takes it. Meanwhile this session's delivery waits; the others go on."""
        delay = self._policy.bookkeeping_backoff
        while True:
            try:
                await record()
            except StoreError as error:
                self._store_fault(f"record {what}", error)
                await trio.sleep(delay)
                delay = min(delay * 2, self._policy.max_bookkeeping_backoff)
            else:
                self._store_works()
                return

    def _store_fault(self, what: str, error: StoreError) -> None:
        self.store_faults += 1
        if not self._store_failing:
            log.warning(
                "outbox: could not %s, will retry (logged once until it works): %s", what, error
            )
        self._store_failing = True

    def _store_works(self) -> None:
        if self._store_failing:
            log.info("outbox: the store records deliveries again")
        self._store_failing = False


def _as_notification(item: OutboxItem, event: NotificationEvent) -> OutboxItem:
    return msgspec.structs.replace(
        item, action=ReactionAction.NOTIFY, priority=event.priority, message=event.message
    )
