"""The small pieces of acting on GitHub: the observer kicker, the merger's URL check, and
a claim that still succeeds when the kick fails."""

from __future__ import annotations

import pytest

from adapters.memory import FakeSCMProvider, MemoryStore
from orchestrator.domain.scm import MergeMethod, PRRef, RepoRef, SCMRejected
from orchestrator.pr_actions import ObserverKicker, PRActions, SCMMerger
from tests.engine_harness import running_engine

REPO = RepoRef(owner="acme", name="app")


class Observer:
    def __init__(self) -> None:
        self.targets: list[RepoRef | PRRef] = []

    def kick(self, target: RepoRef | PRRef, /) -> bool:
        self.targets.append(target)
        return True


async def test_the_kicker_names_a_pr_or_else_its_repository() -> None:
    observer = Observer()
    kicker = ObserverKicker(observer)
    await kicker.kick(REPO, 7, "abc")
    await kicker.kick(REPO, None, "abc")
    assert observer.targets == [PRRef(repo=REPO, number=7), REPO]


async def test_the_merger_merges_only_pull_request_urls() -> None:
    merger = SCMMerger(FakeSCMProvider(), MergeMethod.SQUASH)
    with pytest.raises(SCMRejected, match="not the URL of a pull request"):
        await merger.merge("https://github.com/acme/app/issues/7", head_sha="abc")


class BrokenKicker:
    async def kick(self, repo: RepoRef, pr_number: int | None, head_sha: str | None) -> None:
        raise RuntimeError("observer gone")


async def test_a_claim_succeeds_when_the_kick_fails(caplog: pytest.LogCaptureFixture) -> None:
    async with running_engine(MemoryStore()) as engine:
        session = await engine.spawn()
        actions = PRActions(engine.store, engine.manager, kicker=BrokenKicker())
        claimed = await actions.claim(session.id, url="https://github.com/acme/app/pull/7")
        assert claimed.previous_owner is None
        facts = await engine.store.pr_facts_for_session(session.id)
        assert (facts.url, facts.number) == ("https://github.com/acme/app/pull/7", 7)
    assert "kicking the SCM observer for acme/app#7 failed" in caplog.text
