"""The pure rules of the agent-orchestrator import (orchestrator/domain/legacy.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from orchestrator.domain.legacy import (
    LegacyFile,
    ParsedSession,
    Skip,
    SourceKind,
    archive_stamp,
    map_pr,
    map_session,
    map_state,
    parse_session_file,
    parse_timestamp,
    sanitize_project_id,
    session_num,
)
from orchestrator.domain.model import (
    CIState,
    Mergeability,
    ReactionKey,
    ReviewDecision,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.reaction_planner import BASELINE_PREFIX, ENTRY_TRACKER

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def _file(name: str, text: str, kind: SourceKind = SourceKind.V2) -> LegacyFile:
    return LegacyFile(
        path=f"/x/{name}", name=name, kind=kind, directory="app", text=text, mtime=NOW, sha256=""
    )


@pytest.mark.parametrize(
    ("status", "state", "reason"),
    [
        ("spawning", SessionState.NOT_STARTED, TerminationReason.NONE),
        ("starting", SessionState.WORKING, TerminationReason.NONE),
        ("ci_failed", SessionState.WORKING, TerminationReason.NONE),
        ("mergeable", SessionState.WORKING, TerminationReason.NONE),
        ("detecting", SessionState.DETECTING, TerminationReason.NONE),
        ("done", SessionState.DONE, TerminationReason.NONE),
        ("merged", SessionState.TERMINATED, TerminationReason.PR_MERGED),
        ("terminated", SessionState.TERMINATED, TerminationReason.MANUALLY_KILLED),
        ("cleanup", SessionState.TERMINATED, TerminationReason.AUTO_CLEANUP),
        ("errored", SessionState.TERMINATED, TerminationReason.ERROR_IN_PROCESS),
        ("weird", SessionState.IDLE, TerminationReason.NONE),
    ],
)
def test_flat_status(status: str, state: SessionState, reason: TerminationReason) -> None:
    assert map_state({"status": status}, pr_merged=False)[:2] == (state, reason)


def test_lifecycle_terminations() -> None:
    killed = {"lifecycle": {"session": {"state": "terminated", "reason": "runtime_lost"}}}
    assert map_state(killed, pr_merged=False)[:2] == (
        SessionState.TERMINATED,
        TerminationReason.RUNTIME_LOST,
    )
    odd = {"lifecycle": {"session": {"state": "terminated", "reason": "pr_created"}}}
    assert map_state(odd, pr_merged=True)[1] is TerminationReason.PR_MERGED
    stamped = {"lifecycle": {"session": {"state": "working", "terminatedAt": "2026-04-01T00:00Z"}}}
    assert map_state(stamped, pr_merged=False)[:2] == (
        SessionState.TERMINATED,
        TerminationReason.MANUALLY_KILLED,
    )


def test_timestamps_in_every_form() -> None:
    at = datetime(2026, 4, 21, 12, tzinfo=UTC)
    assert parse_timestamp("2026-04-21T12:00:00.000Z") == at
    assert parse_timestamp("2026-04-21T12:00:00Z") == at
    assert parse_timestamp(int(at.timestamp() * 1000)) == at  # epoch ms
    assert parse_timestamp(int(at.timestamp())) == at  # epoch seconds
    assert parse_timestamp(str(int(at.timestamp()))) == at
    assert parse_timestamp("yesterday") is None


def test_pr_from_enrichment_and_reason() -> None:
    enrichment = {"ciStatus": "none", "reviewDecision": "pending", "isDraft": True}
    pr = map_pr({"pr": "https://h/o/r/pull/7", "prEnrichment": enrichment})
    assert pr is not None
    assert (pr.number, pr.draft, pr.ci, pr.review) == (
        7,
        True,
        CIState.UNKNOWN,
        ReviewDecision.REVIEW_REQUIRED,
    )
    mergeable = map_pr({"pr": "https://h/o/r/pull/8", "prEnrichment": {"mergeable": True}})
    assert mergeable is not None
    assert mergeable.mergeability is Mergeability.MERGEABLE
    by_reason = map_pr({"lifecycle": {"pr": {"state": "open", "reason": "changes_requested",
                                             "url": "https://h/o/r/pull/9"}}})  # fmt: skip
    assert by_reason is not None
    assert by_reason.review is ReviewDecision.CHANGES_REQUESTED
    assert map_pr({"agentReportedPrUrl": "https://h/o/r/pull/3"}) is not None
    assert map_pr({"status": "working"}) is None


def test_files_that_are_not_sessions() -> None:
    assert parse_session_file(_file("a-1.json", "")) is Skip.EMPTY
    assert parse_session_file(_file("a-1.json", "{")) is Skip.CORRUPT
    assert parse_session_file(_file("a-1.json", "[1]")) is Skip.CORRUPT
    assert parse_session_file(_file("a-1.json.lock", "{}")) is Skip.TMP_LOCK
    assert parse_session_file(_file("a-1.json.tmp.1.2", "{}")) is Skip.TMP_LOCK
    parsed = parse_session_file(_file("a-1.json", json.dumps({"lifecycle": json.dumps({})})))
    assert isinstance(parsed, ParsedSession)
    assert parsed.fields["lifecycle"] == {}


def test_ids_numbers_and_archive_order() -> None:
    assert session_num("app-12") == 12
    assert session_num("app-orchestrator") is None
    assert session_num("app-orchestrator-2") is None
    assert sanitize_project_id("My.App") == "my-app"
    newest = "app-2_2026-04-19T17-42-10-311Z"
    assert archive_stamp(newest) > archive_stamp("app-2_20260418T101010Z")
    assert archive_stamp(newest) > archive_stamp("app-2_2026-04-19T17:42:10.000Z")


def test_baselines_for_a_live_imported_session() -> None:
    fields = {
        "status": "stuck",
        "pr": "https://h/o/r/pull/4",
        "prEnrichment": {"ciStatus": "failing"},
    }
    parsed = ParsedSession(session_id="app-4", source=_file("app-4.json", "{}"), fields=fields)
    imported = map_session(parsed, project_id="app", num=4, now=NOW)
    keys = {t.key: t for t in imported.trackers}
    assert keys[ENTRY_TRACKER].reaction is ReactionKey.AGENT_STUCK
    assert keys[ENTRY_TRACKER].escalated
    assert f"{BASELINE_PREFIX}https://h/o/r/pull/4" in keys
    ended = ParsedSession(
        session_id="app-5", source=_file("app-5.json", "{}"), fields={"status": "killed"}
    )
    assert map_session(ended, project_id="app", num=5, now=NOW).trackers == ()
