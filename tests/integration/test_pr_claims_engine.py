"""PR ownership in the running engine, over both stores: an observation of another live
session's PR is refused naming its owner, and a claim moves the PR in both sessions' own
turns, so each session's reactions follow the PRs it now has."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.domain.errors import ConflictError, NotFoundError
from orchestrator.domain.model import (
    ActivityState,
)
from tests.engine_harness import STORES, Engine, running_engine
from tests.pr_support import ready_observation

URL = "https://github.com/acme/app/pull/3"
APPROVED = ready_observation("abc", url=URL, number=3)


@pytest.fixture(params=sorted(STORES))
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    async with STORES[request.param](tmp_path) as store, running_engine(store) as running:
        yield running


async def test_an_observation_of_another_sessions_pr_is_refused(engine: Engine) -> None:
    a, b = await engine.spawn(), await engine.spawn()
    await engine.manager.apply_pr_observation(a.id, APPROVED)
    with pytest.raises(ConflictError, match=f"belongs to session {a.id}"):
        await engine.manager.apply_pr_observation(b.id, APPROVED)
    assert (await engine.manager.get(a.id)).pr.url == URL
    assert not (await engine.manager.get(b.id)).pr.exists
    # b's engine state is sound after the refusal: its next turn works.
    await engine.activity(b.id, ActivityState.ACTIVE)
    assert (await engine.state(b.id)).lifecycle.activity is not None


async def test_a_claim_moves_the_pr_and_each_sessions_reactions_follow(engine: Engine) -> None:
    a, b = await engine.spawn(), await engine.spawn()
    await engine.manager.apply_pr_observation(a.id, APPROVED)
    await engine.deliver()
    assert engine.notified() == ["reaction.approved-and-green"]  # a's entry reaction
    assert await engine.manager.claim_pr(b.id, URL, 3) == a.id
    assert (await engine.manager.get(b.id)).pr.url == URL
    # Idle now: a has no PR any more (the idle nudge goes to its agent), and b's PR is
    # approved and green (a note to the human), which only their own PR sets can say.
    await engine.activity(a.id, ActivityState.IDLE)
    await engine.activity(b.id, ActivityState.IDLE)
    await engine.deliver()
    assert engine.messenger.messages_for(a.id) != []
    assert engine.messenger.messages_for(b.id) == []
    assert engine.notified() == ["reaction.approved-and-green", "reaction.approved-and-green"]
    assert [n.session_id for n in await engine.store.list_notifications()] == [b.id, a.id]
    with pytest.raises(ConflictError, match=f"belongs to session {b.id}"):
        await engine.manager.apply_pr_observation(a.id, APPROVED)
    await engine.manager.apply_pr_observation(b.id, APPROVED)


async def test_a_claim_for_an_unknown_or_ended_session_is_refused(engine: Engine) -> None:
    a, b = await engine.spawn(), await engine.spawn()
    await engine.manager.apply_pr_observation(a.id, APPROVED)
    with pytest.raises(NotFoundError):
        await engine.manager.claim_pr("mer-99", URL, 3)
    assert engine.manager.cached_sessions == 2  # the unknown id is not kept
    await engine.manager.on_kill_requested(b.id)
    with pytest.raises(ConflictError, match="has ended"):
        await engine.manager.claim_pr(b.id, URL, 3)
    assert (await engine.manager.get(a.id)).pr.url == URL


async def test_a_session_that_ended_leaves_its_pr_to_the_next(engine: Engine) -> None:
    a, b = await engine.spawn(), await engine.spawn()
    await engine.manager.apply_pr_observation(a.id, APPROVED)
    await engine.manager.on_kill_requested(a.id)
    await engine.manager.apply_pr_observation(b.id, APPROVED)
    assert (await engine.manager.get(b.id)).pr.url == URL
    assert not (await engine.manager.get(a.id)).pr.exists
