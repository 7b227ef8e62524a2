"""How a session ended (its time, the agent's exit status and last output): written when
named in ``changed``, read back as written, cleared, and outside the change feed. The same
behaviour from every store."""

from __future__ import annotations

import msgspec

from orchestrator.domain.model import Lifecycle, SessionEnd, SessionState, TerminationReason
from tests.contract.support import ContractStore, at, changes, session, unit_for

EXITED = SessionEnd(at=at(4), exit_status=3, last_output="line 1\nexec: claude: not found ✗")


async def test_a_fresh_session_has_not_ended(store: ContractStore) -> None:
    assert (await session(store)).ended is None


async def test_the_end_round_trips_and_a_restore_clears_it(store: ContractStore) -> None:
    record = await session(store)
    ended = msgspec.structs.replace(
        record,
        lifecycle=Lifecycle(
            state=SessionState.TERMINATED,
            termination_reason=TerminationReason.AGENT_PROCESS_EXITED,
        ),
        ended=EXITED,
        updated_at=at(4),
    )
    await store.commit(unit_for(ended, frozenset({"state", "termination_reason", "ended"})))
    assert await store.get_session(record.id) == ended
    assert [s.ended for s in await store.list_sessions()] == [EXITED]

    # An end without a status (the pane was gone) keeps the status NULL, not 0.
    lost = msgspec.structs.replace(ended, ended=SessionEnd(at=at(5)), updated_at=at(5))
    await store.commit(unit_for(lost, frozenset({"ended"})))
    stored = await store.get_session(record.id)
    assert stored is not None
    assert stored.ended == SessionEnd(at=at(5), exit_status=None, last_output="")

    restored = msgspec.structs.replace(
        lost, lifecycle=Lifecycle(is_alive=True), ended=None, updated_at=at(6)
    )
    await store.commit(unit_for(restored, frozenset({"state", "is_alive", "ended"})))
    stored = await store.get_session(record.id)
    assert stored is not None
    assert stored.ended is None


async def test_the_end_is_written_only_when_named(store: ContractStore) -> None:
    record = await session(store)
    not_named = msgspec.structs.replace(record, ended=EXITED, updated_at=at(1))
    await store.commit(unit_for(not_named, frozenset({"state"})))
    stored = await store.get_session(record.id)
    assert stored is not None
    assert stored.ended is None


async def test_the_end_alone_writes_no_change_log_row(store: ContractStore) -> None:
    record = await session(store)
    before = await changes(store)
    await store.commit(
        unit_for(
            msgspec.structs.replace(record, ended=EXITED, updated_at=at(1)), frozenset({"ended"})
        )
    )
    assert await changes(store) == before
