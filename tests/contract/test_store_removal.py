"""Removing a session (``orchestrator rm``), session numbers that are never reused, and the
change-log row a new agent session id writes: the same from every store."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.domain.errors import ConflictError
from orchestrator.domain.model import (
    CheckStatus,
    NotificationEvent,
    Priority,
    SessionMetadata,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.records import ChangeType, CommitUnit
from tests.contract.support import (
    PR1,
    ContractStore,
    at,
    changes,
    check,
    moved,
    observation,
    outbox_item,
    payloads,
    session,
    types,
    unit_for,
)


async def terminated(store: ContractStore, when: float = 1) -> str:
    record = await session(store)
    ended, changed = moved(record, at(when), state=SessionState.TERMINATED)
    await store.commit(unit_for(ended, changed))
    return record.id


async def test_removing_a_session_keeps_its_history_and_logs_the_removal(
    store: ContractStore,
) -> None:
    sid = await terminated(store)
    before = await changes(store)

    assert await store.delete_session(sid, at=at(5)) is True

    assert await store.get_session(sid) is None
    assert await store.list_sessions() == []
    after = await changes(store)
    assert after[: len(before)] == before  # the history stays, naming the session
    [removal] = after[len(before) :]
    assert (removal.type, removal.session_id, removal.project_id, removal.created_at) == (
        ChangeType.SESSION_DELETED,
        sid,
        "mer",
        at(5),
    )
    assert payloads([removal]) == [
        {"id": sid, "state": "terminated", "terminationReason": "", "isAlive": 0, "activity": ""}
    ]
    assert await store.delete_session(sid, at=at(6)) is False  # already gone
    assert await store.delete_session("mer-9", at=at(6)) is False
    assert len(await changes(store)) == len(after)


async def test_removal_takes_the_session_s_prs_trackers_and_notifications_along(
    store: ContractStore,
) -> None:
    record = await session(store)
    other = await session(store)
    pr = observation(checks=(check("c1", CheckStatus.FAILED),))
    ended, changed = moved(record, at(1), state=SessionState.TERMINATED)
    await store.commit(unit_for(ended, changed, pr=pr, outbox=(outbox_item(record, "k1"),)))
    await store.commit(
        CommitUnit(session_id=other.id, at=at(1), outbox=(outbox_item(other, "k2"),))
    )
    event = NotificationEvent(
        type="reaction.ci-failed",
        priority=Priority.ACTION,
        session_id=record.id,
        project_id="mer",
        message="CI failed",
    )
    await store.mark_delivered(1, at=at(2), notification=event)
    await store.mark_delivered(2, at=at(2), notification=None)

    assert await store.delete_session(record.id, at=at(3)) is True

    assert await store.list_pr_facts(record.id) == []
    assert await store.list_checks(PR1) == []
    assert await store.list_trackers(record.id) == []
    assert [e.item.session_id for e in await store.list_outbox()] == [other.id]
    assert await store.list_notifications() == []
    assert [s.id for s in await store.list_sessions()] == [other.id]


async def test_a_session_with_undelivered_reactions_is_not_removed(store: ContractStore) -> None:
    sid = await terminated(store)
    record = await store.get_session(sid)
    assert record is not None
    await store.commit(CommitUnit(session_id=sid, at=at(2), outbox=(outbox_item(record, "k"),)))

    with pytest.raises(ConflictError, match="1 reaction\\(s\\) still being delivered"):
        await store.delete_session(sid, at=at(3))
    assert await store.get_session(sid) is not None
    assert ChangeType.SESSION_DELETED.value not in types(await changes(store))

    await store.mark_failed(1, at=at(4), error="gave up")  # settled: it may go now
    assert await store.delete_session(sid, at=at(5)) is True


async def test_numbers_of_removed_sessions_are_never_given_out_again(
    store: ContractStore,
) -> None:
    first = await terminated(store)
    second = await terminated(store, 2)
    assert (first, second) == ("mer-1", "mer-2")
    await store.delete_session(second, at=at(3))
    assert (await session(store)).id == "mer-3"
    await store.delete_session(first, at=at(4))
    assert (await session(store)).id == "mer-4"
    assert (await session(store, "ao")).id == "ao-1"  # numbers count per project


async def test_a_new_agent_session_id_writes_one_row_carrying_it(store: ContractStore) -> None:
    record = await session(store)
    seen = len(await changes(store))

    # The id alone: one row, with the id in its payload.
    named = msgspec.structs.replace(
        record, metadata=SessionMetadata(agent_session_id="conv-1"), updated_at=at(1)
    )
    await store.commit(unit_for(named, frozenset({"metadata"})))
    # The id and the state together: still one row, with both.
    working, changed = moved(named, at(2), state=SessionState.WORKING, is_alive=True)
    renamed = msgspec.structs.replace(working, metadata=SessionMetadata(agent_session_id="conv-2"))
    await store.commit(unit_for(renamed, changed | {"metadata"}))
    # The same id again, with another state change: the ordinary row, no id.
    ended, changed = moved(renamed, at(3), state=SessionState.TERMINATED)
    ended = msgspec.structs.replace(
        ended,
        lifecycle=msgspec.structs.replace(
            ended.lifecycle, termination_reason=TerminationReason.MANUALLY_KILLED
        ),
    )
    await store.commit(unit_for(ended, changed | {"termination_reason", "metadata"}))

    rows = (await changes(store))[seen:]
    assert types(rows) == ["session_updated"] * 3
    assert [e.created_at for e in rows] == [at(1), at(2), at(3)]
    assert payloads(rows) == [
        {
            "id": "mer-1",
            "state": "not_started",
            "terminationReason": "",
            "isAlive": 0,
            "activity": "",
            "agentSessionId": "conv-1",
        },
        {
            "id": "mer-1",
            "state": "working",
            "terminationReason": "",
            "isAlive": 1,
            "activity": "",
            "agentSessionId": "conv-2",
        },
        {
            "id": "mer-1",
            "state": "terminated",
            "terminationReason": "manually_killed",
            "isAlive": 1,
            "activity": "",
        },
    ]
    stored = await store.get_session(record.id)
    assert stored is not None
    assert stored.metadata.agent_session_id == "conv-2"
