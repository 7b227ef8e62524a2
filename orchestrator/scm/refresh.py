"""Refreshing tracked PRs: their guards, batched details, reviews and log tails, and the
delivery of each observation to its session, after which (and only after which) the ETags
that led to it are put into the ETag store."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec
import trio

from orchestrator.domain.errors import ConflictError, OrchestratorError
from orchestrator.domain.model import PRObservation, PRState, SessionId
from orchestrator.domain.scm import (
    ChecksSnapshot,
    NotModified,
    PRDetail,
    PRMissing,
    SCMError,
    SCMPriority,
    SCMRateLimited,
)
from orchestrator.domain.scm_rules import (
    latest_per_name,
    log_unavailable,
    to_observation,
    wants_log_tail,
)
from orchestrator.ports import Clock, ETagKey, ETagStore, PRObservationSink, SCMProvider
from orchestrator.scm.settings import ObserverSettings
from orchestrator.scm.tracking import (
    LOG_TAIL_ATTEMPTS,
    NEVER,
    TrackedPR,
    Tracking,
    checks_key,
    status_key,
)

log = logging.getLogger(__name__)

GuardCall = Callable[..., Awaitable[ChecksSnapshot | NotModified]]


def observation_digest(observation: PRObservation) -> bytes:
    return hashlib.blake2b(msgspec.json.encode(observation), digest_size=16).digest()


class PRRefresher:
    """The PR half of a round, over the observer's ``Tracking``."""

    def __init__(
        self,
        provider: SCMProvider,
        sink: PRObservationSink,
        etags: ETagStore,
        clock: Clock,
        settings: ObserverSettings,
        tracking: Tracking,
    ) -> None:
        self._provider = provider
        self._sink = sink
        self._etags = etags
        self._clock = clock
        self._settings = settings
        self._t = tracking

    # --- guards -------------------------------------------------------------------------

    def guard_wanted(self, pr: TrackedPR, now: float) -> bool:
        """Due, or about to be fetched without a validator for its head: reading the
        guard first folds its first answer into this round's fetch."""
        if pr.guard_due <= now:
            return True
        return pr.dirty and self._etags.get(checks_key(pr.ref.repo, pr.head_sha)) is None

    async def poll_guards(self, pr: TrackedPR, now: float) -> None:
        priority = SCMPriority.KICK if pr.kicked else SCMPriority.BACKGROUND
        repo, sha = pr.ref.repo, pr.head_sha
        try:
            changed = await self._guard(
                pr, checks_key(repo, sha), self._provider.check_runs, priority
            )
            if pr.uses_statuses:
                key = status_key(repo, sha)
                statuses = await self._guard(pr, key, self._provider.commit_status, priority)
                changed, pr.status_sha = changed or statuses, sha
        except SCMRateLimited as limited:
            pr.not_before = self.limited(limited)
            return
        except SCMError as error:
            # A head that vanished (force-push) or a refusal: the details will tell.
            self.failed(f"guards of {pr.url}", error)
            changed = True
        if changed or pr.awaits_mergeability():
            pr.dirty = True
        pr.guard_due = now + pr.guard_interval(self._settings)

    async def _guard(
        self, pr: TrackedPR, key: ETagKey, call: GuardCall, priority: SCMPriority
    ) -> bool:
        """Whether the guard's answer differs from what was last delivered. A fresh
        answer's validator waits in ``pr.pending`` until the PR is delivered."""
        etag = self._etags.get(key)
        answer = await call(pr.ref.repo, key[-1], etag=etag, priority=priority)
        self._t.counters.guards += 1
        if isinstance(answer, NotModified):
            self._t.counters.not_modified += 1
            if answer.etag and answer.etag != etag and key not in pr.pending:
                self._etags.put(key, answer.etag)
            return False
        if pr.fingerprints.get(key) == answer.fingerprint:
            self._etags.put(key, answer.etag)  # the same content under a new validator
            return False
        pr.pending[key] = (answer.etag, answer.fingerprint)
        return True

    def _commit_pr(self, pr: TrackedPR) -> None:
        for key, (etag, fingerprint) in pr.pending.items():
            self._etags.put(key, etag)
            pr.fingerprints[key] = fingerprint
        pr.pending.clear()
        for key in [k for k in pr.fingerprints if k[-1] != pr.head_sha]:
            del pr.fingerprints[key]  # an old head's: never asked about again

    # --- details, reviews, log tails, delivery ------------------------------------------

    async def fetch_dirty(self, now: float) -> None:
        settings = self._settings
        for pr in self._t.prs.values():
            if now - pr.detail_at >= settings.max_age:
                pr.dirty = True  # the backstop
        ready = [pr for pr in self._t.prs.values() if pr.dirty and pr.not_before <= now]
        if not ready:
            return
        # A batch costs one point whatever its size: fill it with PRs past half their
        # backstop, so backstops fall into step instead of each costing a query.
        room = -len(ready) % settings.batch_size
        spare = sorted(
            (
                pr
                for pr in self._t.prs.values()
                if not pr.dirty
                and pr.not_before <= now
                and now - pr.detail_at >= settings.max_age / 2
            ),
            key=lambda pr: pr.detail_at,
        )
        for pr in spare[:room]:
            pr.dirty = True
            ready.append(pr)
        kicked = [pr for pr in ready if pr.kicked]
        background = [pr for pr in ready if not pr.kicked]
        for group, priority in ((kicked, SCMPriority.KICK), (background, SCMPriority.BACKGROUND)):
            if group:
                await self._fetch_group(group, priority, now)

    async def _fetch_group(self, group: list[TrackedPR], priority: SCMPriority, now: float) -> None:
        try:
            answers = await self._provider.fetch_pull_requests(
                [pr.ref for pr in group], priority=priority
            )
        except SCMRateLimited as limited:
            until = self.limited(limited)
            for pr in group:
                pr.not_before = until
            return
        except SCMError as error:
            self.failed("PR details", error)
            for pr in group:
                pr.not_before = now + self._settings.pending_interval
            return
        self._t.counters.details += len(group)
        for pr, answer in zip(group, answers, strict=True):
            if isinstance(answer, PRMissing):
                self.failed(f"details of {pr.url}", SCMError(answer.reason))
                pr.not_before = now + self._settings.max_age
                continue
            pr.detail_at = now
            await self._complete(pr, answer, priority, now)

    async def _complete(
        self, pr: TrackedPR, detail: PRDetail, priority: SCMPriority, now: float
    ) -> None:
        """Add reviews and log tails to fresh details, then deliver them."""
        pr.head_sha, pr.updated_at = detail.head_sha, detail.updated_at or pr.updated_at
        pr.url = detail.url or pr.url
        decision_moved = pr.review is not None and pr.review.decision is not detail.review
        stale = pr.review is None or pr.review_wanted or decision_moved or pr.review_due <= now
        if stale and not await self._read_review(pr, priority, now) and pr.review is None:
            return  # never send an observation that would erase the comments already known
        with_tails = await self._with_tails(pr, detail, priority, now)
        if with_tails is None:
            return
        pr.detail = with_tails
        await self._deliver(pr, now)

    async def _read_review(self, pr: TrackedPR, priority: SCMPriority, now: float) -> bool:
        try:
            fresh = await self._provider.fetch_reviews(pr.ref, priority=priority)
        except SCMRateLimited as limited:
            pr.not_before = self.limited(limited)
            return False
        except SCMError as error:
            self.failed(f"reviews of {pr.url}", error)
            pr.not_before = now + self._settings.pending_interval
            return False
        self._t.counters.reviews += 1
        pr.review, pr.review_wanted = pr.merge_review(fresh), False
        pr.review_due = now + self._settings.review_interval if pr.wants_review_polls() else NEVER
        return True

    async def refresh_review(self, pr: TrackedPR, now: float) -> None:
        """A review-only poll: deliver the last details with what the reviewers say now."""
        priority = SCMPriority.KICK if pr.kicked else SCMPriority.BACKGROUND
        before = pr.review
        if not await self._read_review(pr, priority, now):
            pr.review_due = now + self._settings.review_interval
            return
        if pr.detail is not None and pr.review != before:
            await self._deliver(pr, now)
        pr.kicked = False

    async def _with_tails(
        self, pr: TrackedPR, detail: PRDetail, priority: SCMPriority, now: float
    ) -> PRDetail | None:
        """``detail`` with the log tail of each failed Actions job, read once per check and
        commit: a re-run on the same commit keeps the first tail, since it is not a new
        failure. None while a tail is still to come (the PR stays dirty)."""
        head = detail.head_sha
        pr.tails = {k: v for k, v in pr.tails.items() if k[1] == head}
        pr.tail_failures = {k: n for k, n in pr.tail_failures.items() if k[1] == head}
        wanted = [c for c in latest_per_name(detail.checks, head) if wants_log_tail(c)]
        missing = False
        for check in wanted:
            key = (check.name, check.commit)
            if key in pr.tails or check.provider_id is None:
                continue
            try:
                pr.tails[key] = await self._provider.fetch_log_tail(
                    pr.ref.repo, check.provider_id, priority=priority
                )
                self._t.counters.log_tails += 1
            except SCMRateLimited as limited:
                pr.not_before = self.limited(limited)
                return None
            except SCMError as error:
                failures = pr.tail_failures.get(key, 0) + 1
                pr.tail_failures[key] = failures
                if failures >= LOG_TAIL_ATTEMPTS:
                    pr.tails[key] = log_unavailable(str(error))
                else:
                    missing = True
        if missing:
            pr.not_before = now + self._settings.pending_interval
            return None
        checks = tuple(
            msgspec.structs.replace(c, log_tail=pr.tails[(c.name, c.commit)])
            if wants_log_tail(c) and (c.name, c.commit) in pr.tails
            else c
            for c in detail.checks
        )
        return msgspec.structs.replace(detail, checks=checks)

    async def _deliver(self, pr: TrackedPR, now: float) -> None:
        detail = pr.detail
        if detail is None:
            return
        observation = to_observation(detail, pr.review)
        digest = observation_digest(observation)
        if digest != pr.delivered:
            try:
                await self._sink.observe_pr(pr.session_id, observation)
            except OrchestratorError as error:
                self._t.counters.delivery_failures += 1
                self.failed(f"delivering {pr.url} to {pr.session_id}", error)
                pr.pending.clear()  # its guards must answer afresh next time
                pr.not_before = now + self._settings.pending_interval
                if isinstance(error, ConflictError):  # the store keeps the PR elsewhere
                    self._t.refused.add((pr.url, pr.session_id))
                    self._t.prs.pop(pr.key, None)
                return
            pr.delivered = digest
            self._t.counters.observations += 1
        self._commit_pr(pr)
        pr.dirty = pr.kicked = False
        if detail.state in (PRState.MERGED, PRState.CLOSED):
            self._t.prs.pop(pr.key, None)  # delivered once; a reopened PR is listed again
            log.info("%s is %s: no longer watched", pr.url, detail.state)

    # --- helpers ------------------------------------------------------------------------

    def limited(self, limited: SCMRateLimited) -> float:
        """The trio time the limit lifts at."""
        self._t.counters.rate_limited += 1
        wait = (limited.until - self._clock.now()).total_seconds()
        return trio.current_time() + max(1.0, wait if math.isfinite(wait) else 60.0)

    def failed(self, what: str, error: BaseException) -> None:
        """Note a failed call; the round logs one line for all of them (GitHub being down
        fails every PR's call, which must not flood the log)."""
        self._t.last_error = f"{what}: {error}"
        self._t.round_failures += 1
        log.debug("GitHub observer: %s failed: %s", what, error)


class AppliesPRObservations(Protocol):
    async def apply_pr_observation(
        self, session_id: SessionId, observation: PRObservation
    ) -> None: ...


class LifecycleSink:
    """The lifecycle manager as the observer's ``PRObservationSink``: each observation is
    one ordinary PR turn, acknowledged once durable."""

    def __init__(self, lifecycle: AppliesPRObservations) -> None:
        self._lifecycle = lifecycle

    async def observe_pr(self, session_id: SessionId, observation: PRObservation) -> None:
        await self._lifecycle.apply_pr_observation(session_id, observation)
