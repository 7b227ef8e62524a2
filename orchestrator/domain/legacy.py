"""Mapping rules for importing a TypeScript agent-orchestrator installation. Pure.

The reader (``adapters/legacy_ao.py``) hands in each metadata file's text with its name,
mtime and directory; this module decides what it means: which files are sessions at all,
which wins when two describe one id, and the session row, PR row and baseline trackers each
maps to. The legacy metadata has three generations (a flat ``key=value`` file, then JSON
with the lifecycle in ``statePayload``, then JSON with ``lifecycle``) and every reader of it
normalizes on the fly, so one directory holds mixed shapes; the rules below accept them all.
One cohesive piece (the format's rules read best together), hence its length.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import msgspec

from orchestrator.domain.model import (
    Activity,
    ActivitySource,
    ActivityState,
    AgentHarness,
    CIState,
    Lifecycle,
    Mergeability,
    Model,
    PRFacts,
    PRObservation,
    ReactionKey,
    ReviewDecision,
    SessionKind,
    SessionMetadata,
    SessionRecord,
    SessionState,
    TerminationReason,
)
from orchestrator.domain.reaction_planner import BASELINE_PREFIX, ENTRY_TRACKER, entry_reaction
from orchestrator.domain.records import Project, Tracker

# A V2 metadata file; lock, tmp and corrupt copies fail it and are never read.
SESSION_JSON_NAME: Final = re.compile(r"^[A-Za-z0-9_-]+\.json$")
SESSION_FLAT_NAME: Final = re.compile(r"^[A-Za-z0-9_-]+$")
HASH_DIR: Final = re.compile(r"^([0-9a-f]{12})-(.+)$")
BARE_HASH_DIR: Final = re.compile(r"^([0-9a-f]{12})$")
# Archive names: compact, dash and colon timestamp forms; the id may itself hold `_<digit>`.
ARCHIVE_NAME: Final = re.compile(r"^(.+)_(\d{8}T\d{6}Z|\d{4}-\d{2}-\d{2}T[\d:.-]+Z)(?:\.json)?$")
PROJECT_ID: Final = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
# The runtime of an imported legacy tmux session: the user's default tmux server. No runtime
# of ours has this name, so the reaper never probes it on our socket (which would declare
# it gone and page) and nothing of ours ever destroys it.
LEGACY_TMUX_RUNTIME: Final = "tmux-user-default"

# Keys the mapping reads; every other key is counted as dropped and kept in provenance.
_READ_KEYS: Final = frozenset(
    {
        "worktree", "branch", "status", "lifecycle", "statePayload", "stateVersion",
        "tmuxName", "runtimeHandle", "issue", "pr", "project", "agent", "createdAt", "role",
        "summary", "pinnedSummary", "userPrompt", "displayName", "opencodeSessionId",
        "claudeSessionUuid", "codexThreadId", "prEnrichment", "agentReportedPrUrl",
        "terminatedAt", "lastCIFailureDispatchHash", "lastPendingReviewDispatchHash",
        "lastMergeConflictDispatched", "lastAutomatedReviewDispatchHash",
    }
)  # fmt: skip

_TERMINAL_REASONS: Final = frozenset(r.value for r in TerminationReason if r.value)
_LIVE_STATES: Final = frozenset(
    s.value for s in SessionState if s not in (SessionState.DONE, SessionState.TERMINATED)
)
_FLAT_STATUS: Final[dict[str, tuple[SessionState, TerminationReason]]] = {
    "spawning": (SessionState.NOT_STARTED, TerminationReason.NONE),
    **dict.fromkeys(
        [
            "working",
            "starting",
            "pr_open",
            "ci_failed",
            "review_pending",
            "changes_requested",
            "approved",
            "mergeable",
        ],
        (SessionState.WORKING, TerminationReason.NONE),
    ),
    "idle": (SessionState.IDLE, TerminationReason.NONE),
    "needs_input": (SessionState.NEEDS_INPUT, TerminationReason.NONE),
    "stuck": (SessionState.STUCK, TerminationReason.NONE),
    "detecting": (SessionState.DETECTING, TerminationReason.NONE),
    "done": (SessionState.DONE, TerminationReason.NONE),
    "merged": (SessionState.TERMINATED, TerminationReason.PR_MERGED),
    "killed": (SessionState.TERMINATED, TerminationReason.MANUALLY_KILLED),
    "terminated": (SessionState.TERMINATED, TerminationReason.MANUALLY_KILLED),
    "cleanup": (SessionState.TERMINATED, TerminationReason.AUTO_CLEANUP),
    "errored": (SessionState.TERMINATED, TerminationReason.ERROR_IN_PROCESS),
}
_HARNESS_IDS: Final = {
    AgentHarness.CLAUDE_CODE: "claudeSessionUuid",
    AgentHarness.CODEX: "codexThreadId",
    AgentHarness.OPENCODE: "opencodeSessionId",
}


class SourceKind(StrEnum):
    V2 = "v2"  # projects/<id>/sessions/<id>.json
    V1 = "v1"  # <hash>-<id>/sessions/<id> or .json
    ARCHIVE = "archive"  # <hash>-<id>/sessions/archive/<id>_<ts>


class LegacyFile(Model, frozen=True, kw_only=True):
    """One metadata file as read: where it was, its bytes as text, its mtime."""

    path: str
    name: str
    kind: SourceKind
    directory: str  # the project directory's own name (``my-app``, ``a3b4c5d6e7f8-my-app``)
    text: str
    mtime: datetime
    sha256: str


class LegacyProject(Model, frozen=True, kw_only=True):
    """A legacy project: identity from the global config, behaviour from its local one."""

    legacy_id: str
    id: str  # ``legacy_id`` in our charset
    path: str = ""
    origin_url: str = ""
    display_name: str = ""
    registered_at: datetime | None = None
    storage_key: str = ""
    agent: str = ""
    reactions: dict[str, Any] = msgspec.field(default_factory=dict)


class LegacyInstallation(Model, frozen=True, kw_only=True):
    """One snapshot of an installation: its projects, each project's metadata files (by
    legacy project id), and whether the legacy daemon runs."""

    root: str
    config_path: str = ""
    projects: tuple[LegacyProject, ...] = ()
    files: dict[str, tuple[LegacyFile, ...]] = msgspec.field(default_factory=dict)
    legacy_daemon_pid: int | None = None
    migration_in_progress: bool = False
    notes: tuple[str, ...] = ()


def sanitize_project_id(legacy_id: str) -> str:
    """Our project ids are lowercase letters, digits, ``-`` and ``_``, at most 32."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", legacy_id.lower()).strip("-_") or "imported"
    return cleaned[:32]


