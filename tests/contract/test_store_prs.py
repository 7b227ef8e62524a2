"""PR rows, check history and comments (docs/behaviour.md, "PR facts"), the same from every
store."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.domain.errors import StoreError
from orchestrator.domain.model import (
    CheckStatus,
    CIState,
    Mergeability,
    PRComment,
    PRFacts,
    PRObservation,
    ReviewDecision,
)
from orchestrator.domain.records import CommitUnit
from tests.contract.support import (
    PR1,
    PR2,
    PR3,
    ContractStore,
    at,
    changes,
    check,
    observation,
    session,
)

FAILED, PASSED, RUNNING = CheckStatus.FAILED, CheckStatus.PASSED, CheckStatus.IN_PROGRESS


async def statuses(store: ContractStore, pr_url: str, name: str, limit: int) -> list[CheckStatus]:
    """The CI brake's view: the statuses of the recent runs."""
    return [run.status for run in await store.recent_check_runs(pr_url, name, limit)]


async def test_an_observation_persists_pr_checks_and_comments(store: ContractStore) -> None:
    record = await session(store)
    obs = observation(
        number=7,
        ci=CIState.FAILING,
        review=ReviewDecision.CHANGES_REQUESTED,
        mergeability=Mergeability.CONFLICTING,
        checks=(check("abc", FAILED),),
        comments=(PRComment(id="c1", author="ann", file="a.py", line=3, body="nit"),),
    )
    await store.write_pr_observation(record.id, obs, at(1))
    assert await store.pr_facts_for_session(record.id) == PRFacts(
        exists=True,
        url=PR1,
        number=7,
        ci=CIState.FAILING,
        review=ReviewDecision.CHANGES_REQUESTED,
        mergeability=Mergeability.CONFLICTING,
        review_comments=True,
    )
    assert await store.recent_check_runs(PR1, "ci", 5) == [
        msgspec.structs.replace(check("abc", FAILED), created_at=at(1))
    ]
    assert await store.list_pr_comments(PR1) == [
        PRComment(id="c1", author="ann", file="a.py", line=3, body="nit", created_at=at(1))
    ]


@pytest.mark.parametrize(
    ("merged", "closed", "draft", "expected"),
    [
        (True, True, True, "merged"),
        (False, True, True, "closed"),
        (False, False, True, "draft"),
        (False, False, False, "open"),
    ],
)
async def test_pr_state_collapses_merged_closed_draft_open(
    store: ContractStore, merged: bool, closed: bool, draft: bool, expected: str
) -> None:
    record = await session(store)
    obs = observation(merged=merged, closed=closed, draft=draft)
    await store.write_pr_observation(record.id, obs, at(1))
    facts = await store.pr_facts_for_session(record.id)
    flags = {"merged": facts.merged, "closed": facts.closed, "draft": facts.draft}
    assert [name for name, on in flags.items() if on] == ([] if expected == "open" else [expected])


async def test_a_session_without_prs_has_no_facts(store: ContractStore) -> None:
    record = await session(store)
    assert await store.pr_facts_for_session(record.id) == PRFacts()
    assert await store.list_pr_facts(record.id) == []


async def test_pr_facts_prefer_the_newest_open_or_draft_pr(store: ContractStore) -> None:
    record = await session(store)
    await store.write_pr_observation(record.id, observation(PR1, number=1), at(1))
    await store.write_pr_observation(record.id, observation(PR2, number=2, draft=True), at(2))
    await store.write_pr_observation(record.id, observation(PR3, number=3, closed=True), at(3))
    # Newest first: PR3 (closed), PR2 (draft), PR1 (open); the first open/draft one wins.
    assert [f.url for f in await store.list_pr_facts(record.id)] == [PR3, PR2, PR1]
    picked = await store.pr_facts_for_session(record.id)
    assert (picked.url, picked.draft) == (PR2, True)

    await store.write_pr_observation(record.id, observation(PR2, number=2, merged=True), at(4))
    picked = await store.pr_facts_for_session(record.id)
    assert picked.url == PR1  # the remaining open PR, though older than both closed ones

    await store.write_pr_observation(record.id, observation(PR1, closed=True), at(5))
    picked = await store.pr_facts_for_session(record.id)
    assert (picked.url, picked.closed) == (PR1, True)  # none open: the newest of all


async def test_equal_update_times_rank_the_last_written_pr_first(store: ContractStore) -> None:
    record = await session(store)
    await store.write_pr_observation(record.id, observation(PR1), at(1))
    await store.write_pr_observation(record.id, observation(PR2), at(1))
    assert [f.url for f in await store.list_pr_facts(record.id)] == [PR2, PR1]
    await store.write_pr_observation(record.id, observation(PR1, number=9), at(1))
    assert [f.url for f in await store.list_pr_facts(record.id)] == [PR1, PR2]
    assert (await store.pr_facts_for_session(record.id)).url == PR1


async def test_review_comments_come_from_the_picked_pr_only(store: ContractStore) -> None:
    record = await session(store)
    unresolved = (PRComment(id="c1", body="please fix"),)
    await store.write_pr_observation(
        record.id, observation(PR1, closed=True, comments=unresolved), at(2)
    )
    await store.write_pr_observation(record.id, observation(PR2), at(1))
    facts = await store.list_pr_facts(record.id)
    assert [(f.url, f.review_comments) for f in facts] == [(PR1, True), (PR2, False)]
    assert (await store.pr_facts_for_session(record.id)).review_comments is False

    resolved = (PRComment(id="c2", resolved=True),)
    await store.write_pr_observation(record.id, observation(PR2, comments=resolved), at(3))
    assert (await store.pr_facts_for_session(record.id)).review_comments is False
    await store.write_pr_observation(record.id, observation(PR2, comments=unresolved), at(4))
    assert (await store.pr_facts_for_session(record.id)).review_comments is True


