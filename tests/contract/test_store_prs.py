"""PR rows, check history and comments, and who owns a PR, the same from every store."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from orchestrator.domain.errors import ConflictError, NotFoundError, StoreError
from orchestrator.domain.model import (
    CheckStatus,
    CIState,
    Mergeability,
    PRComment,
    PRFacts,
    PRObservation,
    ReviewDecision,
    SessionRecord,
    SessionState,
)
from orchestrator.domain.records import ChangeEvent, CommitUnit
from tests.contract.support import (
    PR1,
    PR2,
    PR3,
    ContractStore,
    at,
    changes,
    check,
    moved,
    observation,
    session,
    types,
    unit_for,
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


async def ended(store: ContractStore, record: SessionRecord, when: float) -> None:
    """Terminate ``record`` in the store."""
    done, changed = moved(record, at(when), state=SessionState.TERMINATED)
    await store.commit(unit_for(done, changed))


def claim_rows(events: list[ChangeEvent]) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [
        (e.project_id, e.session_id, json.loads(e.payload))
        for e in events
        if "previousSession" in json.loads(e.payload)
    ]


async def test_a_pr_of_another_live_session_is_refused_naming_its_owner(
    store: ContractStore,
) -> None:
    a = await session(store)
    b = await session(store)
    comments = (PRComment(id="c1", body="fix this"),)
    await store.write_pr_observation(a.id, observation(comments=comments), at(1))
    before = await changes(store)
    with pytest.raises(ConflictError, match=r"belongs to session mer-1.*orchestrator pr claim"):
        await store.write_pr_observation(b.id, observation(ci=CIState.FAILING), at(2))
    with pytest.raises(ConflictError, match="mer-1"):
        await store.commit(CommitUnit(session_id=b.id, at=at(2), pr=observation()))
    assert [f.url for f in await store.list_pr_facts(a.id)] == [PR1]
    assert await store.list_pr_facts(b.id) == []
    assert [c.id for c in await store.list_pr_comments(PR1)] == ["c1"]  # a's comments stay
    assert await changes(store) == before


async def test_a_refused_pr_fails_its_whole_unit(store: ContractStore) -> None:
    a = await session(store)
    b = await session(store)
    await store.write_pr_observation(a.id, observation(), at(1))
    working, changed = moved(b, at(2), state=SessionState.WORKING)
    before = await changes(store)
    with pytest.raises(ConflictError):
        await store.commit(unit_for(working, changed, pr=observation()))
    assert (await store.get_session(b.id)) == b
    assert await changes(store) == before


async def test_a_session_takes_over_the_pr_of_a_session_that_ended(
    store: ContractStore,
) -> None:
    a = await session(store)
    b = await session(store, "ao")
    await store.write_pr_observation(a.id, observation(), at(1))
    await ended(store, a, 2)
    base = await store.max_change_seq()
    await store.write_pr_observation(b.id, observation(ci=CIState.PASSING), at(3))
    assert await store.list_pr_facts(a.id) == []
    assert [(f.url, f.ci) for f in await store.list_pr_facts(b.id)] == [(PR1, CIState.PASSING)]
    events = await changes(store, base)
    payload = {
        "url": PR1,
        "session": "ao-1",
        "previousSession": "mer-1",
        "state": "open",
        "ci": "passing",
        "review": "none",
        "mergeability": "unknown",
    }
    # One row per side, whatever else the write changed: the move is the news.
    assert types(events) == ["pr_updated", "pr_updated"]
    assert claim_rows(events) == [("mer", "mer-1", payload), ("ao", "ao-1", payload)]
    assert {e.created_at for e in events} == {at(3)}


async def test_a_claim_moves_the_pr_with_its_history_and_logs_both_sides(
    store: ContractStore,
) -> None:
    a = await session(store)
    b = await session(store)
    obs = observation(
        number=1,
        ci=CIState.FAILING,
        review=ReviewDecision.APPROVED,
        checks=(check("c1", FAILED),),
        comments=(PRComment(id="c1", body="fix this"),),
        head_sha="c1",
    )
    await store.write_pr_observation(a.id, obs, at(1))
    base = await store.max_change_seq()
    assert await store.claim_pr(b.id, PR1, number=1, now=at(2)) == a.id
    assert await store.list_pr_facts(a.id) == []
    facts = await store.list_pr_facts(b.id)
    assert facts == [msgspec.structs.replace(obs.facts(), number=1)]
    assert [c.id for c in await store.list_pr_comments(PR1)] == ["c1"]
    assert [r.commit for r in await store.recent_check_runs(PR1, "ci", 5)] == ["c1"]
    payload = {
        "url": PR1,
        "session": "mer-2",
        "previousSession": "mer-1",
        "state": "open",
        "ci": "failing",
        "review": "approved",
        "mergeability": "unknown",
    }
    events = await changes(store, base)
    assert claim_rows(events) == [("mer", "mer-1", payload), ("mer", "mer-2", payload)]
    assert len(events) == 2
    assert {e.created_at for e in events} == {at(2)}
    # Now b's observations land and a's are refused.
    await store.write_pr_observation(b.id, observation(ci=CIState.PASSING), at(3))
    with pytest.raises(ConflictError, match="mer-2"):
        await store.write_pr_observation(a.id, observation(), at(4))
    check_event = (await changes(store, base))[-1]
    assert (check_event.type.value, check_event.session_id) == ("pr_updated", "mer-2")


async def test_a_claimed_pr_speaks_for_the_session(store: ContractStore) -> None:
    a = await session(store)
    b = await session(store)
    await store.write_pr_observation(a.id, observation(PR1), at(1))
    await store.write_pr_observation(b.id, observation(PR2, number=2), at(5))
    await store.claim_pr(b.id, PR1, number=1, now=at(5))  # same time: the claim is newer
    assert [f.url for f in await store.list_pr_facts(b.id)] == [PR1, PR2]
    assert (await store.pr_facts_for_session(b.id)).url == PR1


async def test_claiming_a_pr_not_seen_yet_records_it_for_the_session(
    store: ContractStore,
) -> None:
    record = await session(store)
    base = await store.max_change_seq()
    assert await store.claim_pr(record.id, PR2, number=2, now=at(1)) is None
    assert await store.pr_facts_for_session(record.id) == PRFacts(exists=True, url=PR2, number=2)
    assert types(await changes(store, base)) == ["pr_created"]
    other = await session(store)
    with pytest.raises(ConflictError, match="mer-1"):
        await store.write_pr_observation(other.id, observation(PR2, number=2), at(2))


async def test_claiming_a_pr_the_session_owns_changes_nothing(store: ContractStore) -> None:
    record = await session(store)
    await store.write_pr_observation(record.id, observation(), at(1))
    before = await changes(store)
    facts = await store.list_pr_facts(record.id)
    assert await store.claim_pr(record.id, PR1, number=1, now=at(2)) is None
    assert await changes(store) == before
    assert await store.list_pr_facts(record.id) == facts


async def test_a_claim_for_an_unknown_or_ended_session_is_refused(store: ContractStore) -> None:
    a = await session(store)
    b = await session(store)
    await store.write_pr_observation(a.id, observation(), at(1))
    await ended(store, b, 2)
    before = await changes(store)
    with pytest.raises(NotFoundError):
        await store.claim_pr("mer-9", PR1, number=1, now=at(3))
    with pytest.raises(ConflictError, match="mer-2 has ended"):
        await store.claim_pr(b.id, PR1, number=1, now=at(3))
    assert [f.url for f in await store.list_pr_facts(a.id)] == [PR1]
    assert await changes(store) == before


async def test_the_head_commit_is_what_the_last_observation_said(store: ContractStore) -> None:
    record = await session(store)
    await store.write_pr_observation(record.id, observation(head_sha="abc"), at(1))
    assert (await store.pr_facts_for_session(record.id)).head_sha == "abc"
    await store.write_pr_observation(record.id, observation(), at(2))  # read at no known head
    assert (await store.pr_facts_for_session(record.id)).head_sha == ""


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