class Skip(StrEnum):
    EMPTY = "skipped_empty"
    CORRUPT = "skipped_corrupt"
    TMP_LOCK = "skipped_tmp_lock"


class ParsedSession(Model, frozen=True, kw_only=True):
    """A file that holds a session: its id and flat fields (nested values decoded)."""

    session_id: str
    source: LegacyFile
    fields: dict[str, Any]


class ImportedSession(Model, frozen=True, kw_only=True):
    """What one legacy session becomes: the row, its PR (if any), its seeded trackers."""

    record: SessionRecord
    pr: PRObservation | None = None
    trackers: tuple[Tracker, ...] = ()
    source: LegacyFile
    dropped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# --- parsing -----------------------------------------------------------------------------


def parse_key_value(text: str) -> dict[str, str]:
    """The V1 flat reader: trimmed lines, ``#`` comments and lines without ``=`` skipped,
    split on the first ``=``, the last duplicate wins, an empty value is absent."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if value:
            out[key] = value
        else:
            out.pop(key, None)
    return out


def _decoded(value: Any) -> Any:
    """Nested values arrive as objects or as JSON strings, sometimes double-encoded."""
    for _ in range(3):
        if isinstance(value, str) and value[:1] in ("{", "[", '"'):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        else:
            break
    return value


def parse_session_file(file: LegacyFile) -> ParsedSession | Skip:
    """The session a file holds, or why it is skipped (a 0-byte reservation, a file that
    is not one JSON object)."""
    if file.kind is SourceKind.ARCHIVE:
        match = ARCHIVE_NAME.match(file.name)
        if match is None:
            return Skip.TMP_LOCK
        session_id = match.group(1)
    elif file.name.endswith(".json"):
        if not SESSION_JSON_NAME.match(file.name):
            return Skip.TMP_LOCK
        session_id = file.name[: -len(".json")]
    elif SESSION_FLAT_NAME.match(file.name):
        session_id = file.name
    else:
        return Skip.TMP_LOCK
    if not file.text.strip():
        return Skip.EMPTY
    fields: dict[str, Any]
    if file.text.lstrip()[:1] == "{":
        try:
            loaded = json.loads(file.text)
        except ValueError:
            return Skip.CORRUPT
        if not isinstance(loaded, dict):
            return Skip.CORRUPT
        fields = {k: v for k, v in loaded.items() if v != ""}
    elif file.text.lstrip()[:1] in ("[", '"') or file.text.strip()[:1].isdigit():
        return Skip.CORRUPT
    else:
        fields = dict(parse_key_value(file.text))
        if not fields:
            return Skip.CORRUPT
    for key in ("lifecycle", "statePayload", "runtimeHandle", "prEnrichment"):
        if key in fields:
            fields[key] = _decoded(fields[key])
    return ParsedSession(session_id=session_id, source=file, fields=fields)


def parse_timestamp(value: Any) -> datetime | None:
    """ISO with or without milliseconds, epoch milliseconds, or epoch seconds."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


