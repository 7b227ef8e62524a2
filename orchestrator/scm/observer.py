"""The GitHub observer: finds each live session's PR, watches it cheaply, and hands what
changed to the session as an ordinary PR observation (docs/design.md, "Where the next
capabilities go").

One task runs rounds. A round polls only what is due:

1. every ``repo_interval`` the sessions are re-read, and each watched repository's open-PR
   listing is revalidated (a 304 is free). A changed listing attributes new PRs to
   sessions by exact head ref, and marks PRs whose head or update time moved, or that left
   the open list (merged or closed), as *dirty*;
2. each PR's guards (the head commit's check runs, and its combined status when CI posts
   statuses) at a tiered cadence: a guard that changed marks the PR dirty;
3. a PR whose details are older than ``max_age`` is dirty too: the backstop for what no
   guard shows;
4. dirty PRs are fetched in batched detail queries (topped up with PRs past half their
   backstop, which costs nothing extra), with reviews when they may have changed and the
   log tails of newly failed Actions jobs;
5. each PR's observation is sent to its session unless it equals the last one acknowledged;
   only once it is durable are the ETags that led to it put into the ETag store.

A kick (an agent's turn ended, an API refresh, a webhook) makes its session's repository
and PRs due after a short debounce, still under the rate budget. A failed fetch is never
sent as an observation; it is retried later. Only ports are used: the provider, the sink
(the lifecycle manager), the store's reads, the ETag store and the clock.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime

import trio

from orchestrator.domain.model import ProjectId, SessionId
from orchestrator.domain.scm import (
    NotModified,
    ObserverState,
    PRListing,
    PRRef,
    RepoRef,
    SCMAuthState,
    SCMError,
    SCMObserverStatus,
    SCMPriority,
    SCMRateLimited,
)
from orchestrator.domain.scm_rules import (
    attribute_pr,
)
from orchestrator.ports import (
    Clock,
    ETagStore,
    PRObservationSink,
    SCMProvider,
    SCMSessionReader,
)
from orchestrator.scm.discovery import SessionScan, scan_sessions
from orchestrator.scm.refresh import PRRefresher
from orchestrator.scm.settings import ObserverSettings
from orchestrator.scm.tracking import (
    TrackedPR,
    TrackedRepo,
    Tracking,
    listing_key,
    pr_key,
    repo_key,
)

log = logging.getLogger(__name__)

KickTarget = SessionId | RepoRef | PRRef


class SCMObserver:
    """Watches the PRs of live sessions on one GitHub host. Start it with
    ``await nursery.start(observer.run)``; ``poll_once`` runs one round (tests, benchmarks)."""

    def __init__(
        self,
        provider: SCMProvider,
        sink: PRObservationSink,
        sessions: SCMSessionReader,
        etags: ETagStore,
        clock: Clock,
        settings: ObserverSettings,
        *,
        explicit_repos: Mapping[ProjectId, str] | None = None,
        disabled_reason: str = "",
    ) -> None:
        self._provider = provider
        self._sessions = sessions
        self._etags = etags
        self._clock = clock
        self._settings = settings
        self._explicit_repos = dict(explicit_repos or {})
        self._disabled_reason = disabled_reason
        self._t = Tracking()
        self._prs = self._t.prs
        self._repos = self._t.repos
        self._refresh = PRRefresher(provider, sink, etags, clock, settings, self._t)
        self._sessions_due = 0.0
        self._auth_due = 0.0
        self._wake = trio.Event()
        self._state = ObserverState.DISABLED if disabled_reason else ObserverState.STARTING
        self._reason = disabled_reason
        self._auth = SCMAuthState(available=False, reason="not resolved yet")
        self._last_round_at: datetime | None = None

    # --- running ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll until cancelled. Disabled in the config: report it and do nothing."""
        task_status.started()
        if self._disabled_reason:
            log.info("GitHub observer disabled: %s", self._disabled_reason)
            await trio.sleep_forever()
        while True:
            try:
                await self.poll_once()
            except Exception as error:
                self._t.last_error = f"{type(error).__name__}: {error}"
                log.exception("GitHub observer: round failed; trying again later")
                # Whatever failed may be due again at once: pause rather than spin.
                await trio.sleep(self._settings.pending_interval)
                continue
            await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        with trio.move_on_at(self.next_due()):
            await self._wake.wait()
        self._wake = trio.Event()

    def next_due(self) -> float:
        """When the next round has something to do (trio time)."""
        if self._state is ObserverState.DISABLED:
            return self._auth_due
        due = [self._sessions_due, *(repo.due for repo in self._repos.values())]
        for pr in self._prs.values():
            soonest = min(pr.guard_due, pr.review_due, pr.detail_at + self._settings.max_age)
            if pr.dirty:
                soonest = 0.0
            due.append(max(soonest, pr.not_before))
        return min(due)

    def kick(self, target: KickTarget) -> bool:
        """Make ``target`` due after the debounce: a session (its repositories and PRs), a
        repository (its listing and every tracked PR in it) or one PR. Kicks within the
        debounce coalesce into one poll, which the rate budget treats as someone waiting.
        Returns whether anything is watched for it; an unknown session makes the sessions
        due for a re-read instead (it may have just got its branch)."""
        due = trio.current_time() + self._settings.kick_debounce
        repos: list[TrackedRepo] = []
        prs: list[TrackedPR] = []
        if isinstance(target, PRRef):
            prs = [pr for pr in (self._prs.get(pr_key(target)),) if pr is not None]
            repos = [r for r in (self._repos.get(repo_key(target.repo)),) if r is not None]
        elif isinstance(target, RepoRef):
            key = repo_key(target)
            repos = [r for r in (self._repos.get(key),) if r is not None]
            prs = [pr for pr in self._prs.values() if pr.key[0] == key]
        else:
            prs = [pr for pr in self._prs.values() if pr.session_id == target]
            repos = [
                repo
                for repo in self._repos.values()
                if any(c.session_id == target for c in repo.claims)
            ]
            if not prs and not repos:
                self._sessions_due = min(self._sessions_due, due)
        for repo in repos:
            repo.due, repo.kicked = min(repo.due, due), True
        for pr in prs:
            pr.guard_due, pr.not_before, pr.kicked = (
                min(pr.guard_due, due),
                min(pr.not_before, due),
                True,
            )
            if pr.wants_review_polls():
                # The agent may have answered or resolved threads, which only a review
                # read shows; a new comment moves the PR in the listing anyway.
                pr.review_due = min(pr.review_due, due)
        self._wake.set()
        return bool(repos or prs)

    def status(self) -> SCMObserverStatus:
        return SCMObserverStatus(
            state=self._state,
            reason=self._reason,
            auth=self._auth,
            repos=len(self._repos),
            prs=len(self._prs),
            last_round_at=self._last_round_at,
            last_error=self._t.last_error,
            budget=self._provider.rate_budget(),
            **dataclasses.asdict(self._t.counters),
        )

    # --- one round ----------------------------------------------------------------------

    async def poll_once(self) -> None:
        """One round: whatever is due now, in order (see the module docstring)."""
        now = trio.current_time()
        self._t.round_failures = 0
        if not await self._authorised(now):
            return
        if now >= self._sessions_due:
            await self._rescan(now)
        for repo in list(self._repos.values()):
            if repo.due <= now:
                await self._poll_listing(repo, now)
        refresh = self._refresh
        for pr in list(self._prs.values()):
            if pr.not_before <= now and pr.head_sha and refresh.guard_wanted(pr, now):
                await refresh.poll_guards(pr, now)
        await refresh.fetch_dirty(now)
        for pr in list(self._prs.values()):
            if not pr.dirty and pr.review_due <= now and pr.not_before <= now:
                await refresh.refresh_review(pr, now)
        self._commit_listings()
        for pr in self._prs.values():
            pr.kicked = pr.kicked and pr.dirty  # a kick lasts until its PR is delivered
        self._t.counters.rounds += 1
        self._last_round_at = self._clock.now()
        if self._t.round_failures:
            log.warning(
                "GitHub observer: %d calls failed this round, retried later (last: %s)",
                self._t.round_failures,
                self._t.last_error,
            )

    async def _authorised(self, now: float) -> bool:
        if now < self._auth_due and self._state is ObserverState.DISABLED:
            return False
        self._auth = await self._provider.auth_state()
        if self._auth.available:
            if self._state is not ObserverState.RUNNING:
                log.info("GitHub observer running (token from %s)", self._auth.source)
            self._state, self._reason = ObserverState.RUNNING, ""
            return True
        if self._state is not ObserverState.DISABLED:
            log.warning("GitHub observer disabled: %s", self._auth.reason)
        self._state, self._reason = ObserverState.DISABLED, self._auth.reason
        self._auth_due = now + self._settings.repo_interval
        return False

    # --- sessions and attribution -------------------------------------------------------

    async def _rescan(self, now: float) -> None:
        scan = await scan_sessions(
            self._sessions, host=self._settings.host, explicit_repos=self._explicit_repos
        )
        self._sessions_due = now + self._settings.repo_interval
        self._t.live, self._t.owners = scan.live, scan.owners
        for key in [k for k in self._repos if k not in scan.claims]:
            del self._repos[key]
        for key, claims in scan.claims.items():
            repo = self._repos.get(key)
            if repo is None:
                repo = self._repos[key] = TrackedRepo(ref=scan.repos[key], due=now)
            added = {c.session_id for c in claims} - {c.session_id for c in repo.claims}
            repo.claims = claims
            if added and repo.listing is not None:
                self._attribute(repo, now)  # a newcomer's PR may be listed already
        self._track_known(scan, now)

    def _track_known(self, scan: SessionScan, now: float) -> None:
        """Track the open PRs the store gives live sessions; drop those of ended sessions."""
        for key, pr in list(self._prs.items()):
            owner = scan.owners.get(pr.url, pr.session_id)
            if owner not in scan.live:
                del self._prs[key]
            elif owner != pr.session_id:  # claimed by another session meanwhile
                pr.session_id, pr.delivered, pr.dirty = owner, None, True
        for session_id, ref, url in scan.known:
            if pr_key(ref) not in self._prs:
                self._prs[pr_key(ref)] = TrackedPR(ref=ref, session_id=session_id, url=url)
                log.debug("tracking %s for %s", url, session_id)

    def _attribute(self, repo: TrackedRepo, now: float) -> None:
        """Track the listed PRs that belong to a session and are not tracked yet."""
        for summary in repo.listing or ():
            key = (repo_key(repo.ref), summary.number)
            if key in self._prs:
                continue
            session_id = attribute_pr(
                summary,
                repo.ref,
                repo.claims,
                default_branch=repo.default_branch or summary.default_branch,
            )
            if session_id is None or (summary.url, session_id) in self._t.refused:
                continue
            owner = self._t.owners.get(summary.url)
            if owner is not None and owner != session_id and owner in self._t.live:
                continue  # another live session has it: only an explicit claim moves it
            self._prs[key] = TrackedPR(
                ref=PRRef(repo=repo.ref, number=summary.number),
                session_id=session_id,
                url=summary.url,
                head_sha=summary.head_sha,
                updated_at=summary.updated_at,
                guard_due=now,
            )
            repo.waiting_on.add(key)
            log.info("found %s for session %s", summary.url, session_id)

    # --- the open-PR listing ------------------------------------------------------------

    async def _poll_listing(self, repo: TrackedRepo, now: float) -> None:
        priority = SCMPriority.KICK if repo.kicked else SCMPriority.BACKGROUND
        key = listing_key(repo.ref)
        try:
            answer = await self._provider.list_open_prs(
                repo.ref, etag=self._etags.get(key), priority=priority
            )
        except SCMRateLimited as limited:
            repo.due = self._refresh.limited(limited)
            return
        except SCMError as error:
            self._refresh.failed(f"open PRs of {repo.ref.full_name}", error)
            repo.due = now + self._settings.repo_interval
            return
        repo.due, repo.kicked = now + self._settings.repo_interval, False
        self._t.counters.guards += 1
        if isinstance(answer, NotModified):
            self._t.counters.not_modified += 1
            if repo.has_pending:
                # Back to the body the stored validator covers: what the newer listing
                # dirtied is still dirty, so nothing is lost by dropping it.
                repo.has_pending, repo.waiting_on = False, set()
            elif answer.etag:
                self._etags.put(key, answer.etag)  # GitHub may rotate a validator
            return
        self._apply_listing(repo, answer, now)

    def _apply_listing(self, repo: TrackedRepo, listing: PRListing, now: float) -> None:
        repo.listing = listing.prs
        repo.default_branch = next(
            (p.default_branch for p in listing.prs if p.default_branch), repo.default_branch
        )
        repo.pending_etag, repo.has_pending, repo.waiting_on = listing.etag, True, set()
        rkey = repo_key(repo.ref)
        listed = {(rkey, p.number): p for p in listing.prs}
        for key, pr in self._prs.items():
            if key[0] != rkey:
                continue
            summary = listed.get(key)
            if summary is None:
                pr.dirty = True  # it left the open list: merged or closed
            elif summary.head_sha != pr.head_sha or summary.updated_at != pr.updated_at:
                pr.review_wanted = pr.review_wanted or summary.updated_at != pr.updated_at
                pr.head_sha, pr.updated_at = summary.head_sha, summary.updated_at
                pr.dirty = True
            if pr.dirty:
                repo.waiting_on.add(key)
        self._attribute(repo, now)

    def _commit_listings(self) -> None:
        """Put each listing's validator once every PR it dirtied was delivered."""
        for repo in self._repos.values():
            if not repo.has_pending:
                continue
            if any(k in self._prs and self._prs[k].dirty for k in repo.waiting_on):
                continue
            self._etags.put(listing_key(repo.ref), repo.pending_etag)
            repo.has_pending, repo.waiting_on = False, set()
