"""The bulk SQLite board reader answers exactly what the per-session reader over the store's
own methods answers, on one database holding every case the board distinguishes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from adapters.http.dashboard.reads import CardFacts, StoreBoardReads
from adapters.http.dashboard.sqlite_reads import (
    TITLE_PROMPT_CHARS,
    SqliteBoardReads,
    open_sqlite_board_reads,
)
from adapters.http.dashboard.views import build_card
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from orchestrator.domain.model import (
    ActivityState,
    CheckStatus,
    CIState,
    PRCheck,
    PRComment,
    PRObservation,
    ReviewDecision,
    SpawnOutcome,
    TerminationReason,
)
from tests.engine_harness import Engine, running_engine

LONG_PROMPT = "Port the billing module\n" + "details " * 100


def _check(name: str, commit: str, status: CheckStatus) -> PRCheck:
    return PRCheck(name=name, commit=commit, status=status, url=f"https://ci/{name}/{commit}")


@pytest.fixture
async def seeded(tmp_path: Path) -> AsyncIterator[tuple[Engine, SqliteStore, SqliteBoardReads]]:
    path = tmp_path / "board.db"
    async with open_sqlite_store(path) as store, running_engine(store) as engine:
        await _seed(engine)
        await engine.deliver()
        async with open_sqlite_board_reads(path) as reads:
            yield engine, store, reads


async def _seed(engine: Engine) -> None:
    ids = [(await engine.spawn("a")).id for _ in range(5)] + [(await engine.spawn("b")).id]
    plain, ci, review, moved, ended, other = ids
    manager = engine.manager
    await engine.project("empty")
    await engine.activity(plain, ActivityState.IDLE)
    record = await engine.store.create_session("b", now=engine.clock.now(), issue_id="77")
    await manager.on_spawn_completed(record.id, SpawnOutcome(prompt=LONG_PROMPT, branch="x"))
    url = "https://github.com/o/r/pull/"
    # Failing CI three commits running: nudge, nudge, brake; a second check passes.
    for commit in ("c1", "c2", "c3"):
        checks = (
            _check("unit", commit, CheckStatus.FAILED),
            _check("lint", commit, CheckStatus.PASSED),
        )
        await manager.apply_pr_observation(
            ci, PRObservation(url=f"{url}1", number=1, ci=CIState.FAILING, checks=checks)
        )
    # A check that failed, then passed on a newer commit: not failing now.
    await manager.apply_pr_observation(
        other,
        PRObservation(url=f"{url}9", number=9, checks=(_check("unit", "d1", CheckStatus.FAILED),)),
    )
    await manager.apply_pr_observation(
        other,
        PRObservation(url=f"{url}9", number=9, checks=(_check("unit", "d2", CheckStatus.PASSED),)),
    )
    await manager.apply_pr_observation(
        review,
        PRObservation(
            url=f"{url}2",
            number=2,
            review=ReviewDecision.CHANGES_REQUESTED,
            comments=(PRComment(id="k1", author="dana", body="no"),),
        ),
    )
    # Two PRs: the closed older one does not speak for the session, the open newer one does.
    await manager.apply_pr_observation(moved, PRObservation(url=f"{url}3", number=3, closed=True))
    await manager.apply_pr_observation(moved, PRObservation(url=f"{url}4", number=4))
    await engine.activity(ended, ActivityState.WAITING_INPUT)
    await manager.on_kill_requested(ended, TerminationReason.MANUALLY_KILLED)


def _comparable(facts: CardFacts) -> CardFacts:
    """The SQLite reader reads only the prompt's head: compare what it promises."""
    record = facts.record
    metadata = msgspec.structs.replace(
        record.metadata, prompt=record.metadata.prompt[:TITLE_PROMPT_CHARS]
    )
    return CardFacts(
        record=msgspec.structs.replace(record, metadata=metadata),
        pr=facts.pr,
        failing_checks=facts.failing_checks,
        trackers=facts.trackers,
    )


async def test_board_facts_and_cards_match_the_store_reader(
    seeded: tuple[Engine, SqliteStore, SqliteBoardReads],
) -> None:
    _, store, bulk = seeded
    reference = StoreBoardReads(store)
    for project in (None, "a", "b", "empty"):
        expected = [_comparable(f) for f in await reference.card_facts(project)]
        found = await bulk.card_facts(project)
        assert found == expected, project
        assert [build_card(f) for f in found] == [build_card(f) for f in expected]
    everything = await bulk.card_facts(None)
    assert len(everything) == 7
    # The cases above are really there.
    by_id = {f.record.id: build_card(f) for f in everything}
    assert by_id["a-2"].ci_braked
    assert [c.name for c in by_id["a-2"].failing_checks] == ["unit"]
    assert by_id["b-1"].failing_checks == ()
    assert by_id["a-4"].pr.number == 4
    assert by_id["b-2"].title == "Issue 77"
    assert by_id["b-2"].subtitle == "Port the billing module"
    for facts in await reference.card_facts(None):
        assert await bulk.card_facts_of(facts.record.id) == _comparable(facts)
    assert await bulk.card_facts_of("a-99") is None


async def test_timeline_and_unread_reads_match_the_store_reader(
    seeded: tuple[Engine, SqliteStore, SqliteBoardReads],
) -> None:
    _, store, bulk = seeded
    reference = StoreBoardReads(store)
    for project, session_id in (("a", "a-2"), ("a", "a-5"), ("b", "b-1"), ("b", "nope")):
        assert await bulk.session_changes(session_id, project, 10) == (
            await reference.session_changes(session_id, project, 10)
        )
        assert await bulk.session_nudges(session_id, 10) == (
            await reference.session_nudges(session_id, 10)
        )
    assert len(await bulk.session_nudges("a-2", 10)) >= 2  # two CI nudges, then the brake
    for scope in (None, "a", "b"):
        assert await bulk.unread_notifications(scope) == (
            await reference.unread_notifications(scope)
        )
    assert await bulk.unread_notifications(None) >= 1
