"""Auto-merge end to end in the engine: an approved, green, mergeable PR observed at head X
is merged exactly once, at X, through the outbox; a push in between makes GitHub refuse
and the human is told why. Against ``FakeSCMProvider`` and against the fake GitHub through
the real ``adapters/github`` provider. Also the on-demand merge (``PRActions.merge``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import msgspec
import pytest
import trio
import trio.testing

from adapters.github.auth import StaticToken
from adapters.github.budget import RateBudget
from adapters.github.client import GitHubClient
from adapters.github.provider import GitHubProvider
from adapters.memory import FakeSCMProvider, MemoryStore
from orchestrator.domain.errors import ConflictError
from orchestrator.domain.model import (
    CIState,
    Mergeability,
    Priority,
    PRObservation,
    ReactionAction,
    ReviewDecision,
)
from orchestrator.domain.reaction_policy import load_reaction_policy
from orchestrator.domain.records import OutboxEntry
from orchestrator.domain.scm import MergeMethod, PRDetail, PRRef, RepoRef, SCMUnavailable
from orchestrator.domain.scm_rules import to_observation
from orchestrator.ports import SCMProvider
from orchestrator.pr_actions import PRActions, SCMMerger
from tests.engine_harness import Engine, running_engine
from tests.fakes.github import FakeClock, FakeGitHub
from tests.fakes.github.model import PullRequest
from tests.pr_support import provider_with, ready_observation

AUTO_MERGE = load_reaction_policy({"approved-and-green": {"action": "auto-merge"}})
REPO = RepoRef(owner="acme", name="app")
URL = "https://github.com/acme/app/pull/7"
TOKEN = "ghp_alice_0123456789"


def ready(sha: str) -> PRObservation:
    return ready_observation(sha, url=URL, number=7)


async def merge_rows(engine: Engine) -> list[OutboxEntry]:
    store = engine.store
    assert isinstance(store, MemoryStore)
    return [e for e in await store.list_outbox() if e.item.action is ReactionAction.AUTO_MERGE]


@asynccontextmanager
async def engine_over(provider: SCMProvider, method: MergeMethod) -> AsyncIterator[Engine]:
    merger = SCMMerger(provider, method)
    async with running_engine(MemoryStore(), policy=AUTO_MERGE, merger=merger) as engine:
        yield engine


# --- against FakeSCMProvider --------------------------------------------------------------


def fake_github(sha: str) -> FakeSCMProvider:
    return provider_with(sha, url=URL, number=7)


async def test_approved_and_green_at_x_merges_once_at_x() -> None:
    provider = fake_github("x1")
    async with engine_over(provider, MergeMethod.REBASE) as engine:
        session = await engine.spawn()
        await engine.manager.apply_pr_observation(session.id, ready("x1"))
        await engine.manager.apply_pr_observation(session.id, ready("x1"))  # a re-poll
        await engine.deliver()
        await engine.manager.apply_pr_observation(session.id, ready("x1"))
        await engine.deliver()
        assert provider.merged == [(PRRef(repo=REPO, number=7), "x1", MergeMethod.REBASE)]
        assert [c for c in provider.calls if c.startswith("merge")] == ["merge acme/app#7 x1"]
        [event] = engine.notifier.events
        assert (event.type, event.message) == (
            "reaction.approved-and-green",
            f"Merged {URL} at x1.",
        )
        assert [n.message for n in await engine.store.list_notifications()] == [event.message]
        [row] = await merge_rows(engine)
        assert (row.delivered_at is not None, row.failed_at) == (True, None)


async def test_a_push_before_delivery_is_refused_and_the_human_told_why() -> None:
    provider = fake_github("x1")
    async with engine_over(provider, MergeMethod.SQUASH) as engine:
        session = await engine.spawn()
        await engine.manager.apply_pr_observation(session.id, ready("x1"))
        provider.update_pr(REPO, 7, head_sha="y2")  # the agent pushed
        await engine.deliver()
        assert provider.merged == []
        [event] = engine.notifier.events
        assert event.priority is Priority.ACTION
        assert event.message == f"Auto-merge of {URL} at x1 was refused: Head branch was modified"
        [row] = await merge_rows(engine)
        assert (row.failed_at is not None, row.last_error) == (True, "Head branch was modified")
        # Settled: never retried at the old head; the new head merges once observed ready.
        await engine.deliver()
        assert [c for c in provider.calls if c.startswith("merge")] == ["merge acme/app#7 x1"]
        await engine.manager.apply_pr_observation(session.id, ready("y2"))
        await engine.deliver()
        assert provider.merged == [(PRRef(repo=REPO, number=7), "y2", MergeMethod.SQUASH)]


async def test_a_page_that_fails_after_a_merge_never_repeats_the_merge() -> None:
    provider = fake_github("x1")
    async with engine_over(provider, MergeMethod.SQUASH) as engine:
        engine.notifier.fail_times = 100
        session = await engine.spawn()
        await engine.manager.apply_pr_observation(session.id, ready("x1"))
        await engine.deliver()
        await engine.deliver()
        assert [c for c in provider.calls if c.startswith("merge")] == ["merge acme/app#7 x1"]
        [row] = await merge_rows(engine)
        assert (row.delivered_at is not None, row.last_error) == (True, "")
        notes = await engine.store.list_notifications()
        assert [n.message for n in notes] == [f"Merged {URL} at x1."]  # still listed, streamed


async def test_a_merge_that_could_not_be_sent_waits_and_is_sent_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    provider = fake_github("x1")
    provider.fail("merge", SCMUnavailable("GitHub answered 502"), times=3)  # one delivery's tries
    async with engine_over(provider, MergeMethod.SQUASH) as engine:
        session = await engine.spawn()
        await engine.manager.apply_pr_observation(session.id, ready("x1"))
        await engine.deliver()
        assert (provider.merged, engine.notifier.events) == ([], [])
        [row] = await merge_rows(engine)
        assert (row.failed_at, row.last_error) == (None, "GitHub answered 502")
        await trio.sleep(31)  # the requeue delay
        await engine.deliver()
        assert provider.merged == [(PRRef(repo=REPO, number=7), "x1", MergeMethod.SQUASH)]


async def test_without_github_an_auto_merge_is_refused_with_that_reason() -> None:
    async with running_engine(MemoryStore(), policy=AUTO_MERGE) as engine:
        session = await engine.spawn()
        await engine.manager.apply_pr_observation(session.id, ready("x1"))
        await engine.deliver()
        [event] = engine.notifier.events
        assert event.message.endswith("was refused: GitHub is not configured")


# --- against the fake GitHub, through the real provider --------------------------------------


@dataclass
class GitHub:
    fake: FakeGitHub
    pr: PullRequest
    provider: GitHubProvider

    async def observation(self) -> PRObservation:
        """What an observer would report now: the provider's read, mapped."""
        [detail] = await self.provider.fetch_pull_requests(
            [PRRef(repo=RepoRef(owner="acme", name="app"), number=self.pr.number)]
        )
        assert isinstance(detail, PRDetail)
        return to_observation(detail, None)