# --- choosing among files ------------------------------------------------------------------


def _precedence(parsed: ParsedSession) -> tuple[datetime, datetime, str]:
    created = parse_timestamp(parsed.fields.get("createdAt")) or datetime.min.replace(tzinfo=UTC)
    return (created, parsed.source.mtime, parsed.source.path)


def archive_stamp(name: str) -> str:
    """An archive's time as comparable digits, whichever of the three forms it has."""
    match = ARCHIVE_NAME.match(name)
    digits = re.sub(r"\D", "", match.group(2)) if match else ""
    return digits.ljust(17, "0")


def choose_sessions(parsed: list[ParsedSession]) -> tuple[list[ParsedSession], list[str]]:
    """One file per id: V2 over V1 over archives; within V1 the newest mtime of one dir
    wins, and the same id in two hash dirs keeps the id for the newest (``createdAt``,
    then mtime, then path) and renames the other ``<id>__from-<hash>``; of several
    archives the lexicographically latest name wins."""
    notes: list[str] = []
    chosen: dict[str, ParsedSession] = {}
    for kind in (SourceKind.V2, SourceKind.V1, SourceKind.ARCHIVE):
        of_kind = [p for p in parsed if p.source.kind is kind]
        by_id: dict[str, list[ParsedSession]] = {}
        for p in of_kind:
            by_id.setdefault(p.session_id, []).append(p)
        for sid, group in sorted(by_id.items()):
            if sid in chosen:
                notes.append(f"{sid}: {kind} copy ignored, a newer generation has it")
                continue
            if kind is SourceKind.ARCHIVE:
                chosen[sid] = max(group, key=lambda p: archive_stamp(p.source.name))
                continue
            by_dir: dict[str, ParsedSession] = {}
            for p in sorted(group, key=lambda p: (p.source.mtime, p.source.path)):
                by_dir[p.source.directory] = p  # in one dir the newer mtime wins
            ranked = sorted(by_dir.values(), key=_precedence, reverse=True)
            chosen[sid] = ranked[0]
            for loser in ranked[1:]:
                hash_part = loser.source.directory.split("-", 1)[0]
                renamed = f"{sid}__from-{hash_part}"
                notes.append(f"{sid}: duplicate in {loser.source.directory} kept as {renamed}")
                chosen[renamed] = ParsedSession(
                    session_id=renamed, source=loser.source, fields=loser.fields
                )
    return [chosen[k] for k in sorted(chosen)], notes


# --- mapping -------------------------------------------------------------------------------


def _lifecycle_object(fields: dict[str, Any]) -> dict[str, Any] | None:
    value = fields.get("lifecycle")
    if isinstance(value, dict):
        return value
    payload = fields.get("statePayload")
    if isinstance(payload, dict) and str(fields.get("stateVersion", "2")) == "2":
        return payload
    return None


def _sub(obj: dict[str, Any] | None, key: str) -> dict[str, Any]:
    value = obj.get(key) if obj else None
    return value if isinstance(value, dict) else {}


