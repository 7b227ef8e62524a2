"""Importing an agent-orchestrator installation: every case of the importer's edge-case
checklist as a fixture built from the documented formats, plus dry run, re-run, read-only
sources, the legacy daemon's run file, and no reaction after the import."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.legacy_ao import LegacyInstallationReader
from adapters.memory import ManualClock, MemoryStore
from orchestrator.api import ImportOut
from orchestrator.domain.errors import ConflictError, InvalidInputError
from orchestrator.domain.legacy import LEGACY_TMUX_RUNTIME
from orchestrator.domain.model import (
    ActivityState,
    AgentHarness,
    CheckStatus,
    CIState,
    Mergeability,
    PRCheck,
    PRObservation,
    ReviewDecision,
    SessionKind,
    SessionRecord,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.records import Project
from orchestrator.importer import FRAGMENT_NAME, LegacyImporter
from tests.engine_harness import running_engine
from tests.legacy_fixtures import (
    APP3,
    ORCHESTRATOR,
    V1_APP1,
    V1_ARCHIVED_APP2,
    config,
    my_app_project,
    set_mtime,
    snapshot,
    v2_installation,
    write,
)

pytestmark = pytest.mark.trio

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class FakeTmux:
    """The user's default tmux server as the importer sees it."""

    def __init__(self, live: set[str] | None = None) -> None:
        self.live = live or set()
        self.asked: list[str] = []

    async def has_session(self, name: str) -> bool:
        self.asked.append(name)
        return name in self.live


async def run(
    store: MemoryStore,
    root: Path,
    *,
    live: set[str] | None = None,
    dry_run: bool = False,
) -> ImportOut:
    data_dir = root.parent / "data"
    data_dir.mkdir(exist_ok=True)
    reader = LegacyInstallationReader(env={"HOME": str(root.parent)})
    importer = LegacyImporter(store, reader, FakeTmux(live), ManualClock(NOW), data_dir)
    return await importer.run(str(root), dry_run=dry_run)


async def session(store: MemoryStore, session_id: str) -> SessionRecord:
    record = await store.get_session(session_id)
    assert record is not None, session_id
    return record


# --- the documented examples --------------------------------------------------------------


async def test_v2_worker_and_orchestrator_with_the_config_trio(tmp_path: Path) -> None:
    root = v2_installation(tmp_path)
    store = MemoryStore()
    report = await run(store, root, live={"app-3", "app-orchestrator"})
    assert (report.projects.imported, report.sessions.imported, report.prs) == (1, 2, 1)
    project = await store.get_project("my-app")
    assert project is not None
    assert project.display_name == "My App"
    assert project.repo_origin_url == "https://github.com/acme/my-app"
    assert project.registered_at == datetime.fromtimestamp(1776500000, UTC)  # epoch seconds
    app3 = await session(store, "app-3")
    assert (app3.num, app3.kind, app3.lifecycle.state) == (
        3,
        SessionKind.WORKER,
        SessionState.WORKING,
    )
    assert app3.lifecycle.harness is AgentHarness.CLAUDE_CODE
    assert app3.lifecycle.termination_reason is TerminationReason.NONE
    assert app3.metadata.branch == "feat/INT-1234"
    assert app3.metadata.workspace_path == APP3["worktree"]
    assert app3.metadata.agent_session_id == APP3["claudeSessionUuid"]
    assert (app3.metadata.runtime_handle_id, app3.metadata.runtime_name) == (
        "app-3",
        LEGACY_TMUX_RUNTIME,
    )
    assert app3.issue_id == "INT-1234"
    assert app3.created_at == datetime(2026, 4, 21, 12, tzinfo=UTC)
    facts = await store.pr_facts_for_session("app-3")
    assert (facts.url, facts.number, facts.ci, facts.review) == (
        APP3["pr"],
        42,
        CIState.FAILING,
        ReviewDecision.NONE,
    )
    assert await store.list_checks(APP3["pr"]) == []  # check runs carry no commit: not imported
    orchestrator = await session(store, "app-orchestrator")
    assert orchestrator.kind is SessionKind.ORCHESTRATOR
    assert orchestrator.num == 4  # after the workers' numbers (ours are all positive)
    assert await store.pr_facts_for_session("app-orchestrator") == (
        await store.pr_facts_for_session("nope")
    )
    assert (report.sessions.live, report.sessions.runtime_lost) == (2, 0)
    assert "lifecycleEvidence" in report.dropped
    assert report.dropped["agentReportedState"] == 1
    fragment = (tmp_path / "data" / FRAGMENT_NAME).read_text()
    assert fragment == report.config_fragment
    assert "ci-failed:" in fragment  # the local config's reactions are kept
    assert "escalateAfter: 2" in fragment
    assert f"path: {tmp_path / 'src' / 'my-app'}" in fragment


