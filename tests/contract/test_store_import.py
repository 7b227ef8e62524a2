"""``import_batch`` and ``list_provenance``: one project's import, all or nothing, never
touching a row that exists."""

from __future__ import annotations

import pytest

from orchestrator.domain.errors import StoreError
from orchestrator.domain.legacy import (
    ImportBatch,
    ImportedSession,
    LegacyFile,
    ProvenanceRow,
    SourceKind,
)
from orchestrator.domain.model import (
    CIState,
    Lifecycle,
    PRObservation,
    ReactionKey,
    SessionRecord,
    SessionState,
)
from orchestrator.domain.records import ChangeType, Project, Tracker
from tests.contract.support import ContractStore, at

pytestmark = pytest.mark.trio

SOURCE = LegacyFile(
    path="/legacy/app-3.json",
    name="app-3.json",
    kind=SourceKind.V2,
    directory="app",
    text="{}",
    mtime=at(0),
    sha256="abc",
)


def _session(
    session_id: str, num: int, state: SessionState = SessionState.WORKING
) -> SessionRecord:
    return SessionRecord(
        id=session_id,
        project_id="app",
        num=num,
        lifecycle=Lifecycle(state=state),
        created_at=at(0),
        updated_at=at(1),
    )


def _batch(*sessions: ImportedSession, path: str = "/src/app") -> ImportBatch:
    return ImportBatch(
        at=at(5),
        project=Project(id="app", path=path, registered_at=at(0)),
        sessions=sessions,
        provenance=tuple(
            ProvenanceRow(
                source_path=s.source.path,
                sha256=s.source.sha256,
                target_kind="session",
                target_id=s.record.id,
                imported_at=at(5),
                raw=s.source.text,
            )
            for s in sessions
        ),
    )


async def test_imports_project_sessions_prs_trackers_and_provenance(store: ContractStore) -> None:
    pr = PRObservation(url="https://github.com/a/app/pull/42", number=42, ci=CIState.FAILING)
    tracker = Tracker(key="baseline:x", reaction=ReactionKey.CI_FAILED, first_at=at(5))
    imported = ImportedSession(
        record=_session("app-3", 3), pr=pr, trackers=(tracker,), source=SOURCE
    )
    assert await store.import_batch(_batch(imported)) == ("app-3",)
    assert (await store.get_project("app")) is not None
    assert await store.get_session("app-3") == _session("app-3", 3)
    facts = await store.pr_facts_for_session("app-3")
    assert (facts.url, facts.number, facts.ci) == (pr.url, 42, CIState.FAILING)
    assert await store.list_trackers("app-3") == [tracker]
    [row] = await store.list_provenance()
    assert (row.target_kind, row.target_id, row.sha256, row.source_path) == (
        "session",
        "app-3",
        "abc",
        "/legacy/app-3.json",
    )
    types = [e.type for e in await store.changes_after(0, limit=10)]
    assert ChangeType.SESSION_CREATED in types
    assert ChangeType.PR_CREATED in types
    assert await store.list_outbox() == []


async def test_never_touches_an_existing_row(store: ContractStore) -> None:
    first = ImportedSession(record=_session("app-3", 3), source=SOURCE)
    await store.import_batch(_batch(first))
    again = ImportedSession(record=_session("app-3", 3, SessionState.STUCK), source=SOURCE)
    other_path = _batch(again, path="/elsewhere")
    assert await store.import_batch(other_path) == ()
    stored = await store.get_session("app-3")
    assert stored is not None
    assert stored.lifecycle.state is SessionState.WORKING
    project = await store.get_project("app")
    assert project is not None
    assert project.path == "/src/app"
    assert len(await store.list_provenance()) == 1


async def test_a_failing_batch_keeps_nothing(store: ContractStore) -> None:
    clash = (
        ImportedSession(record=_session("app-1", 1), source=SOURCE),
        ImportedSession(record=_session("app-x", 1), source=SOURCE),  # the same num
    )
    with pytest.raises(StoreError):
        await store.import_batch(_batch(*clash))
    assert await store.get_project("app") is None
    assert await store.list_sessions() == []
    assert await store.list_provenance() == []