def map_state(
    fields: dict[str, Any], *, pr_merged: bool
) -> tuple[SessionState, TerminationReason, list[str]]:
    """The session state and terminal reason: the lifecycle wins over a stale ``status``;
    an unknown value falls back to the flat status, then to idle."""
    notes: list[str] = []
    session = _sub(_lifecycle_object(fields), "session")
    state = session.get("state")
    reason = session.get("reason")
    fallback = TerminationReason.PR_MERGED if pr_merged else TerminationReason.MANUALLY_KILLED
    terminated_at = session.get("terminatedAt") or fields.get("terminatedAt")
    if state in _LIVE_STATES and not terminated_at:
        return SessionState(state), TerminationReason.NONE, notes
    if state == "done":
        return SessionState.DONE, TerminationReason.NONE, notes
    if state == "terminated" or (state in _LIVE_STATES and terminated_at):
        if reason in _TERMINAL_REASONS:
            return SessionState.TERMINATED, TerminationReason(reason), notes
        notes.append(f"terminal reason {reason!r} mapped to {fallback}")
        return SessionState.TERMINATED, fallback, notes
    if state is not None:
        notes.append(f"unknown lifecycle state {state!r}; the flat status applies")
    status = fields.get("status")
    if isinstance(status, str) and status in _FLAT_STATUS:
        mapped_state, mapped_reason = _FLAT_STATUS[status]
        return mapped_state, mapped_reason, notes
    notes.append(f"unknown status {status!r} imported as idle")
    return SessionState.IDLE, TerminationReason.NONE, notes


def _pr_number(url: str, given: Any) -> int:
    if isinstance(given, int) and not isinstance(given, bool):
        return given
    match = re.search(r"/pull/(\d+)", url)
    return int(match.group(1)) if match else 0


def map_pr(fields: dict[str, Any]) -> PRObservation | None:
    """The PR row, only when a URL exists; CI, review and mergeability from the cached
    enrichment, else from the lifecycle's PR reason. Check runs are not imported: they
    carry no commit, and a made-up history would trip the CI brake."""
    pr = _sub(_lifecycle_object(fields), "pr")
    url = pr.get("url") or fields.get("pr") or fields.get("agentReportedPrUrl")
    if not isinstance(url, str) or not url or (pr.get("state") == "none" and not fields.get("pr")):
        return None
    enrichment = fields.get("prEnrichment")
    enrichment = enrichment if isinstance(enrichment, dict) else {}
    reason = pr.get("reason")
    ci = {"passing": CIState.PASSING, "failing": CIState.FAILING, "pending": CIState.PENDING}
    ci_state = ci.get(str(enrichment.get("ciStatus")))
    if ci_state is None:
        ci_state = CIState.FAILING if reason == "ci_failing" else CIState.UNKNOWN
    reviews = {
        "approved": ReviewDecision.APPROVED,
        "changes_requested": ReviewDecision.CHANGES_REQUESTED,
        "pending": ReviewDecision.REVIEW_REQUIRED,
        "review_pending": ReviewDecision.REVIEW_REQUIRED,
    }
    review = reviews.get(str(enrichment.get("reviewDecision", reason)), ReviewDecision.NONE)
    if enrichment.get("hasConflicts") is True:
        mergeability = Mergeability.CONFLICTING
    elif enrichment.get("mergeable") is True:
        mergeability = Mergeability.MERGEABLE
    else:
        mergeability = Mergeability.UNKNOWN
    state = pr.get("state")
    return PRObservation(
        url=url,
        number=_pr_number(url, pr.get("number")),
        draft=enrichment.get("isDraft") is True,
        merged=state == "merged",
        closed=state == "closed",
        ci=ci_state,
        review=review,
        mergeability=mergeability,
    )


