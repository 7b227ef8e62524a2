"""The GitHub observer against the fake GitHub in process, on trio's mock clock: the real
provider, rate budget and ETag store, and the real lifecycle engine as the sink (over the
memory store), so each test sees what the agent would be sent.

Time is virtual: the fake, the budget and the engine all read trio's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import trio
import trio.testing

from adapters.github.auth import StaticToken
from adapters.github.budget import RateBudget
from adapters.github.client import GitHubClient
from adapters.github.etags import LruETagStore
from adapters.github.provider import GitHubProvider
from adapters.github.retry import RetryPolicy
from adapters.memory import MemoryStore
from orchestrator.clock import TrioClock
from orchestrator.config.schema import GitHubConfig
from orchestrator.domain.errors import StoreError
from orchestrator.domain.model import (
    ESCALATED_EVENT_TYPE,
    CIState,
    Mergeability,
    PRObservation,
    SessionId,
    SessionKind,
    SessionRecord,
    SessionState,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.domain.records import Project
from orchestrator.domain.scm import ObserverState, PRRef, RepoRef
from orchestrator.scm import LifecycleSink, ObserverSettings, SCMObserver
from tests.engine_harness import Engine, running_engine
from tests.fakes.github import FakeGitHub, SecondaryLimit, World
from tests.fakes.github.model import Account, PullRequest, Repo
from tests.fakes.github.requestlog import LoggedRequest

Clock = trio.testing.MockClock

EPOCH = 1_780_000_000.0
TOKEN = "ghp_observer_tests_0000000000000000"
SETTINGS = ObserverSettings.of(GitHubConfig())  # the config file's defaults
REPO = RepoRef(owner="acme", name="app")
HOUR = 3600.0


def epoch_now() -> float:
    """Epoch seconds that follow trio's clock: the fake's and the budget's time."""
    return EPOCH + trio.current_time()


class TrioEpoch:
    def now(self) -> float:
        return epoch_now()


class RecordingSink:
    """The engine as the sink, recording what was delivered; ``fail_next`` deliveries
    raise, as a store that cannot write would."""

    def __init__(self, inner: LifecycleSink) -> None:
        self.inner = inner
        self.delivered: list[tuple[SessionId, PRObservation]] = []
        self.fail_next = 0
        self.attempts = 0
        self._delivery = trio.Event()

    async def observe_pr(self, session_id: SessionId, observation: PRObservation) -> None:
        self.attempts += 1
        if self.fail_next:
            self.fail_next -= 1
            raise StoreError("the disk is full")
        await self.inner.observe_pr(session_id, observation)
        self.delivered.append((session_id, observation))
        self._delivery.set()
        self._delivery = trio.Event()

    async def wait_until(
        self, done: Callable[[list[PRObservation]], bool], *, within: float = HOUR
    ) -> None:
        """Until ``done`` holds for the observations delivered so far, in order."""
        with trio.fail_after(within):
            while not done([observation for _, observation in self.delivered]):
                await self._delivery.wait()

    async def wait_for(self, count: int, *, within: float = HOUR) -> None:
        await self.wait_until(lambda seen: len(seen) >= count, within=within)


