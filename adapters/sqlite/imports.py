"""The SQLite side of an agent-orchestrator import: one project's batch as one writer op.

The writer applies an op atomically (in its own savepoint when it fails), so a project and
its sessions, PR rows, trackers and provenance land together or not at all. Every insert
skips a row that exists: an import never updates what the daemon has since evolved.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from adapters.sqlite.statements import INSERT_SESSION, UPSERT_TRACKER
from adapters.sqlite.tables import decode_ts, encode_opt_ts, encode_ts
from adapters.sqlite.writes import PRWrite, session_row, tracker_row
from orchestrator.domain.legacy import ImportBatch, ProvenanceRow

_INSERT_PROJECT: Final = (
    "INSERT INTO projects (id, path, repo_origin_url, display_name, registered_at, archived_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
_SESSION_EXISTS: Final = "SELECT 1 FROM sessions WHERE id = ?"
_PR_EXISTS: Final = "SELECT 1 FROM pr WHERE url = ?"
_INSERT_PROVENANCE: Final = (
    "INSERT INTO imported_rows (source_path, target_kind, target_id, sha256, imported_at, raw)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (target_kind, target_id) DO NOTHING"
)
LIST_PROVENANCE: Final = (
    "SELECT source_path, sha256, target_kind, target_id, imported_at, raw FROM imported_rows"
    " ORDER BY target_kind, target_id"
)


class ImportWrite:
    """``ImportBatch`` as a writer op; returns the ids of the sessions it inserted."""

    def __init__(self, batch: ImportBatch) -> None:
        p = batch.project
        self.project = (
            p.id,
            p.path,
            p.repo_origin_url,
            p.display_name,
            encode_ts(p.registered_at),
            encode_opt_ts(p.archived_at),
        )
        at = encode_ts(batch.at)
        self.sessions = [
            (
                s.record.id,
                session_row(s.record),
                PRWrite(s.record.id, s.pr, at) if s.pr is not None else None,
                s.pr.url if s.pr is not None else "",
                [tracker_row(s.record.id, tr) for tr in s.trackers],
            )
            for s in batch.sessions
        ]
        self.provenance = [
            (r.source_path, r.target_kind, r.target_id, r.sha256, encode_ts(r.imported_at), r.raw)
            for r in batch.provenance
        ]

    def __call__(self, cur: sqlite3.Cursor) -> tuple[str, ...]:
        cur.execute(_INSERT_PROJECT, self.project)
        inserted: list[str] = []
        for session_id, row, pr_write, pr_url, trackers in self.sessions:
            if cur.execute(_SESSION_EXISTS, (session_id,)).fetchone() is not None:
                continue
            cur.execute(INSERT_SESSION, row)
            if pr_write is not None and cur.execute(_PR_EXISTS, (pr_url,)).fetchone() is None:
                pr_write(cur)
            if trackers:
                cur.executemany(UPSERT_TRACKER, trackers)
            inserted.append(session_id)
        if self.provenance:
            cur.executemany(_INSERT_PROVENANCE, self.provenance)
        return tuple(inserted)


def provenance_from_row(r: Sequence[Any]) -> ProvenanceRow:
    source_path, sha256, kind, target_id, imported_at, raw = r
    return ProvenanceRow(
        source_path=source_path,
        sha256=sha256,
        target_kind=kind,
        target_id=target_id,
        imported_at=decode_ts(imported_at),
        raw=raw,
    )