async def test_the_comment_set_is_replaced_by_each_observation(store: ContractStore) -> None:
    record = await session(store)
    two = (PRComment(id="b", body="2", created_at=at(2)), PRComment(id="a", created_at=at(1)))
    await store.write_pr_observation(record.id, observation(comments=two), at(3))
    assert [c.id for c in await store.list_pr_comments(PR1)] == ["a", "b"]
    one = (PRComment(id="b", body="2'", resolved=True, created_at=at(2)),)
    await store.write_pr_observation(record.id, observation(comments=one), at(4))
    assert await store.list_pr_comments(PR1) == list(one)
    await store.write_pr_observation(record.id, observation(), at(5))
    assert await store.list_pr_comments(PR1) == []


async def test_a_repeated_comment_id_keeps_the_last_copy(store: ContractStore) -> None:
    record = await session(store)
    dup = (PRComment(id="c", body="old"), PRComment(id="c", body="new", resolved=True))
    await store.write_pr_observation(record.id, observation(comments=dup), at(1))
    assert [(c.body, c.resolved) for c in await store.list_pr_comments(PR1)] == [("new", True)]
    assert (await store.pr_facts_for_session(record.id)).review_comments is False


async def test_check_upsert_keeps_the_first_seen_time(store: ContractStore) -> None:
    record = await session(store)
    await store.write_pr_observation(record.id, observation(checks=(check("abc", RUNNING),)), at(1))
    again = msgspec.structs.replace(check("abc", FAILED), url="https://ci/1", log_tail="boom")
    await store.write_pr_observation(record.id, observation(checks=(again,)), at(5))
    runs = await store.recent_check_runs(PR1, "ci", 5)
    assert runs == [msgspec.structs.replace(again, created_at=at(1))]
    assert await store.list_checks(PR1) == runs


async def test_a_check_keeps_its_own_first_seen_time_when_given(store: ContractStore) -> None:
    record = await session(store)
    given = check("abc", FAILED, created_at=at(-30))
    await store.write_pr_observation(record.id, observation(checks=(given,)), at(1))
    assert [r.created_at for r in await store.recent_check_runs(PR1, "ci", 1)] == [at(-30)]


async def test_brake_query_lists_recent_runs_newest_first(store: ContractStore) -> None:
    record = await session(store)
    for n, commit in enumerate(("c1", "c2", "c3"), start=1):
        await store.write_pr_observation(
            record.id, observation(checks=(check(commit, FAILED),)), at(n)
        )
        # Re-polling the same commit neither adds a run nor moves it.
        await store.write_pr_observation(
            record.id, observation(checks=(check(commit, FAILED),)), at(n + 0.5)
        )
    assert await statuses(store, PR1, "ci", 3) == [FAILED] * 3
    await store.write_pr_observation(record.id, observation(checks=(check("c4", PASSED),)), at(9))
    assert await statuses(store, PR1, "ci", 3) == [PASSED, FAILED, FAILED]
    assert [r.commit for r in await store.recent_check_runs(PR1, "ci", 10)] == [
        "c4",
        "c3",
        "c2",
        "c1",
    ]
    assert await statuses(store, PR1, "lint", 3) == []
    assert await statuses(store, PR2, "ci", 3) == []


async def test_brake_query_breaks_first_seen_ties_by_insertion_newest_first(
    store: ContractStore,
) -> None:
    record = await session(store)
    checks = (check("c1", FAILED), check("c2", PASSED), check("c3", FAILED, name="lint"))
    await store.write_pr_observation(record.id, observation(checks=checks), at(1))
    assert [r.commit for r in await store.recent_check_runs(PR1, "ci", 5)] == ["c2", "c1"]
    assert [c.commit for c in await store.list_checks(PR1)] == ["c1", "c2", "c3"]


async def test_a_pr_moves_to_the_session_that_observed_it_last(store: ContractStore) -> None:
    a = await session(store)
    b = await session(store)
    await store.write_pr_observation(a.id, observation(), at(1))
    await store.write_pr_observation(b.id, observation(), at(2))
    assert await store.list_pr_facts(a.id) == []
    assert [f.url for f in await store.list_pr_facts(b.id)] == [PR1]


async def test_a_failed_fetch_changes_nothing(store: ContractStore) -> None:
    record = await session(store)
    await store.write_pr_observation(record.id, PRObservation(url=PR1, fetched=False), at(1))
    await store.commit(
        CommitUnit(session_id=record.id, at=at(2), pr=PRObservation(url=PR1, fetched=False))
    )
    assert await store.list_pr_facts(record.id) == []
    assert len(await changes(store)) == 1


async def test_a_pr_of_an_unknown_session_is_refused(store: ContractStore) -> None:
    await session(store)
    with pytest.raises(StoreError):
        await store.write_pr_observation("mer-9", observation(), at(1))
    assert await store.list_pr_facts("mer-9") == []
    assert len(await changes(store)) == 1


async def test_a_check_with_an_invalid_status_writes_nothing(store: ContractStore) -> None:
    record = await session(store)
    bad = msgspec.structs.replace(check("abc", FAILED), status="exploded")
    obs = observation(checks=(check("ok", PASSED), bad), comments=(PRComment(id="c"),))
    before = await changes(store)
    with pytest.raises(StoreError):
        await store.write_pr_observation(record.id, obs, at(1))
    with pytest.raises(StoreError):
        await store.commit(CommitUnit(session_id=record.id, at=at(1), pr=obs))
    assert await store.list_pr_facts(record.id) == []
    assert await store.recent_check_runs(PR1, "ci", 5) == []
    assert await store.list_pr_comments(PR1) == []
    assert await changes(store) == before
