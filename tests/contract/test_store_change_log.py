"""The change log as the schema's triggers write it (docs/behaviour.md, "Change feed"): exact
payload text (key order, ``isAlive`` as an integer), one row per watched change, no row
otherwise."""

from __future__ import annotations

import msgspec

from orchestrator.domain.model import (
    Activity,
    ActivitySource,
    ActivityState,
    CheckStatus,
    CIState,
    DetectingState,
    NotificationEvent,
    PRComment,
    Priority,
    ReviewDecision,
    SessionMetadata,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.records import ChangeEvent, ChangeType, CommitUnit
from tests.contract.support import (
    PR1,
    T0,
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


async def test_session_created_and_updated_rows(store: ContractStore) -> None:
    record = await session(store)
    working, changed = moved(
        record, at(1), state=SessionState.WORKING, is_alive=True, activity=ActivityState.ACTIVE
    )
    await store.commit(unit_for(working, changed))
    assert await changes(store) == [
        ChangeEvent(
            seq=1,
            project_id="mer",
            session_id="mer-1",
            type=ChangeType.SESSION_CREATED,
            payload='{"id":"mer-1","state":"not_started","terminationReason":"",'
            '"isAlive":0,"activity":""}',
            created_at=T0,
        ),
        ChangeEvent(
            seq=2,
            project_id="mer",
            session_id="mer-1",
            type=ChangeType.SESSION_UPDATED,
            payload='{"id":"mer-1","state":"working","terminationReason":"",'
            '"isAlive":1,"activity":"active"}',
            created_at=at(1),
        ),
    ]
    assert await store.max_change_seq() == 2


async def test_each_watched_session_field_emits_one_row(store: ContractStore) -> None:
    record = await session(store)
    working, changed = moved(record, at(1), state=SessionState.WORKING)
    await store.commit(unit_for(working, changed))
    alive, changed = moved(working, at(2), is_alive=True)
    await store.commit(unit_for(alive, changed))
    idle, changed = moved(alive, at(3), activity=ActivityState.IDLE)
    await store.commit(unit_for(idle, changed))
    killed = msgspec.structs.replace(
        idle,
        lifecycle=msgspec.structs.replace(
            idle.lifecycle,
            state=SessionState.TERMINATED,
            termination_reason=TerminationReason.MANUALLY_KILLED,
        ),
        updated_at=at(4),
    )
    await store.commit(unit_for(killed, frozenset({"state", "termination_reason"})))
    events = await changes(store)
    assert types(events) == ["session_created"] + ["session_updated"] * 4
    assert payloads(events)[1:] == [
        {"id": "mer-1", "state": "working", "terminationReason": "", "isAlive": 0, "activity": ""},
        {"id": "mer-1", "state": "working", "terminationReason": "", "isAlive": 1, "activity": ""},
        {
            "id": "mer-1",
            "state": "working",
            "terminationReason": "",
            "isAlive": 1,
            "activity": "idle",
        },
        {
            "id": "mer-1",
            "state": "terminated",
            "terminationReason": "manually_killed",
            "isAlive": 1,
            "activity": "idle",
        },
    ]
    assert [e.created_at for e in events] == [T0, at(1), at(2), at(3), at(4)]


async def test_unwatched_session_changes_emit_nothing(store: ContractStore) -> None:
    record = await session(store)
    active, changed = moved(record, at(1), activity=ActivityState.ACTIVE)
    await store.commit(unit_for(active, changed))
    seq = await store.max_change_seq()

    # metadata only
    meta = msgspec.structs.replace(
        active, metadata=SessionMetadata(branch="b", prompt="p"), updated_at=at(2)
    )
    await store.commit(unit_for(meta, frozenset({"metadata"})))
    # updated_at only
    await store.commit(unit_for(msgspec.structs.replace(meta, updated_at=at(3)), frozenset()))
    # activity_last_at and activity_source only (same activity state)
    same_state = msgspec.structs.replace(
        meta,
        lifecycle=msgspec.structs.replace(
            meta.lifecycle,
            activity=Activity(
                state=ActivityState.ACTIVE, last_activity_at=at(4), source=ActivitySource.HOOK
            ),
        ),
        updated_at=at(4),
    )
    await store.commit(unit_for(same_state, frozenset({"activity"})))
    # detecting memory climbing
    for attempts in (1, 2):
        detecting = msgspec.structs.replace(
            same_state,
            lifecycle=msgspec.structs.replace(
                same_state.lifecycle,
                detecting=DetectingState(attempts=attempts, started_at=at(5), evidence_hash="h"),
            ),
            updated_at=at(5 + attempts),
        )
        await store.commit(unit_for(detecting, frozenset({"detecting"})))
    # trackers and outbox rows are not watched either
    await store.commit(
        CommitUnit(session_id=record.id, at=at(8), outbox=(outbox_item(record, "k1"),))
    )
    assert await store.changes_after(seq, limit=100) == []
    stored = await store.get_session(record.id)
    assert stored is not None
    assert stored.lifecycle.detecting is not None
    assert stored.lifecycle.detecting.attempts == 2


async def test_pr_rows_created_updated_and_the_unwatched_pr_changes(
    store: ContractStore,
) -> None:
    a = await session(store)
    base = await store.max_change_seq()
    await store.write_pr_observation(a.id, observation(), at(1))
    await store.write_pr_observation(a.id, observation(ci=CIState.FAILING), at(2))
    # Unwatched: the number, comments, updated_at. (A move to another session is watched:
    # tests/contract/test_store_prs.py.)
    await store.write_pr_observation(a.id, observation(number=42, ci=CIState.FAILING), at(3))
    await store.write_pr_observation(
        a.id, observation(number=42, ci=CIState.FAILING, comments=(PRComment(id="c"),)), at(5)
    )
    # Watched again.
    await store.write_pr_observation(
        a.id,
        observation(number=42, draft=True, ci=CIState.FAILING, review=ReviewDecision.APPROVED),
        at(6),
    )
    events = await store.changes_after(base, limit=100)
    assert types(events) == ["pr_created", "pr_updated", "pr_updated"]
    assert [e.payload for e in events] == [
        '{"url":"' + PR1 + '","session":"mer-1","state":"open","ci":"unknown",'
        '"review":"none","mergeability":"unknown"}',
        '{"url":"' + PR1 + '","session":"mer-1","state":"open","ci":"failing",'
        '"review":"none","mergeability":"unknown"}',
        '{"url":"' + PR1 + '","session":"mer-1","state":"draft","ci":"failing",'
        '"review":"approved","mergeability":"unknown"}',
    ]
    assert [(e.project_id, e.session_id, e.created_at) for e in events] == [
        ("mer", "mer-1", at(1)),
        ("mer", "mer-1", at(2)),
        ("mer", "mer-1", at(6)),
    ]


async def test_check_rows_on_insert_and_on_status_change_only(store: ContractStore) -> None:
    record = await session(store)
    base = await store.max_change_seq()
    for n, status in enumerate((CheckStatus.IN_PROGRESS, CheckStatus.FAILED, CheckStatus.FAILED)):
        await store.write_pr_observation(
            record.id, observation(checks=(check("abc", status),)), at(10 + n)
        )
    events = [
        e for e in await store.changes_after(base, limit=100) if e.type == "pr_check_recorded"
    ]
    assert [e.payload for e in events] == [
        '{"pr":"' + PR1 + '","name":"ci","commit":"abc","status":"in_progress"}',
        '{"pr":"' + PR1 + '","name":"ci","commit":"abc","status":"failed"}',
    ]
    # Both stamped with the check's first-seen time, attributed through the PR's session.
    assert [(e.project_id, e.session_id, e.created_at) for e in events] == [
        ("mer", "mer-1", at(10)),
        ("mer", "mer-1", at(10)),
    ]


async def test_a_notification_row_on_delivery(store: ContractStore) -> None:
    record = await session(store)
    await store.commit(
        CommitUnit(session_id=record.id, at=at(1), outbox=(outbox_item(record, "k"),))
    )
    (entry,) = await store.pending_outbox(now=at(1), limit=10)
    message = 'CI "failed" on\nmain\t\\ é漢 \x01'
    event = NotificationEvent(
        type="reaction.ci-failed",
        priority=Priority.URGENT,
        session_id=record.id,
        project_id=record.project_id,
        message=message,
    )
    base = await store.max_change_seq()
    await store.mark_delivered(entry.id, at=at(2), notification=event)
    (row,) = await store.changes_after(base, limit=10)
    assert (row.type, row.project_id, row.session_id, row.created_at) == (
        ChangeType.NOTIFICATION_CREATED,
        "mer",
        "mer-1",
        at(2),
    )
    assert row.payload == (
        '{"id":1,"sessionId":"mer-1","type":"reaction.ci-failed","priority":"urgent",'
        '"message":"CI \\"failed\\" on\\nmain\\t\\\\ é漢 \\u0001"}'
    )


async def test_changes_after_pages_by_seq_and_filters_by_project(store: ContractStore) -> None:
    for project_id in ("mer", "ao", "mer", "ao", "mer"):
        await session(store, project_id)
    everything = await changes(store)
    assert [e.seq for e in everything] == [1, 2, 3, 4, 5]
    assert [e.session_id for e in everything] == ["mer-1", "ao-1", "mer-2", "ao-2", "mer-3"]
    assert [e.seq for e in await store.changes_after(1, limit=2)] == [2, 3]
    assert [e.seq for e in await store.changes_after(0, limit=10, project_id="ao")] == [2, 4]
    assert [e.seq for e in await store.changes_after(2, limit=1, project_id="mer")] == [3]
    assert await store.changes_after(5, limit=10) == []
    assert await store.max_change_seq() == 5


async def test_an_empty_log_has_seq_zero(store: ContractStore) -> None:
    assert await store.max_change_seq() == 0
    assert await changes(store) == []
