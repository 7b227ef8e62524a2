"""What the GitHub observer costs and how it keeps going: steady-state requests, tiered
cadence, redelivery after a failed acknowledgement, a restart, kicks, rate limits and the
reserve left to the agents, no token, and its status; on mock time against the fake GitHub
(``tests/integration/scm_rig.py``)."""

from __future__ import annotations

import trio

from adapters.github.etags import LruETagStore
from orchestrator.domain.model import (
    CIState,
)
from orchestrator.domain.scm import ObserverState, PRRef
from orchestrator.scm import SCMObserver
from tests.fakes.github import SecondaryLimit
from tests.fakes.github.model import PullRequest
from tests.integration.scm_rig import (
    HOUR,
    REPO,
    SETTINGS,
    Clock,
    observing,
)

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
