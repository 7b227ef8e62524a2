-- 0006_import_provenance: where each row imported from an agent-orchestrator installation
-- came from (`orchestrator import agent-orchestrator`). A re-run compares each source's
-- sha256 with the one imported, so it reports what changed since without re-applying it;
-- raw keeps the source text, so keys the import dropped stay inspectable.
-- Not referenced by sessions: a removed session's provenance stays, so a re-run never
-- imports it again.

CREATE TABLE imported_rows (
    source_path TEXT NOT NULL,
    target_kind TEXT NOT NULL CHECK (target_kind = 'project' OR target_kind = 'session'),
    target_id   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    raw         TEXT NOT NULL,
    PRIMARY KEY (target_kind, target_id)
) STRICT, WITHOUT ROWID;
