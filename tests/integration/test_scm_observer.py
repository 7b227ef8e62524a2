"""The GitHub observer finds each session's PR and follows it: discovery and ownership,
CI with log tails, re-runs and the CI brake, statuses-only CI, reviews, conflicts and
merges, against the fake GitHub on mock time (``tests/integration/scm_rig.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio

from orchestrator.domain.model import (
    CIState,
    Mergeability,
    PRObservation,
    SessionKind,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.records import Project
from tests.fakes.github import ErrorStatus
from tests.integration.scm_rig import (
    HOUR,
    SETTINGS,
    Clock,
    escalations,
    observing,
)

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


async def test_a_log_that_cannot_be_read_is_named_unavailable_after_three_tries(
    autojump_clock: Clock,
) -> None:
    async with observing() as rig:
        session, pr = await rig.watched_pr()
        logs = "/repos/acme/app/actions/jobs/*/logs"
        rig.fake.faults.inject(logs, ErrorStatus(404), times=None)
        rig.world.add_check_run(pr, "test", conclusion="failure")
        for _ in range(int(SETTINGS.max_age)):
            if len(rig.requests(logs)) == 2:
                break
            await trio.sleep(1)
        await rig.engine.deliver()
        assert rig.messages(session) == []  # the nudge waits for its tail
        await rig.settle(HOUR)
        (message,) = rig.messages(session)
        assert "\n\nFailing output:\nlog unavailable: " in message
        assert len(rig.requests(logs)) == 3


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