async def test_v1_flat_file_and_archives(tmp_path: Path) -> None:
    root = tmp_path / "ao"
    config(root, {"my-app": my_app_project(tmp_path / "gone")})
    v1 = root / "a3b4c5d6e7f8-my-app" / "sessions"
    write(v1 / "app-1", V1_APP1)
    # Several archives of one id (the latest wins), in the dash, compact and colon forms.
    write(v1 / "archive" / "app-2_2026-04-19T17-42-10-311Z", V1_ARCHIVED_APP2)
    write(v1 / "archive" / "app-2_20260418T101010Z", V1_ARCHIVED_APP2.replace("killed", "idle"))
    write(v1 / "archive" / "app-2_2026-04-17T10:00:00.000Z", "status=working\n")
    # An id holding `_<digit>` is split at the timestamp, not at its first `_`.
    write(v1 / "archive" / "team_1-7_2026-04-19T17-42-10-311Z", "status=cleanup\n")
    # An archive of a live id is skipped.
    write(v1 / "archive" / "app-1_2026-04-10T00-00-00-000Z", "status=killed\n")
    write(root / "bbbbbbbbbbbb-observability" / "sessions" / "x-1", "status=working\n")
    write(root / "cccccccccccc-my-app.migrated" / "sessions" / "app-9", "status=working\n")
    store = MemoryStore()
    report = await run(store, root, live={"a3b4c5d6e7f8-app-1"})
    app1 = await session(store, "app-1")
    assert app1.lifecycle.state is SessionState.IDLE  # statePayload wins over status=pr_open
    assert app1.lifecycle.harness is AgentHarness.CODEX
    assert app1.metadata.runtime_handle_id == "a3b4c5d6e7f8-app-1"
    assert app1.metadata.prompt.startswith("Refactor the billing module")
    facts = await store.pr_facts_for_session("app-1")
    assert (facts.number, facts.review) == (40, ReviewDecision.REVIEW_REQUIRED)
    for key in ("prAutoDetect", "dashboardPort", "detectingAttempts"):
        assert report.dropped[key] == 1
    app2 = await session(store, "app-2")
    assert (app2.lifecycle.state, app2.lifecycle.termination_reason) == (
        SessionState.TERMINATED,
        TerminationReason.MANUALLY_KILLED,
    )
    assert app2.metadata.prompt.startswith("Started on INT-1200")  # from the summary
    assert await store.pr_facts_for_session("app-2") == await store.pr_facts_for_session("x")
    team = await session(store, "team_1-7")
    assert team.lifecycle.termination_reason is TerminationReason.AUTO_CLEANUP
    ids = {s.id for s in await store.list_sessions()}
    assert ids == {"app-1", "app-2", "team_1-7"}  # no observability, no .migrated
    assert (report.sessions.live, report.sessions.terminal) == (1, 2)


async def test_gone_runtime_is_runtime_lost_and_live_runtime_is_adopted(tmp_path: Path) -> None:
    root = v2_installation(tmp_path)
    store = MemoryStore()
    report = await run(store, root, live={"app-orchestrator"})
    app3 = await session(store, "app-3")
    assert (app3.lifecycle.state, app3.lifecycle.termination_reason) == (
        SessionState.TERMINATED,
        TerminationReason.RUNTIME_LOST,
    )
    assert app3.metadata.agent_session_id  # what a restore resumes
    orchestrator = await session(store, "app-orchestrator")
    assert orchestrator.lifecycle.state is SessionState.WORKING
    assert orchestrator.lifecycle.activity is not None
    assert orchestrator.lifecycle.activity.last_activity_at == NOW
    assert (report.sessions.live, report.sessions.runtime_lost) == (1, 1)


