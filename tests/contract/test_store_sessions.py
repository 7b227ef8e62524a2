"""Projects, session ids, session updates and trackers: the same behaviour from every store."""

from __future__ import annotations

import msgspec
import pytest
import trio

from orchestrator.domain.errors import StoreError
from orchestrator.domain.model import (
    Activity,
    ActivitySource,
    ActivityState,
    AgentHarness,
    DetectingState,
    Lifecycle,
    ReactionKey,
    SessionKind,
    SessionMetadata,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.records import CommitUnit, Project, Tracker
from tests.contract.support import (
    T0,
    ContractStore,
    at,
    changes,
    moved,
    outbox_item,
    project,
    session,
    unit_for,
)

# --- projects -------------------------------------------------------------------------------


async def test_projects_upsert_list_and_soft_archive(store: ContractStore) -> None:
    await project(store, "mer")
    await project(store, "ao")
    assert [p.id for p in await store.list_projects()] == ["ao", "mer"]

    mer = await store.get_project("mer")
    assert mer is not None
    await store.upsert_project(msgspec.structs.replace(mer, archived_at=at(10)))
    assert [p.id for p in await store.list_projects()] == ["ao"]
    assert [p.id for p in await store.list_projects(include_archived=True)] == ["ao", "mer"]
    archived = await store.get_project("mer")
    assert archived is not None
    assert archived.archived_at == at(10)

    await store.upsert_project(msgspec.structs.replace(mer, archived_at=None))
    assert [p.id for p in await store.list_projects()] == ["ao", "mer"]
    assert await store.get_project("nope") is None


async def test_project_upsert_updates_fields_but_never_registered_at(
    store: ContractStore,
) -> None:
    await project(store, "mer")
    updated = await store.upsert_project(
        Project(
            id="mer",
            path="/elsewhere",
            repo_origin_url="git@github.com:acme/mer.git",
            display_name="Mer",
            registered_at=at(99),
            archived_at=at(50),
        )
    )
    assert updated == Project(
        id="mer",
        path="/elsewhere",
        repo_origin_url="git@github.com:acme/mer.git",
        display_name="Mer",
        registered_at=T0,
        archived_at=at(50),
    )
    assert await store.get_project("mer") == updated
    # Re-upserting with archived_at=None un-archives.
    again = await store.upsert_project(msgspec.structs.replace(updated, archived_at=None))
    assert again.archived_at is None


# --- session ids and seeds --------------------------------------------------------------------


async def test_session_ids_are_per_project_counters(store: ContractStore) -> None:
    await project(store, "mer")
    await project(store, "ao")
    a = await store.create_session("mer", now=T0)
    b = await store.create_session("mer", now=at(1), issue_id="#7", kind=SessionKind.ORCHESTRATOR)
    c = await store.create_session("ao", now=at(2), harness=AgentHarness.CODEX)
    assert (a.id, a.num, b.id, b.num, c.id, c.num) == ("mer-1", 1, "mer-2", 2, "ao-1", 1)
    assert b.issue_id == "#7"
    assert b.kind is SessionKind.ORCHESTRATOR
    assert c.lifecycle.harness is AgentHarness.CODEX

    assert [s.id for s in await store.list_sessions()] == ["ao-1", "mer-1", "mer-2"]
    assert [s.id for s in await store.list_sessions("mer")] == ["mer-1", "mer-2"]
    assert await store.list_sessions("none") == []
    for record in (a, b, c):
        assert await store.get_session(record.id) == record
    assert await store.get_session("mer-3") is None


async def test_a_new_session_is_a_not_started_seed(store: ContractStore) -> None:
    record = await session(store)
    assert record.lifecycle == Lifecycle()
    assert record.lifecycle.state is SessionState.NOT_STARTED
    assert record.lifecycle.is_alive is False
    assert record.lifecycle.activity is None
    assert record.metadata == SessionMetadata()
    assert record.created_at == record.updated_at == T0


async def test_create_session_in_an_unknown_project_is_refused(store: ContractStore) -> None:
    with pytest.raises(StoreError, match="nope"):
        await store.create_session("nope", now=T0)
    assert await store.list_sessions() == []
    assert await changes(store) == []


async def test_twenty_concurrent_creates_get_gap_free_numbers(store: ContractStore) -> None:
    await project(store, "mer")
    ids: list[str] = []

    async def create() -> None:
        ids.append((await store.create_session("mer", now=T0)).id)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(create)
    assert sorted(ids) == sorted(f"mer-{n}" for n in range(1, 21))


# --- commits of a session ------------------------------------------------------------------------


async def test_commit_round_trips_every_lifecycle_and_metadata_field(
    store: ContractStore,
) -> None:
    record = await session(store)
    full = msgspec.structs.replace(
        record,
        lifecycle=Lifecycle(
            state=SessionState.DETECTING,
            termination_reason=TerminationReason.NONE,
            is_alive=True,
            activity=Activity(
                state=ActivityState.WAITING_INPUT,
                last_activity_at=at(3),
                source=ActivitySource.HOOK,
            ),
            harness=AgentHarness.CLAUDE_CODE,
            detecting=DetectingState(attempts=2, started_at=at(2), evidence_hash="ab" * 32),
        ),
        metadata=SessionMetadata(
            branch="orchestrator/mer-1",
            workspace_path="/work/mer-1",
            runtime_handle_id="mer-1#1",
            runtime_name="tmux",
            agent_session_id="agent-9",
            prompt="Fix the flaky test\nplease",
        ),
        updated_at=at(5),
    )
    everything = frozenset(Lifecycle.__struct_fields__) | {"metadata"}
    await store.commit(unit_for(full, everything))
    assert await store.get_session(record.id) == full

    # Clearing detecting and activity memory persists None.
    cleared = msgspec.structs.replace(
        full,
        lifecycle=msgspec.structs.replace(
            full.lifecycle,
            state=SessionState.TERMINATED,
            termination_reason=TerminationReason.MANUALLY_KILLED,
            is_alive=False,
            activity=None,
            detecting=None,
        ),
        updated_at=at(6),
    )
    await store.commit(unit_for(cleared, everything - {"metadata"}))
    assert await store.get_session(record.id) == cleared


async def test_commit_writes_only_the_fields_named_in_changed(store: ContractStore) -> None:
    record = await session(store)
    working, _ = moved(record, at(1), state=SessionState.WORKING, is_alive=True)
    await store.commit(unit_for(working, frozenset({"state"})))
    stored = await store.get_session(record.id)
    assert stored is not None
    assert stored.lifecycle.state is SessionState.WORKING
    assert stored.lifecycle.is_alive is False  # not named in changed: not written
    assert stored.updated_at == at(1)  # updated_at always moves with a session


async def test_metadata_merges_and_an_empty_field_never_clears(store: ContractStore) -> None:
    record = await session(store)
    first = msgspec.structs.replace(
        record,
        metadata=SessionMetadata(branch="b1", prompt="the prompt", runtime_name="tmux"),
        updated_at=at(1),
    )
    await store.commit(unit_for(first, frozenset({"metadata"})))
    second = msgspec.structs.replace(
        record, metadata=SessionMetadata(branch="b2"), updated_at=at(2)
    )
    await store.commit(unit_for(second, frozenset({"metadata"})))
    stored = await store.get_session(record.id)
    assert stored is not None
    assert stored.metadata == SessionMetadata(branch="b2", prompt="the prompt", runtime_name="tmux")


async def test_commit_of_a_missing_session_is_refused_and_keeps_nothing(
    store: ContractStore,
) -> None:
    record = await session(store)
    ghost = msgspec.structs.replace(record, id="mer-9", num=9, updated_at=at(1))
    before = await changes(store)
    with pytest.raises(StoreError, match="mer-9"):
        await store.commit(
            unit_for(
                ghost,
                frozenset({"state"}),
                trackers_upsert=(Tracker(key="entry", reaction=ReactionKey.AGENT_IDLE),),
            )
        )
    assert await store.get_session("mer-9") is None
    assert await store.list_trackers("mer-9") == []
    assert await changes(store) == before


async def test_an_off_enum_value_is_refused_and_the_unit_keeps_nothing(
    store: ContractStore,
) -> None:
    record = await session(store)
    bad_lc = msgspec.structs.replace(record.lifecycle, termination_reason="exploded")
    bad = msgspec.structs.replace(record, lifecycle=bad_lc, updated_at=at(1))
    with pytest.raises(StoreError):
        await store.commit(
            unit_for(bad, frozenset({"termination_reason"}), outbox=(outbox_item(record, "k"),))
        )
    assert await store.get_session(record.id) == record
    assert await store.pending_outbox(now=at(10), limit=10) == []
    assert len(await changes(store)) == 1  # only session_created


async def test_unknown_changed_fields_are_refused(store: ContractStore) -> None:
    record = await session(store)
    with pytest.raises(StoreError, match="kind"):
        await store.commit(unit_for(record, frozenset({"kind"})))


async def test_an_empty_unit_is_a_no_op(store: ContractStore) -> None:
    record = await session(store)
    await store.commit(CommitUnit(session_id=record.id, at=at(1)))
    assert await store.get_session(record.id) == record
    assert len(await changes(store)) == 1


# --- trackers -------------------------------------------------------------------------------------


async def test_trackers_round_trip_update_and_delete(store: ContractStore) -> None:
    a = await session(store)
    b = await session(store)
    ci = Tracker(
        key=f"ci:{'https://x/pull/1'}:test",
        reaction=ReactionKey.CI_FAILED,
        attempts=2,
        first_at=at(1),
        escalated=True,
        seen=("c1", "c2"),
    )
    entry = Tracker(key="entry", reaction=ReactionKey.AGENT_IDLE)
    await store.commit(CommitUnit(session_id=a.id, at=at(1), trackers_upsert=(entry, ci)))
    await store.commit(
        CommitUnit(
            session_id=b.id,
            at=at(1),
            trackers_upsert=(Tracker(key="entry", reaction=ReactionKey.AGENT_STUCK),),
        )
    )
    assert await store.list_trackers(a.id) == [ci, entry]  # ordered by key

    bumped = msgspec.structs.replace(ci, attempts=3, seen=("c1", "c2", "c3"))
    await store.commit(CommitUnit(session_id=a.id, at=at(2), trackers_upsert=(bumped,)))
    assert await store.list_trackers(a.id) == [bumped, entry]

    await store.commit(CommitUnit(session_id=a.id, at=at(3), trackers_delete=(ci.key, "absent")))
    assert await store.list_trackers(a.id) == [entry]
    assert [t.reaction for t in await store.list_trackers(b.id)] == [ReactionKey.AGENT_STUCK]


async def test_tracker_delete_then_upsert_of_one_key_keeps_the_new_tracker(
    store: ContractStore,
) -> None:
    # Leaving one entry state for another re-arms the old reaction and records the new one.
    record = await session(store)
    idle = Tracker(key="entry", reaction=ReactionKey.AGENT_IDLE, attempts=1, first_at=at(1))
    await store.commit(CommitUnit(session_id=record.id, at=at(1), trackers_upsert=(idle,)))
    stuck = Tracker(key="entry", reaction=ReactionKey.AGENT_STUCK, attempts=1, first_at=at(2))
    await store.commit(
        CommitUnit(
            session_id=record.id, at=at(2), trackers_delete=("entry",), trackers_upsert=(stuck,)
        )
    )
    assert await store.list_trackers(record.id) == [stuck]
