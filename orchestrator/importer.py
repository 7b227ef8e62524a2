"""Importing an agent-orchestrator installation into the running daemon.

Runs inside the daemon, through its store, so the change feed shows every imported row.
Read-only on the legacy files (``LegacySource``) and on the user's tmux server
(``LegacyRuntimeProbe``); refused while the legacy daemon runs, since both would drive the
same agents and its files are still changing. One transaction per project. Idempotent:
existing rows are never updated, and a source changed since its import is reported, not
re-applied. No nudge or page follows: the import writes no outbox row, the entry reaction
each imported state already called for is marked as sent, and the first observation of an
imported PR is a baseline (docs/behaviour.md, "Reactions").
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Protocol

import msgspec
import yaml

from orchestrator.api import ImportedProjectsOut, ImportedSessionsOut, ImportOut
from orchestrator.domain.errors import ConflictError
from orchestrator.domain.legacy import (
    LEGACY_TMUX_RUNTIME,
    ImportBatch,
    ImportedSession,
    LegacyInstallation,
    LegacyProject,
    ParsedSession,
    ProvenanceRow,
    Skip,
    choose_sessions,
    map_session,
    parse_session_file,
    session_num,
)
from orchestrator.domain.model import Lifecycle, SessionState, TerminationReason
from orchestrator.domain.records import Project
from orchestrator.ports import Clock, ImportStore, LegacyRuntimeProbe, LegacySource, SessionStore

FRAGMENT_NAME = "imported-agent-orchestrator.yaml"


class _Store(SessionStore, ImportStore, Protocol):
    pass


class _Counts:
    def __init__(self) -> None:
        self.projects: Counter[str] = Counter()
        self.sessions: Counter[str] = Counter()
        self.prs = 0
        self.dropped: Counter[str] = Counter()
        self.notes: list[str] = []


class LegacyImporter:
    """``run`` imports (or, dry, plans) one installation and reports what it did."""

    def __init__(
        self,
        store: _Store,
        source: LegacySource,
        tmux: LegacyRuntimeProbe,
        clock: Clock,
        data_dir: Path,
    ) -> None:
        self._store = store
        self._source = source
        self._tmux = tmux
        self._clock = clock
        self._data_dir = data_dir

    async def run(self, root: str | None, *, dry_run: bool) -> ImportOut:
        installation = await self._source.read(root)
        if installation.legacy_daemon_pid is not None:
            raise ConflictError(
                f"agent-orchestrator is running (pid {installation.legacy_daemon_pid}, "
                f"{installation.root}/running.json); stop it (`ao stop`) and import again"
            )
        counts = _Counts()
        counts.notes.extend(installation.notes)
        if installation.migration_in_progress:
            counts.notes.append(
                "warning: an interrupted `ao migrate-storage` left .migration-in-progress; "
                "some sessions may be in both layouts (the newer layout wins)"
            )
        provenance = {(r.target_kind, r.target_id): r for r in await self._store.list_provenance()}
        for project in sorted(installation.projects, key=lambda p: p.id):
            await self._import_project(installation, project, provenance, counts, dry_run=dry_run)
        fragment = config_fragment(installation.projects)
        fragment_path = self._data_dir / FRAGMENT_NAME
        if not dry_run:
            fragment_path.write_text(fragment)
        return ImportOut(
            dry_run=dry_run,
            legacy_root=installation.root,
            config_path=installation.config_path,
            projects=ImportedProjectsOut(
                imported=counts.projects["imported"],
                skipped=counts.projects["skipped"],
                conflicts=counts.projects["conflicts"],
            ),
            sessions=ImportedSessionsOut(**dict(counts.sessions)),
            prs=counts.prs,
            dropped=dict(sorted(counts.dropped.items())),
            notes=counts.notes,
            config_fragment=fragment,
            fragment_path=str(fragment_path),
        )

    async def _conflict(self, project: LegacyProject) -> str:
        """Why the project cannot be imported under its id ('' when it can)."""
        existing = await self._store.get_project(project.id)
        if existing is not None:
            if existing.archived_at is not None:
                return "same id matches an archived project"
            if project.path and existing.path != project.path:
                return f"same id with a different path ({existing.path})"
            return ""
        for other in await self._store.list_projects(include_archived=True):
            if project.path and other.path == project.path:
                return f"same path with a different id ({other.id})"
        return ""

    async def _import_project(
        self,
        installation: LegacyInstallation,
        project: LegacyProject,
        provenance: dict[tuple[str, str], ProvenanceRow],
        counts: _Counts,
        *,
        dry_run: bool,
    ) -> None:
        now = self._clock.now()
        conflict = await self._conflict(project)
        if conflict:
            counts.projects["conflicts"] += 1
            counts.notes.append(f"project {project.id}: skipped, {conflict}")
            return
        is_new = await self._store.get_project(project.id) is None
        counts.projects["imported" if is_new else "skipped"] += 1
        parsed: list[ParsedSession] = []
        for file in installation.files.get(project.legacy_id, ()):
            result = parse_session_file(file)
            if isinstance(result, Skip):
                counts.sessions[str(result)] += 1
                if result is not Skip.TMP_LOCK:
                    counts.notes.append(f"{file.path}: {_SKIP_NOTES[result]}")
                continue
            parsed.append(result)
        chosen, notes = choose_sessions(parsed)
        counts.notes.extend(notes)
        stored = {s.id: s for s in await self._store.list_sessions()}
        taken = {s.num for s in stored.values() if s.project_id == project.id}
        sessions: list[ImportedSession] = []
        rows: list[ProvenanceRow] = []
        wanted = {n for p in chosen if (n := session_num(p.session_id)) is not None}
        for item in chosen:
            target = item.session_id
            renamed_from = ""
            if stored.get(target) is not None and stored[target].project_id != project.id:
                target, renamed_from = f"{item.session_id}__{project.id}", item.session_id
            known = provenance.get(("session", target))
            if target in stored or known is not None:
                counts.sessions["skipped_existing"] += 1
                if known is not None and known.sha256 != item.source.sha256:
                    counts.sessions["changed_since"] += 1
                    counts.notes.append(f"{target}: changed since import (not re-applied)")
                continue
            num = session_num(target)
            if num is None or num in taken:
                # After every number the legacy ids carry, so those keep theirs.
                num = max(taken | wanted | {0}) + 1
            taken.add(num)
            if renamed_from:
                counts.sessions["renamed"] += 1
                counts.notes.append(f"{renamed_from}: id taken by another project; {target}")
            renamed = msgspec.structs.replace(item, session_id=target)
            mapped = map_session(renamed, project_id=project.id, num=num, now=now)
            imported, runtime = await self._probed(mapped)
            if runtime:
                counts.sessions[runtime] += 1
            sessions.append(imported)
            counts.dropped.update(imported.dropped)
            counts.notes.extend(imported.notes)
            counts.prs += imported.pr is not None
            rows.append(
                _provenance(
                    target, "session", item.source.path, item.source.sha256, item.source.text, now
                )
            )
            if imported.record.lifecycle.state.is_terminal:
                counts.sessions["terminal"] += 1
        if is_new:
            rows.append(
                _provenance(
                    project.id, "project", installation.config_path, "", project.legacy_id, now
                )
            )
        batch = ImportBatch(
            at=now,
            project=Project(
                id=project.id,
                path=project.path,
                repo_origin_url=project.origin_url,
                display_name=project.display_name,
                registered_at=project.registered_at or now,
            ),
            sessions=tuple(sessions),
            provenance=tuple(rows),
        )
        if dry_run:
            counts.sessions["imported"] += len(sessions)
            return
        inserted = await self._store.import_batch(batch)
        counts.sessions["imported"] += len(inserted)

    async def _probed(self, imported: ImportedSession) -> tuple[ImportedSession, str]:
        """A live session's tmux session is looked up on the user's default server: there,
        it is adopted as it is; gone, the session is terminated as ``runtime_lost`` (it
        stays restorable from its agent conversation id) and needs no baseline."""
        record = imported.record
        handle = record.metadata.runtime_handle_id
        if (
            record.lifecycle.state.is_terminal
            or record.metadata.runtime_name != LEGACY_TMUX_RUNTIME
        ):
            return imported, ""
        if handle and await self._tmux.has_session(handle):
            return imported, "live"
        lost = Lifecycle(
            state=SessionState.TERMINATED,
            termination_reason=TerminationReason.RUNTIME_LOST,
            harness=record.lifecycle.harness,
        )
        lost_record = msgspec.structs.replace(record, lifecycle=lost)
        return msgspec.structs.replace(imported, record=lost_record, trackers=()), "runtime_lost"


_SKIP_NOTES = {
    Skip.EMPTY: "reserved, never written; skipped",
    Skip.CORRUPT: "not a JSON object or key=value file; skipped",
    Skip.TMP_LOCK: "lock, temporary or corrupt copy; ignored",
}


def _provenance(
    target_id: str, kind: str, path: str, sha256: str, raw: str, now: datetime
) -> ProvenanceRow:
    return ProvenanceRow(
        source_path=path,
        sha256=sha256,
        target_kind=kind,
        target_id=target_id,
        imported_at=now,
        raw=raw,
    )


def config_fragment(projects: tuple[LegacyProject, ...]) -> str:
    """The ``orchestrator.yaml`` fragment for the imported projects and their reactions
    (kept with their legacy keys), for the user to review and merge; never applied."""
    body: dict[str, object] = {
        "projects": {
            p.id: {
                k: v
                for k, v in (
                    ("path", p.path),
                    ("repoOriginUrl", p.origin_url),
                    ("displayName", p.display_name),
                )
                if v
            }
            for p in projects
            if p.path
        }
    }
    reactions: dict[str, object] = {}
    for p in projects:
        reactions.update(p.reactions)
    if reactions:
        body["reactions"] = reactions
    header = (
        "# Imported from agent-orchestrator: review, then merge into orchestrator.yaml.\n"
        "# Reactions keep their agent-orchestrator keys and values.\n"
    )
    return header + yaml.safe_dump(body, sort_keys=True)