# --- checklist --------------------------------------------------------------------------


async def test_damaged_files_are_skipped_and_odd_encodings_decoded(tmp_path: Path) -> None:
    root = tmp_path / "ao"
    config(root, {"p": {"path": str(tmp_path)}})
    s = root / "projects" / "p" / "sessions"
    write(s / "p-9.json", "")  # 1: a reservation never written
    write(s / "p-8.json", '{"status": "work')  # 2: truncated
    write(s / "p-4.json", "[1, 2]")  # 2: an array
    write(s / "p-10.json", '"working"')  # 2: a scalar
    write(s / "p-7.json.tmp.123.456", "{}")  # 3
    write(s / "p-6.json.lock", "")  # 3
    write(s / "p-5.json.corrupt-1776", "{}")  # 3
    lifecycle = {"version": 2, "session": {"state": "needs_input"}}
    write(s / "p-1.json", {"lifecycle": json.dumps(json.dumps(lifecycle))})  # 4: double
    write(s / "p-2.json", {"statePayload": lifecycle, "stateVersion": 2})  # 4: numeric
    write(s / "p-3.json", {"statePayload": json.dumps(lifecycle), "stateVersion": "2"})
    migrated = {"session": {"state": "terminated", "reason": "migrated_from_archive"}}
    write(s / "p-11.json", {"lifecycle": migrated, "status": "working"})  # 5
    write(s / "p-12.json", {"lifecycle": {"session": {"state": "bogus"}}, "status": "stuck"})
    write(s / "p-13.json", {"lifecycle": {"session": {"state": "idle"}}, "status": "errored"})  # 6
    store = MemoryStore()
    report = await run(store, root)
    assert report.sessions.skipped_empty == 1
    assert report.sessions.skipped_corrupt == 3
    assert report.sessions.skipped_tmp_lock == 3
    for sid in ("p-1", "p-2", "p-3"):
        assert (await session(store, sid)).lifecycle.state is SessionState.NEEDS_INPUT
    p11 = await session(store, "p-11")
    assert p11.lifecycle.termination_reason is TerminationReason.MANUALLY_KILLED
    assert (await session(store, "p-12")).lifecycle.state is SessionState.STUCK
    assert (await session(store, "p-13")).lifecycle.state is SessionState.IDLE
    assert any("reserved, never written" in n for n in report.notes)


async def test_flat_file_quirks(tmp_path: Path) -> None:  # 8
    root = tmp_path / "ao"
    config(root, {"app": {"path": str(tmp_path)}})
    text = (
        "# a comment\r\nstatus=idle\r\nbranch=old\r\nbranch=feat/a=b#c\r\n"
        "userPrompt=fix #12 where x=1\r\nissue=\r\nnot a pair\r\n"
    )
    write(root / "0123456789ab-app" / "sessions" / "app-1", text)
    store = MemoryStore()
    await run(store, root)
    app1 = await session(store, "app-1")
    assert app1.metadata.branch == "feat/a=b#c"  # last duplicate wins; '=' and '#' kept
    assert app1.metadata.prompt == "fix #12 where x=1"
    assert app1.issue_id == ""  # an empty value is absent
    assert app1.lifecycle.state is SessionState.IDLE


async def test_v2_wins_over_v1_and_newer_mtime_within_a_dir(tmp_path: Path) -> None:  # 9
    root = tmp_path / "ao"
    config(root, {"app": {"path": str(tmp_path)}})
    write(root / "projects" / "app" / "sessions" / "app-1.json", {"status": "stuck"})
    write(root / "0123456789ab-app" / "sessions" / "app-1", "status=idle\n")
    v1 = root / "0123456789ab-app" / "sessions"
    set_mtime(write(v1 / "app-2", "status=idle\n"), 1_700_000_000)
    set_mtime(write(v1 / "app-2.json", {"status": "needs_input"}), 1_700_000_500)
    write(root / ".migration-in-progress", "")  # 18: warned, not refused
    store = MemoryStore()
    report = await run(store, root)
    assert (await session(store, "app-1")).lifecycle.state is SessionState.STUCK
    assert (await session(store, "app-2")).lifecycle.state is SessionState.NEEDS_INPUT
    assert any(".migration-in-progress" in n for n in report.notes)