@dataclass
class Rig:
    fake: FakeGitHub
    repo: Repo
    alice: Account
    bob: Account
    engine: Engine
    store: MemoryStore
    observer: SCMObserver
    provider: GitHubProvider
    budget: RateBudget
    sink: RecordingSink
    etags: LruETagStore
    sessions: list[SessionRecord] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.fake.world

    async def spawn(
        self, branch: str | None = None, *, kind: SessionKind = SessionKind.WORKER
    ) -> SessionRecord:
        record = await self.store.create_session("app", now=self.engine.clock.now(), kind=kind)
        done = await self.engine.manager.on_spawn_completed(
            record.id,
            SpawnOutcome(
                branch=branch or f"orchestrator/{record.id}",
                workspace_path=f"/work/{record.id}",
                runtime_handle_id=f"{record.id}#1",
                runtime_name="scripted",
            ),
        )
        self.sessions.append(done)
        return done

    def open_pr(self, session: SessionRecord, *, draft: bool = False) -> PullRequest:
        return self.fake.world.open_pr(
            self.repo, head_ref=session.metadata.branch, author=self.alice, draft=draft
        )

    async def watched_pr(self, settle: float = 0.0) -> tuple[SessionRecord, PullRequest]:
        """A session whose PR the observer has found and delivered once; then ``settle``
        seconds more."""
        session = await self.spawn()
        pr = self.open_pr(session)
        await self.sink.wait_for(1)
        await self.settle(settle)
        return session, pr

    def messages(self, session: SessionRecord) -> list[str]:
        return self.engine.messenger.messages_for(session.id)

    async def settle(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass, then deliver what the engine queued."""
        await trio.sleep(seconds)
        await self.engine.deliver()

    def requests(self, path: str = "*", *, status: int | None = None) -> list[LoggedRequest]:
        return self.fake.log.matching(path, status=status)


def escalations(rig: Rig) -> int:
    return rig.engine.notified().count(ESCALATED_EVENT_TYPE)


@asynccontextmanager
async def observing(
    *,
    settings: ObserverSettings = SETTINGS,
    token: str | None = TOKEN,
    run: bool = True,
) -> AsyncIterator[Rig]:
    """A fake GitHub with ``acme/app``, a project on it, the engine, and the observer
    (running in the background unless ``run`` is false)."""
    fake = FakeGitHub(TrioEpoch())
    alice = fake.world.add_user("alice", token=TOKEN)
    bob = fake.world.add_user("bob")
    repo = fake.world.create_repo("acme/app")
    clock = TrioClock(origin=datetime.fromtimestamp(epoch_now(), UTC))
    store = MemoryStore()
    await store.upsert_project(
        Project(
            id="app",
            path="/repos/app",
            repo_origin_url="git@github.com:acme/app.git",
            registered_at=clock.now(),
        )
    )
    budget = RateBudget(clock=epoch_now)
    client = GitHubClient(StaticToken(token), budget, api_url=fake.api_url, mounts=fake.mounts())
    provider = GitHubProvider(client, retry=RetryPolicy(attempts=1))
    etags = LruETagStore()
    async with running_engine(store, clock=clock) as engine:
        sink = RecordingSink(LifecycleSink(engine.manager))
        observer = SCMObserver(provider, sink, store, etags, clock, settings)
        rig = Rig(fake, repo, alice, bob, engine, store, observer, provider, budget, sink, etags)
        try:
            async with trio.open_nursery() as observers:
                if run:
                    await observers.start(observer.run)
                yield rig
                observers.cancel_scope.cancel()
        finally:
            await client.aclose()


# --- discovery ----------------------------------------------------------------------


async def test_a_pr_on_the_sessions_branch_is_found_within_one_listing_interval(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        session = await rig.spawn()
        await trio.sleep(5)
        pr = rig.open_pr(session)
        opened = trio.current_time()
        await rig.sink.wait_for(1)
        assert trio.current_time() - opened <= SETTINGS.repo_interval + 1
        session_id, observation = rig.sink.delivered[0]
        assert session_id == session.id
        assert observation.url == f"https://github.com/acme/app/pull/{pr.number}"
        facts = await rig.store.pr_facts_for_session(session.id)
        assert (facts.exists, facts.number, facts.ci) == (True, pr.number, CIState.UNKNOWN)


async def test_forks_the_default_branch_and_orchestrators_never_claim(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        worker = await rig.spawn("feat/x")
        on_main = await rig.spawn("main")
        orchestrator = await rig.spawn("feat/boss", kind=SessionKind.ORCHESTRATOR)
        mallory = rig.world.add_user("mallory")
        fork = rig.world.fork(rig.repo, "mallory")
        rig.world.open_pr(rig.repo, head_ref="feat/x", author=mallory, head_repo=fork)
        rig.world.open_pr(rig.repo, head_ref="main", author=rig.alice, base_ref="release")
        rig.world.open_pr(rig.repo, head_ref="feat/boss", author=rig.alice)
        await rig.settle(2 * HOUR)
        assert rig.sink.delivered == []
        for session in (worker, on_main, orchestrator):
            assert not (await rig.store.pr_facts_for_session(session.id)).exists
        # The worker's own PR, from the repository itself, is found.
        own = rig.world.open_pr(rig.repo, head_ref="feat/x", author=rig.alice)
        await rig.sink.wait_for(1)
        assert rig.sink.delivered[0][0] == worker.id
        assert rig.sink.delivered[0][1].number == own.number


async def test_a_pr_another_live_session_owns_is_not_attached(autojump_clock: Clock) -> None:
    async with observing() as rig:
        owner = await rig.spawn()
        other = await rig.spawn("feat/shared")
        pr = rig.world.open_pr(rig.repo, head_ref="feat/shared", author=rig.alice)
        url = f"https://github.com/acme/app/pull/{pr.number}"
        # Someone attached it to ``owner`` explicitly (as a claim would).
        await rig.engine.manager.apply_pr_observation(
            owner.id, PRObservation(url=url, number=pr.number)
        )
        await rig.settle(HOUR)
        assert {sid for sid, _ in rig.sink.delivered} == {owner.id}
        assert not (await rig.store.pr_facts_for_session(other.id)).exists


async def test_a_session_added_later_finds_its_already_listed_pr_without_a_new_listing(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        await rig.spawn()  # a repository to watch
        early = rig.world.open_pr(rig.repo, head_ref="feat/later", author=rig.alice)
        await rig.settle(60)
        listings = len(rig.requests("/repos/acme/app/pulls", status=200))
        late = await rig.spawn("feat/later")
        await rig.sink.wait_for(1)
        assert rig.sink.delivered[0] == (late.id, rig.sink.delivered[0][1])
        assert rig.sink.delivered[0][1].number == early.number
        assert len(rig.requests("/repos/acme/app/pulls", status=200)) == listings


# --- CI ------------------------------------------------------------------------------


async def test_a_failing_actions_check_nudges_with_name_url_and_clean_log_tail(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        session, pr = await rig.watched_pr()
        run = rig.world.add_check_run(pr, "test", conclusion="failure")
        await rig.sink.wait_for(2, within=SETTINGS.settled_interval + 2)
        await rig.engine.deliver()
        (message,) = rig.messages(session)
        assert message.startswith("CI is failing on your PR.")
        assert f"Failing check: test ({run.details_url})" in message
        assert "FAILED tests/test_api.py::test_create - AssertionError" in message
        assert "##[error]Process completed with exit code 1." in message
        assert "\x1b" not in message
        assert "Z " not in message.split("Failing output:")[1]  # no timestamps
        facts = await rig.store.pr_facts_for_session(session.id)
        assert facts.ci is CIState.FAILING


async def test_a_rerun_failing_on_the_same_commit_sends_nothing_and_reads_no_log(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        session = await rig.spawn()
        pr = rig.open_pr(session)
        run = rig.world.add_check_run(pr, "test", conclusion="failure")
        await rig.sink.wait_for(1)
        await rig.settle(1)
        assert len(rig.messages(session)) == 1
        again = rig.world.rerun(run)
        await rig.settle(SETTINGS.settled_interval + 1)
        rig.world.finish_check(again, "failure")
        await rig.settle(5 * SETTINGS.settled_interval)
        assert len(rig.messages(session)) == 1
        assert len(rig.requests("/repos/acme/app/actions/jobs/*/logs")) == 1
        assert len(rig.sink.delivered) >= 2  # the re-run was seen, and changed nothing


async def test_three_failing_commits_escalate_once_then_silence_until_green(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        session = await rig.spawn()
        pr = rig.open_pr(session)
        for _ in range(4):
            rig.world.add_check_run(pr, "test", conclusion="failure")
            await rig.settle(SETTINGS.settled_interval + SETTINGS.repo_interval)
            rig.world.push(pr)
        await rig.settle(SETTINGS.settled_interval + SETTINGS.repo_interval)
        assert len(rig.messages(session)) == 2
        assert escalations(rig) == 1
        rig.world.add_check_run(pr, "test", conclusion="success")
        await rig.settle(SETTINGS.settled_interval + SETTINGS.repo_interval)
        rig.world.push(pr)
        rig.world.add_check_run(pr, "test", conclusion="failure")
        await rig.settle(SETTINGS.settled_interval + SETTINGS.repo_interval)
        assert len(rig.messages(session)) == 3  # green lifted the brake
        assert escalations(rig) == 1


async def test_ci_that_posts_only_commit_statuses_is_seen_before_the_backstop(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        session, pr = await rig.watched_pr(120)
        rig.world.set_status(pr, "jenkins", "failure", target_url="https://ci.example/7")
        posted = trio.current_time()
        await rig.sink.wait_until(lambda seen: seen[-1].ci is CIState.FAILING)
        assert trio.current_time() - posted <= SETTINGS.settled_interval + 1
        await rig.engine.deliver()
        (message,) = rig.messages(session)
        assert "Failing check: jenkins (https://ci.example/7)" in message


# --- reviews, conflicts, merges ------------------------------------------------------


async def test_new_review_comments_nudge_once_with_only_the_new_ones(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        session, pr = await rig.watched_pr()
        rig.world.add_review_thread(pr, rig.bob, path="app.py", line=3, body="Rename this.")
        await rig.settle(SETTINGS.repo_interval + 2)
        (first,) = rig.messages(session)
        assert "@bob on app.py:3:\nRename this." in first
        rig.world.add_review_thread(pr, rig.bob, path="db.py", line=9, body="Index it.")
        await rig.settle(SETTINGS.repo_interval + 2)
        assert len(rig.messages(session)) == 2
        second = rig.messages(session)[1]
        assert "@bob on db.py:9:\nIndex it." in second
        assert "Rename this." not in second
        await rig.settle(HOUR)
        assert len(rig.messages(session)) == 2


async def test_a_resolved_thread_is_seen_while_the_review_is_open(autojump_clock: Clock) -> None:
    async with observing() as rig:
        session = await rig.spawn()
        pr = rig.open_pr(session)
        thread = rig.world.add_review_thread(pr, rig.bob, path="app.py", line=3, body="Fix.")
        await rig.sink.wait_for(1)
        assert (await rig.store.pr_facts_for_session(session.id)).review_comments
        rig.world.resolve_thread(thread)  # changes nothing a cheaper request shows
        await rig.settle(SETTINGS.review_interval + 2)
        assert not (await rig.store.pr_facts_for_session(session.id)).review_comments


async def test_a_conflict_nudges(autojump_clock: Clock) -> None:
    async with observing() as rig:
        session, pr = await rig.watched_pr(60)
        rig.world.set_mergeable(pr, conflicting=True)
        await rig.settle(SETTINGS.max_age + 2)
        facts = await rig.store.pr_facts_for_session(session.id)
        assert facts.mergeability is Mergeability.CONFLICTING
        (message,) = rig.messages(session)
        assert "merge conflicts" in message


async def test_a_merged_pr_ends_the_session_and_is_no_longer_polled(autojump_clock: Clock) -> None:
    async with observing() as rig:
        session, pr = await rig.watched_pr()
        rig.world.merge(pr)
        await rig.settle(SETTINGS.repo_interval + 2)
        record = await rig.store.get_session(session.id)
        assert record is not None
        assert record.lifecycle.state is SessionState.TERMINATED
        assert record.lifecycle.termination_reason is TerminationReason.PR_MERGED
        await rig.settle(60)
        rig.fake.log.clear()
        await rig.settle(HOUR)
        assert rig.fake.log.entries == []  # no live session: nothing to watch


# --- cost --------------------------------------------------------------------------


async def test_steady_state_is_free_guards_and_one_batched_backstop_per_max_age(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        sessions = [await rig.spawn() for _ in range(30)]
        for session in sessions:
            rig.world.add_check_run(rig.open_pr(session), "test", conclusion="success")
        await rig.sink.wait_for(30)
        await rig.settle(2 * SETTINGS.max_age)
        rig.fake.log.clear()
        await trio.sleep(HOUR)
        entries = rig.fake.log.entries
        rest = [e for e in entries if e.resource == "core"]
        assert rest
        assert all(e.status == 304 for e in rest)
        graphql = [e for e in entries if e.path == "/graphql"]
        # 30 PRs, 25 a query: two queries per backstop, twelve backstops an hour.
        assert len(graphql) <= 2 * (HOUR / SETTINGS.max_age) + 2
        charged = rig.fake.log.charged_requests()
        assert charged / 30 <= 1.0  # per PR-hour


async def test_cadence_is_tiered_pending_faster_than_settled_drafts_slower(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        pending, settled, draft = [await rig.spawn() for _ in range(3)]
        pending_pr = rig.open_pr(pending)
        settled_pr = rig.open_pr(settled)
        draft_pr = rig.open_pr(draft, draft=True)
        rig.world.add_check_run(pending_pr, "test", status="in_progress")
        rig.world.add_check_run(settled_pr, "test", conclusion="success")
        rig.world.add_check_run(draft_pr, "test", conclusion="success")
        await rig.sink.wait_for(3)
        await rig.settle(120)
        rig.fake.log.clear()
        await trio.sleep(1200)

        def guards(pr: PullRequest) -> int:
            return len(rig.requests(f"/repos/acme/app/commits/{pr.head_sha}/check-runs"))

        assert 1200 / 15 - 2 <= guards(pending_pr) <= 1200 / 15 + 1
        assert 1200 / 60 - 1 <= guards(settled_pr) <= 1200 / 60 + 1
        assert 1200 / 120 - 1 <= guards(draft_pr) <= 1200 / 120 + 1


# --- durability ----------------------------------------------------------------------


async def test_a_failed_delivery_is_redelivered_because_the_etag_did_not_advance(
    autojump_clock: Clock,
) -> None:
    async with observing(run=False) as rig:
        session = await rig.spawn()
        pr = rig.open_pr(session)
        rig.world.add_check_run(pr, "test", conclusion="failure")
        guard = f"/repos/acme/app/commits/{pr.head_sha}/check-runs"
        rig.sink.fail_next = 1
        await rig.observer.poll_once()
        assert rig.sink.attempts == 1
        assert rig.sink.delivered == []
        assert not (await rig.store.pr_facts_for_session(session.id)).exists
        await trio.sleep(SETTINGS.pending_interval)
        await rig.observer.poll_once()
        sent = [e.if_none_match for e in rig.fake.log.matching(guard)]
        assert sent == [None, None]  # the failed round's validator was never stored
        assert len(rig.sink.delivered) == 1
        assert rig.sink.delivered[0][1].ci is CIState.FAILING
        await trio.sleep(SETTINGS.settled_interval)
        await rig.observer.poll_once()
        last = rig.fake.log.matching(guard)[-1]
        assert (last.if_none_match is not None, last.status) == (True, 304)
        await rig.engine.deliver()
        assert len(rig.messages(session)) == 1


async def test_a_restarted_observer_redelivers_once_and_nudges_no_one_again(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        session = await rig.spawn()
        pr = rig.open_pr(session)
        rig.world.add_check_run(pr, "test", conclusion="failure")
        await rig.sink.wait_for(1)
        await rig.settle(1)
        assert len(rig.messages(session)) == 1
        restarted = SCMObserver(
            rig.provider,  # the same GitHub, a fresh observer
            rig.sink,
            rig.store,
            LruETagStore(),
            rig.engine.clock,
            SETTINGS,
        )
        await restarted.poll_once()
        assert len(rig.sink.delivered) == 2  # the first observation goes through the engine
        await rig.settle(1)
        assert len(rig.messages(session)) == 1


# --- kicks, budget, auth ---------------------------------------------------------------


async def test_kicks_within_the_debounce_make_one_early_poll(autojump_clock: Clock) -> None:
    async with observing() as rig:
        session, pr = await rig.watched_pr(5)
        rig.fake.log.clear()
        rig.world.add_check_run(pr, "test", conclusion="failure")
        for _ in range(3):
            assert rig.observer.kick(session.id)
            await trio.sleep(0.5)
        await rig.sink.wait_for(2, within=SETTINGS.kick_debounce + 1)
        assert len(rig.requests(f"/repos/acme/app/commits/{pr.head_sha}/check-runs")) == 1
        assert len(rig.requests("/repos/acme/app/pulls")) == 1
        assert rig.observer.kick(PRRef(repo=REPO, number=pr.number))
        assert rig.observer.kick(REPO)
        assert not rig.observer.kick("app-99")


async def test_a_secondary_limit_with_retry_after_sends_nothing_until_then(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        await rig.watched_pr(5)
        rig.fake.faults.inject("/repos/acme/app/pulls", SecondaryLimit(retry_after=60))
        for _ in range(2 * int(SETTINGS.repo_interval)):
            if rig.requests("/repos/acme/app/pulls", status=403):
                break
            await trio.sleep(0.5)
        assert rig.requests("/repos/acme/app/pulls", status=403)
        limited_at = trio.current_time()
        rig.fake.log.clear()
        await trio.sleep(59)
        assert rig.fake.log.entries == []
        assert rig.observer.status().rate_limited >= 1
        await trio.sleep(SETTINGS.settled_interval + 1)
        assert rig.fake.log.entries
        assert trio.current_time() - limited_at >= 60


async def test_background_polling_stops_at_the_reserve_while_a_kick_still_passes(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        session, pr = await rig.watched_pr(5)
        # The agents' own calls drain the shared bucket below the background reserve (10%).
        rig.world.consume(rig.alice, "core", 4700)
        await trio.sleep(SETTINGS.settled_interval + 1)  # one answer tells the budget
        rig.fake.log.clear()
        await trio.sleep(15 * 60)
        assert rig.fake.log.entries == []
        assert rig.observer.status().rate_limited >= 1
        rig.world.add_check_run(pr, "test", conclusion="failure")
        assert rig.observer.kick(session.id)
        await rig.sink.wait_for(2, within=SETTINGS.kick_debounce + 1)
        assert rig.fake.log.matching("/repos/acme/app/commits/*/check-runs")
        await rig.engine.deliver()
        assert len(rig.messages(session)) == 1


async def test_without_a_token_the_observer_is_disabled_and_says_why(
    autojump_clock: Clock,
) -> None:
    async with observing(token=None) as rig:
        session = await rig.spawn()
        rig.open_pr(session)
        await rig.settle(HOUR)
        status = rig.observer.status()
        assert status.state is ObserverState.DISABLED
        assert status.reason == "no token configured"
        assert rig.fake.log.entries == []
        assert rig.sink.delivered == []


async def test_status_counts_what_the_observer_did(autojump_clock: Clock) -> None:
    async with observing() as rig:
        await rig.watched_pr()
        await rig.settle(SETTINGS.settled_interval * 2)
        status = rig.observer.status()
        assert status.state is ObserverState.RUNNING
        assert status.auth.available
        assert (status.repos, status.prs, status.observations) == (1, 1, 1)
        assert status.guards > status.not_modified > 0
        assert status.details >= 1
        core = {r.resource: r for r in status.budget.resources}["core"]
        assert core.limit == 5000


@pytest.mark.parametrize("origin", ["https://github.com/acme/app.git", "git@github.com:acme/app"])
async def test_projects_name_their_repository_by_https_or_ssh_origin(
    autojump_clock: Clock, origin: str
) -> None:
    async with observing() as rig:
        await rig.store.upsert_project(
            Project(
                id="app", path="/repos/app", repo_origin_url=origin, registered_at=datetime.now(UTC)
            )
        )
        await rig.watched_pr()