@pytest.fixture
async def github() -> AsyncIterator[GitHub]:
    fake = FakeGitHub(FakeClock())
    alice = fake.world.add_user("alice", token=TOKEN)
    reviewer = fake.world.add_user("bob")
    repo = fake.world.create_repo("acme/app")
    pr = fake.world.open_pr(repo, head_ref="feat/x", author=alice)
    fake.world.add_check_run(pr, "tests", conclusion="success")
    fake.world.add_review(pr, reviewer, state="APPROVED")
    client = GitHubClient(
        StaticToken(TOKEN), RateBudget(), api_url=fake.api_url, mounts=fake.mounts()
    )
    try:
        yield GitHub(fake, pr, GitHubProvider(client))
    finally:
        await client.aclose()


def merges(fake: FakeGitHub) -> list[str]:
    return [e.path for e in fake.log.matching("*/merge", method="PUT")]


async def test_the_fake_github_merges_at_the_observed_head(github: GitHub) -> None:
    observation = await github.observation()
    assert (observation.ci, observation.review, observation.mergeability) == (
        CIState.PASSING,
        ReviewDecision.APPROVED,
        Mergeability.MERGEABLE,
    )
    head = github.pr.head_sha
    assert observation.head_sha == head
    async with engine_over(github.provider, MergeMethod.MERGE) as engine:
        session = await engine.spawn()
        await engine.manager.apply_pr_observation(session.id, observation)
        await engine.manager.apply_pr_observation(session.id, observation)
        await engine.deliver()
        await engine.deliver()
        assert github.pr.merged_at is not None
        assert merges(github.fake) == [f"/repos/acme/app/pulls/{github.pr.number}/merge"]
        [event] = engine.notifier.events
        assert event.message == f"Merged {observation.url} at {head[:12]}."
        # What the observer sees next: merged, and the session ends as merged sessions do.
        await engine.manager.apply_pr_observation(session.id, await github.observation())
        assert (await engine.state(session.id)).lifecycle.state.is_terminal