async def test_same_id_in_two_hash_dirs(tmp_path: Path) -> None:  # 10
    root = tmp_path / "ao"
    config(root, {"app": {"path": str(tmp_path)}})
    write(root / "aaaaaaaaaaaa-app" / "sessions" / "app-1", "createdAt=2026-04-01T00:00:00Z\n")
    write(root / "bbbbbbbbbbbb-app" / "sessions" / "app-1", "createdAt=2026-04-02T00:00:00Z\n")
    store = MemoryStore()
    await run(store, root)
    newer = await session(store, "app-1")
    assert newer.created_at == datetime(2026, 4, 2, tzinfo=UTC)
    loser = await session(store, "app-1__from-aaaaaaaaaaaa")
    assert loser.created_at == datetime(2026, 4, 1, tzinfo=UTC)


async def test_bare_hash_dir_project(tmp_path: Path) -> None:  # 11
    root = tmp_path / "ao"
    config(root, {"app": {"path": str(tmp_path), "storageKey": "aaaaaa000000"}, "web": {}})
    write(root / "aaaaaa000000" / "sessions" / "app-1", "status=idle\n")
    write(root / "bbbbbb000000" / "sessions" / "web-1", "project=web\nstatus=idle\n")
    write(root / "cccccc000000" / "sessions" / "z-1", "status=idle\n")
    store = MemoryStore()
    await run(store, root)
    assert (await session(store, "app-1")).project_id == "app"  # storageKey
    assert (await session(store, "web-1")).project_id == "web"  # project= field
    assert (await session(store, "z-1")).project_id == "cccccc000000"  # the hash


async def test_timestamps(tmp_path: Path) -> None:  # 13
    root = tmp_path / "ao"
    config(root, {"app": {"path": str(tmp_path), "registeredAt": 1776500000}})
    s = root / "projects" / "app" / "sessions"
    write(s / "app-1.json", {"createdAt": "2026-04-21T12:00:00.000Z"})
    write(s / "app-2.json", {"createdAt": "2026-04-21T12:00:00Z"})
    write(s / "app-3.json", {"lifecycle": {"session": {"startedAt": "2026-04-21T12:00:00Z"}}})
    store = MemoryStore()
    await run(store, root)
    for sid in ("app-1", "app-2", "app-3"):
        assert (await session(store, sid)).created_at == datetime(2026, 4, 21, 12, tzinfo=UTC)
    project = await store.get_project("app")
    assert project is not None
    assert project.registered_at == datetime.fromtimestamp(1776500000, UTC)


async def test_project_field_disagreeing_with_the_directory(tmp_path: Path) -> None:  # 14
    root = tmp_path / "ao"
    config(root, {"app": {"path": str(tmp_path)}})
    write(root / "projects" / "app" / "sessions" / "app-1.json", {"project": "other"})
    store = MemoryStore()
    report = await run(store, root)
    assert (await session(store, "app-1")).project_id == "app"
    assert any("directory wins" in n for n in report.notes)


async def test_config_quirks(tmp_path: Path) -> None:  # 15
    root = tmp_path / "ao"
    home_project = tmp_path / "x"
    (home_project).mkdir()
    write(home_project / "agent-orchestrator.yaml", "projects:\n  old:\n    reactions:\n"
          "      agent-idle: {auto: true}\n")  # fmt: skip
    broken = tmp_path / "broken"
    write(broken / "agent-orchestrator.yml", "reactions: [unclosed\n")
    config(
        root,
        {
            "old": {"path": "~/x", "repo": "acme/old", "name": "Old one"},
            "gone": {"path": str(tmp_path / "nowhere")},
            "broken": {"path": str(broken)},
            "bad": "not a mapping",
        },
    )
    store = MemoryStore()
    report = await run(store, root)
    old = await store.get_project("old")
    assert old is not None
    assert old.path == str(home_project)  # ~ expanded against the user's home
    assert old.repo_origin_url == "https://github.com/acme/old"  # repo as a string
    assert old.display_name == "Old one"
    assert "agent-idle:" in report.config_fragment  # the wrapped local format
    assert any("no longer exists" in n for n in report.notes)
    assert any("local config ignored" in n for n in report.notes)
    assert any("'bad' is not a mapping" in n for n in report.notes)