def session_num(session_id: str) -> int | None:
    """The trailing number of ``<prefix>-<N>``; None for orchestrators and odd ids."""
    if re.search(r"-orchestrator(-\d+)?$", session_id):
        return None
    match = re.search(r"-(\d+)$", session_id)
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def _text(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


def map_session(
    parsed: ParsedSession, *, project_id: str, num: int, now: datetime
) -> ImportedSession:
    """The row a legacy session becomes: not alive, activity stamped at import time (so
    the recent-activity window protects it until its runtime is probed), and the entry
    tracker seeded with the reaction its current state already called for, so the first
    turn after import fires nothing for a state that existed before it."""
    fields = parsed.fields
    notes: list[str] = []
    if fields.get("project") not in (None, project_id):
        notes.append(f"project field {fields['project']!r} differs; the directory wins")
    pr = map_pr(fields)
    merged = pr is not None and pr.merged
    state, reason, state_notes = map_state(fields, pr_merged=merged)
    notes.extend(state_notes)
    if parsed.source.kind is SourceKind.ARCHIVE and not state.is_terminal:
        # An archive is a session that was killed or cleaned up, whatever it last said.
        state = SessionState.TERMINATED
        reason = TerminationReason.PR_MERGED if merged else TerminationReason.MANUALLY_KILLED
    lifecycle_obj = _lifecycle_object(fields)
    session = _sub(lifecycle_obj, "session")
    runtime = _sub(lifecycle_obj, "runtime")
    handle = fields.get("runtimeHandle")
    handle = handle if isinstance(handle, dict) else _sub(runtime, "handle")
    handle_id = str(handle.get("id") or "")
    runtime_name = str(handle.get("runtimeName") or "")
    if not handle_id:
        handle_id = _text(fields, "tmuxName") or str(runtime.get("tmuxName") or "")
        runtime_name = "tmux" if handle_id else ""
    if runtime_name == "tmux":
        runtime_name = LEGACY_TMUX_RUNTIME
    agent = _text(fields, "agent")
    try:
        harness = AgentHarness(agent)
    except ValueError:
        harness = AgentHarness.NONE
        if agent:
            notes.append(f"agent {agent!r} is not a known harness")
    agent_session_id = _text(fields, _HARNESS_IDS.get(harness, ""))
    role_orchestrator = fields.get("role") == "orchestrator" or session.get("kind") == (
        "orchestrator"
    )
    kind = (
        SessionKind.ORCHESTRATOR
        if role_orchestrator or re.search(r"-orchestrator(-\d+)?$", parsed.session_id)
        else SessionKind.WORKER
    )
    created = (
        parse_timestamp(fields.get("createdAt"))
        or parse_timestamp(session.get("startedAt"))
        or parsed.source.mtime
    )
    updated = parse_timestamp(session.get("lastTransitionAt")) or parsed.source.mtime
    lifecycle = Lifecycle(
        state=state,
        termination_reason=reason,
        is_alive=False,
        activity=None
        if state.is_terminal
        else Activity(state=ActivityState.IDLE, last_activity_at=now, source=ActivitySource.NONE),
        harness=harness,
    )
    display = _text(fields, "displayName") or _text(fields, "pinnedSummary")
    record = SessionRecord(
        id=parsed.session_id,
        project_id=project_id,
        num=num,
        issue_id=_text(fields, "issue"),
        kind=kind,
        lifecycle=lifecycle,
        metadata=SessionMetadata(
            branch=_text(fields, "branch"),
            workspace_path=_text(fields, "worktree"),
            runtime_handle_id=handle_id,
            runtime_name=runtime_name,
            agent_session_id=agent_session_id,
            prompt=_text(fields, "userPrompt") or display or _text(fields, "summary")[:200],
            agent=agent,
        ),
        created_at=created,
        updated_at=max(updated, created),
    )
    return ImportedSession(
        record=record,
        pr=pr,
        trackers=baseline_trackers(lifecycle, pr, now),
        source=parsed.source,
        dropped=tuple(sorted(k for k in fields if k not in _READ_KEYS)),
        notes=tuple(f"{parsed.session_id}: {n}" for n in notes),
    )


def baseline_trackers(
    lifecycle: Lifecycle, pr: PRObservation | None, now: datetime
) -> tuple[Tracker, ...]:
    """The entry reaction the imported state already called for, marked as fired (and as
    escalated: the legacy daemon already did what it would), plus a ``baseline:<pr url>``
    marker: the first observation of an imported PR records what it sees and sends nothing."""
    if lifecycle.state.is_terminal:
        return ()
    trackers: list[Tracker] = []
    facts = pr.facts() if pr is not None else None
    key = entry_reaction(lifecycle, facts if facts is not None else PRFacts())
    if key is not None:
        trackers.append(
            Tracker(key=ENTRY_TRACKER, reaction=key, attempts=1, first_at=now, escalated=True)
        )
    if pr is not None:
        trackers.append(
            Tracker(key=f"{BASELINE_PREFIX}{pr.url}", reaction=ReactionKey.CI_FAILED, first_at=now)
        )
    return tuple(trackers)


# --- what the store writes ----------------------------------------------------------------


class ProvenanceRow(Model, frozen=True, kw_only=True):
    """Where one imported row came from, with the source's raw text, so a re-run can tell
    an unchanged source from one changed since (never re-applied) and dropped keys stay
    inspectable."""

    source_path: str
    sha256: str
    target_kind: str  # "project" or "session"
    target_id: str
    imported_at: datetime
    raw: str


class ImportBatch(Model, frozen=True, kw_only=True):
    """One project's import, written in one transaction: the project when it is new, the
    sessions not stored yet with their PR rows and trackers, and the provenance rows."""

    at: datetime
    project: Project
    sessions: tuple[ImportedSession, ...] = ()
    provenance: tuple[ProvenanceRow, ...] = ()