async def test_the_fake_github_refuses_a_merge_at_a_head_that_moved(github: GitHub) -> None:
    observation = await github.observation()
    async with engine_over(github.provider, MergeMethod.SQUASH) as engine:
        session = await engine.spawn()
        await engine.manager.apply_pr_observation(session.id, observation)
        github.fake.world.push(github.pr)  # between the observation and the merge
        await engine.deliver()
        assert github.pr.merged_at is None
        [event] = engine.notifier.events
        assert event.message.startswith(
            f"Auto-merge of {observation.url} at {observation.head_sha[:12]} was refused: "
        )
        assert "Head branch was modified" in event.message


# --- on demand ---------------------------------------------------------------------------


async def test_merging_on_demand_holds_to_the_same_rule() -> None:
    provider = fake_github("x1")
    async with running_engine(MemoryStore()) as engine:  # auto-merge off
        actions = PRActions(
            engine.store, engine.manager, merger=SCMMerger(provider, MergeMethod.SQUASH)
        )
        session = await engine.spawn()
        with pytest.raises(ConflictError, match="no PR"):
            await actions.merge(session.id)
        pending = msgspec.structs.replace(ready("x1"), ci=CIState.PENDING)
        await engine.manager.apply_pr_observation(session.id, pending)
        with pytest.raises(ConflictError, match=r"not merging: CI of .* is pending"):
            await actions.merge(session.id)
        await engine.manager.apply_pr_observation(session.id, ready("x1"))
        provider.update_pr(REPO, 7, head_sha="y2")
        with pytest.raises(
            ConflictError, match=r"GitHub refused .* at x1: Head branch was modified"
        ):
            await actions.merge(session.id)
        await engine.manager.apply_pr_observation(session.id, ready("y2"))
        merged = await actions.merge(session.id)
        assert (merged.url, merged.head_sha, merged.outcome.merged) == (URL, "y2", True)
        assert provider.merged == [(PRRef(repo=REPO, number=7), "y2", MergeMethod.SQUASH)]
        await engine.deliver()
        assert engine.notifier.events[-1].type == "reaction.approved-and-green"  # notify only


async def test_merging_on_demand_without_github_is_refused() -> None:
    async with running_engine(MemoryStore()) as engine:
        session = await engine.spawn()
        await engine.manager.apply_pr_observation(session.id, ready("x1"))
        with pytest.raises(ConflictError, match="GitHub is not configured"):
            await PRActions(engine.store, engine.manager).merge(session.id)