async def test_a_yaml_syntax_error_is_surfaced(tmp_path: Path) -> None:  # 15
    root = tmp_path / "ao"
    write(root / "config.yaml", "projects:\n\tapp: {}\n")
    with pytest.raises(InvalidInputError, match="cannot parse legacy config"):
        await run(MemoryStore(), root)


async def test_collisions_and_orchestrator_ids(tmp_path: Path) -> None:  # 16 and id clashes
    root = tmp_path / "ao"
    config(root, {"a": {"path": str(tmp_path / "a")}, "b": {"path": str(tmp_path / "b")}})
    write(root / "projects" / "a" / "sessions" / "ao-1.json", {"status": "idle"})
    b = root / "projects" / "b" / "sessions"
    write(b / "ao-1.json", {"status": "idle"})
    write(b / "p-orchestrator.json", {"status": "working", "role": "orchestrator"})
    write(b / "p-orchestrator-1.json", {"status": "working"})
    write(b / "p-1.json", {"status": "working"})
    store = MemoryStore()
    report = await run(store, root)
    assert (await session(store, "ao-1")).project_id == "a"
    renamed = await session(store, "ao-1__b")
    assert renamed.project_id == "b"
    assert report.sessions.renamed == 1
    nums = {s.id: (s.num, s.kind) for s in await store.list_sessions("b")}
    assert nums["p-1"] == (1, SessionKind.WORKER)
    assert nums["p-orchestrator"][1] is SessionKind.ORCHESTRATOR
    assert nums["p-orchestrator-1"][1] is SessionKind.ORCHESTRATOR
    assert len({n for n, _ in nums.values()}) == len(nums)
    again = await run(store, root)
    assert (again.sessions.imported, again.sessions.renamed) == (0, 0)
    assert again.sessions.skipped_existing == 5


async def test_unknown_keys_are_counted_and_kept_in_provenance(tmp_path: Path) -> None:  # 17
    root = tmp_path / "ao"
    config(root, {"app": {"path": str(tmp_path)}})
    write(root / "projects" / "app" / "sessions" / "app-1.json", {"status": "idle", "zz": "1"})
    store = MemoryStore()
    report = await run(store, root)
    assert report.dropped == {"zz": 1}
    [row] = [r for r in await store.list_provenance() if r.target_kind == "session"]
    assert json.loads(row.raw)["zz"] == "1"


async def test_refused_while_the_legacy_daemon_runs(tmp_path: Path) -> None:  # 18
    root = v2_installation(tmp_path)
    write(root / "running.json", {"pid": os.getpid(), "port": 3000})
    store = MemoryStore()
    with pytest.raises(ConflictError, match="agent-orchestrator is running"):
        await run(store, root)
    assert await store.list_projects() == []
    write(root / "running.json", {"pid": 2**22 + 12345, "port": 3000})  # a stale run file
    assert (await run(store, root)).sessions.imported == 2


async def test_project_conflicts_are_skipped(tmp_path: Path) -> None:
    root = v2_installation(tmp_path)
    store = MemoryStore()
    await store.upsert_project(Project(id="my-app", path="/elsewhere", registered_at=NOW))
    report = await run(store, root)
    assert report.projects.conflicts == 1
    assert await store.list_sessions() == []


# --- dry run, re-run, read-only ---------------------------------------------------------


async def test_dry_run_writes_nothing_and_reports_the_same_plan(tmp_path: Path) -> None:
    root = v2_installation(tmp_path)
    store = MemoryStore()
    before = snapshot(tmp_path)
    dry = await run(store, root, live={"app-3", "app-orchestrator"}, dry_run=True)
    assert await store.list_projects() == []
    assert await store.list_sessions() == []
    assert await store.changes_after(0, limit=10) == []
    assert await store.list_provenance() == []
    assert not (tmp_path / "data" / FRAGMENT_NAME).exists()
    assert snapshot(tmp_path) == before
    real = await run(store, root, live={"app-3", "app-orchestrator"})
    assert (dry.projects, dry.sessions, dry.prs) == (real.projects, real.sessions, real.prs)


async def test_a_rerun_imports_nothing_and_reports_changes_since(tmp_path: Path) -> None:
    root = v2_installation(tmp_path)
    store = MemoryStore()
    await run(store, root, live={"app-3", "app-orchestrator"})
    rows = await store.list_sessions()
    seq = await store.max_change_seq()
    again = await run(store, root, live={"app-3", "app-orchestrator"})
    assert (again.projects.imported, again.sessions.imported, again.prs) == (0, 0, 0)
    assert (again.projects.skipped, again.sessions.skipped_existing) == (1, 2)
    assert again.sessions.changed_since == 0
    assert await store.list_sessions() == rows
    assert await store.max_change_seq() == seq
    write(root / "projects" / "my-app" / "sessions" / "app-3.json", {**APP3, "branch": "moved"})
    changed = await run(store, root)
    assert changed.sessions.changed_since == 1
    assert (await session(store, "app-3")).metadata.branch == "feat/INT-1234"
    # A session removed since its import is not imported again.
    await store.delete_session("app-orchestrator", at=NOW)
    assert (await run(store, root)).sessions.imported == 0


async def test_the_legacy_files_stay_untouched(tmp_path: Path) -> None:
    root = v2_installation(tmp_path)
    write(root / "0123456789ab-my-app" / "sessions" / "app-1", V1_APP1)
    write(root / "projects" / "my-app" / "sessions" / "app-5.json.lock", "")
    write(root / "projects" / "my-app" / "sessions" / "app-6.json", ORCHESTRATOR)
    before = snapshot(root)
    await run(MemoryStore(), root)
    assert snapshot(root) == before


# --- after the import -------------------------------------------------------------------


async def test_no_reaction_from_the_first_observations_after_import(tmp_path: Path) -> None:
    root = tmp_path / "ao"
    config(root, {"my-app": my_app_project(tmp_path)})
    s = root / "projects" / "my-app" / "sessions"
    write(s / "app-3.json", APP3)  # failing CI
    stuck = {**APP3, "pr": "https://github.com/acme/my-app/pull/43", "tmuxName": "app-4"}
    stuck["lifecycle"] = {"session": {"state": "stuck"}}
    stuck.pop("runtimeHandle")
    write(s / "app-4.json", stuck)
    conflicting = {"status": "pr_open", "pr": "https://github.com/acme/my-app/pull/44"}
    conflicting["prEnrichment"] = json.dumps({"hasConflicts": True, "ciStatus": "passing"})
    conflicting["tmuxName"] = "app-5"
    write(s / "app-5.json", conflicting)
    write(s / "app-6.json", {"status": "merged", "pr": "https://github.com/acme/my-app/pull/45"})
    store = MemoryStore()
    await run(store, root, live={"app-3", "app-4", "app-5"})
    async with running_engine(store) as engine:
        failing = PRObservation(
            url=APP3["pr"],
            number=42,
            ci=CIState.FAILING,
            checks=(PRCheck(name="test", commit="c1", status=CheckStatus.FAILED),),
        )
        await engine.manager.apply_pr_observation("app-3", failing)
        await engine.manager.apply_pr_observation(
            "app-4", PRObservation(url=stuck["pr"], number=43)
        )
        await engine.manager.apply_pr_observation(
            "app-5",
            PRObservation(
                url=conflicting["pr"],
                number=44,
                ci=CIState.PASSING,
                mergeability=Mergeability.CONFLICTING,
            ),
        )
        for sid in ("app-3", "app-4", "app-5"):
            await engine.activity(sid, ActivityState.ACTIVE)
        await engine.manager.apply_pr_observation("app-3", failing)
        assert await store.list_outbox() == []
        # The next new failure after the baseline is news again.
        later = PRObservation(
            url=APP3["pr"],
            number=42,
            ci=CIState.FAILING,
            checks=(PRCheck(name="test", commit="c2", status=CheckStatus.FAILED),),
        )
        await engine.manager.apply_pr_observation("app-3", later)
        assert [e.item.reaction for e in await store.list_outbox()] == ["ci-failed"]
