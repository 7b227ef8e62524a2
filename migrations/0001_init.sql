-- 0001_init: the schema of reference §6.2 plus reaction_trackers, outbox and notifications,
-- and the CDC triggers of reference §6.3 plus notification_created.
--
-- Conventions:
--   * Every table is STRICT; every TEXT primary key is NOT NULL (SQLite accepts NULL keys
--     otherwise). Enumerations are CHECKed, written as OR chains of equalities and not as
--     `col IN ('a', 'b', ...)`: SQLite evaluates a constant IN list of more than two values
--     by building an ephemeral index once per statement execution, which cost ~6 us per
--     session UPDATE (its CHECKs plus change_log.event_type) -- half of the row's cost.
--   * Timestamps are fixed-width UTC text 'YYYY-MM-DD HH:MM:SS.ffffff+00:00' written by the
--     application (adapters/sqlite/tables.py), so text order is time order.
--   * Only triggers write change_log. Payload JSON keys keep the order written here and
--     isAlive is an integer 0/1 (json_object of an INTEGER column).
--   * Applied by adapters/sqlite/migrate.py in one BEGIN IMMEDIATE transaction, one
--     statement at a time. Never edit this file once released: add 0002_*.sql instead.

CREATE TABLE projects (
    id              TEXT PRIMARY KEY NOT NULL,
    path            TEXT NOT NULL,
    repo_origin_url TEXT NOT NULL DEFAULT '',
    display_name    TEXT NOT NULL DEFAULT '',
    registered_at   TEXT NOT NULL,
    archived_at     TEXT
) STRICT;

-- activity_state '' (with activity_last_at '' and activity_source '') means "no activity
-- reported yet"; the CDC payload then shows "activity":"".
-- The detecting triple is all NULL or all set (memory present iff detecting_attempts NOT NULL).
-- UNIQUE (project_id, num) also serves lookups by project (reference idx_sessions_project).
CREATE TABLE sessions (
    id                      TEXT PRIMARY KEY NOT NULL,
    project_id              TEXT NOT NULL REFERENCES projects (id),
    num                     INTEGER NOT NULL CHECK (num > 0),
    issue_id                TEXT NOT NULL DEFAULT '',
    kind                    TEXT NOT NULL DEFAULT 'worker'
                            CHECK (kind = 'worker' OR kind = 'orchestrator'),
    harness                 TEXT NOT NULL DEFAULT ''
                            CHECK (harness = '' OR harness = 'claude-code' OR harness = 'codex'
                                OR harness = 'aider' OR harness = 'opencode'),
    session_state           TEXT NOT NULL
                            CHECK (session_state = 'not_started' OR session_state = 'working'
                                OR session_state = 'idle' OR session_state = 'needs_input'
                                OR session_state = 'stuck' OR session_state = 'detecting'
                                OR session_state = 'done' OR session_state = 'terminated'),
    termination_reason      TEXT NOT NULL DEFAULT ''
                            CHECK (termination_reason = ''
                                OR termination_reason = 'manually_killed'
                                OR termination_reason = 'runtime_lost'
                                OR termination_reason = 'agent_process_exited'
                                OR termination_reason = 'probe_failure'
                                OR termination_reason = 'error_in_process'
                                OR termination_reason = 'auto_cleanup'
                                OR termination_reason = 'pr_merged'),
    is_alive                INTEGER NOT NULL DEFAULT 0 CHECK (is_alive = 0 OR is_alive = 1),
    activity_state          TEXT NOT NULL DEFAULT ''
                            CHECK (activity_state = '' OR activity_state = 'active'
                                OR activity_state = 'ready' OR activity_state = 'idle'
                                OR activity_state = 'waiting_input'
                                OR activity_state = 'blocked' OR activity_state = 'exited'),
    activity_last_at        TEXT NOT NULL DEFAULT '',
    activity_source         TEXT NOT NULL DEFAULT ''
                            CHECK (activity_source = '' OR activity_source = 'native'
                                OR activity_source = 'terminal' OR activity_source = 'hook'
                                OR activity_source = 'runtime' OR activity_source = 'none'),
    detecting_attempts      INTEGER,
    detecting_started_at    TEXT,
    detecting_evidence_hash TEXT,
    branch                  TEXT NOT NULL DEFAULT '',
    workspace_path          TEXT NOT NULL DEFAULT '',
    runtime_handle_id       TEXT NOT NULL DEFAULT '',
    runtime_name            TEXT NOT NULL DEFAULT '',
    agent_session_id        TEXT NOT NULL DEFAULT '',
    prompt                  TEXT NOT NULL DEFAULT '',
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    UNIQUE (project_id, num),
    CHECK ((detecting_attempts IS NULL) = (detecting_started_at IS NULL)
       AND (detecting_attempts IS NULL) = (detecting_evidence_hash IS NULL))
) STRICT;

CREATE TABLE pr (
    url             TEXT PRIMARY KEY NOT NULL,
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    number          INTEGER NOT NULL DEFAULT 0,
    pr_state        TEXT NOT NULL DEFAULT 'open'
                    CHECK (pr_state = 'draft' OR pr_state = 'open' OR pr_state = 'merged'
                        OR pr_state = 'closed'),
    review_decision TEXT NOT NULL DEFAULT 'none'
                    CHECK (review_decision = 'none' OR review_decision = 'approved'
                        OR review_decision = 'changes_requested'
                        OR review_decision = 'review_required'),
    ci_state        TEXT NOT NULL DEFAULT 'unknown'
                    CHECK (ci_state = 'unknown' OR ci_state = 'pending' OR ci_state = 'passing'
                        OR ci_state = 'failing'),
    mergeability    TEXT NOT NULL DEFAULT 'unknown'
                    CHECK (mergeability = 'unknown' OR mergeability = 'mergeable'
                        OR mergeability = 'conflicting' OR mergeability = 'blocked'
                        OR mergeability = 'unstable'),
    updated_at      TEXT NOT NULL,
    -- Bumped to MAX(write_seq) + 1 by every write of the row: among PRs with the same
    -- updated_at, the one written last counts as the newest (as the engine assumes when it
    -- folds an observation into what it knows, orchestrator/domain/prs.py).
    write_seq       INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Serves list_pr_facts: WHERE session_id = ? ORDER BY updated_at DESC, write_seq DESC.
CREATE INDEX idx_pr_session ON pr (session_id, updated_at, write_seq);
-- Serves MAX(write_seq).
CREATE INDEX idx_pr_write_seq ON pr (write_seq);

-- created_at is the first-seen time: an upsert never changes it.
CREATE TABLE pr_checks (
    pr_url      TEXT NOT NULL REFERENCES pr (url) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    commit_hash TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'unknown'
                CHECK (status = 'unknown' OR status = 'queued' OR status = 'in_progress'
                    OR status = 'passed' OR status = 'failed' OR status = 'skipped'
                    OR status = 'cancelled'),
    url         TEXT NOT NULL DEFAULT '',
    log_tail    TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    PRIMARY KEY (pr_url, name, commit_hash)
) STRICT;

-- Serves the CI brake: WHERE pr_url = ? AND name = ? ORDER BY created_at DESC, rowid DESC.
CREATE INDEX idx_pr_checks_lookup ON pr_checks (pr_url, name, created_at);

CREATE TABLE pr_comment (
    pr_url     TEXT NOT NULL REFERENCES pr (url) ON DELETE CASCADE,
    comment_id TEXT NOT NULL,
    author     TEXT NOT NULL DEFAULT '',
    file       TEXT NOT NULL DEFAULT '',
    line       INTEGER NOT NULL DEFAULT 0,
    body       TEXT NOT NULL DEFAULT '',
    resolved   INTEGER NOT NULL DEFAULT 0 CHECK (resolved = 0 OR resolved = 1),
    created_at TEXT NOT NULL,
    PRIMARY KEY (pr_url, comment_id)
) STRICT;

-- Durable reaction budgets and dedup state (DESIGN D-2). seen is a JSON array of strings.
CREATE TABLE reaction_trackers (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    reaction   TEXT NOT NULL
               CHECK (reaction = 'ci-failed' OR reaction = 'review-comments'
                   OR reaction = 'merge-conflicts' OR reaction = 'agent-idle'
                   OR reaction = 'approved-and-green' OR reaction = 'agent-stuck'
                   OR reaction = 'agent-needs-input' OR reaction = 'agent-exited'
                   OR reaction = 'pr-closed' OR reaction = 'pr-merged'),
    attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    first_at   TEXT,
    escalated  INTEGER NOT NULL DEFAULT 0 CHECK (escalated = 0 OR escalated = 1),
    seen       TEXT NOT NULL DEFAULT '[]' CHECK (json_type(seen) = 'array'),
    PRIMARY KEY (session_id, key)
) STRICT, WITHOUT ROWID;

-- Reactions to deliver, written in the same transaction as their cause (DESIGN D-1).
-- dedup_key is unique: the application inserts with ON CONFLICT (dedup_key) DO NOTHING.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key       TEXT NOT NULL UNIQUE,
    session_id      TEXT NOT NULL REFERENCES sessions (id),
    project_id      TEXT NOT NULL REFERENCES projects (id),
    action          TEXT NOT NULL CHECK (action = 'send-to-agent' OR action = 'notify'),
    reaction        TEXT
                    CHECK (reaction IS NULL
                        OR reaction = 'ci-failed' OR reaction = 'review-comments'
                        OR reaction = 'merge-conflicts' OR reaction = 'agent-idle'
                        OR reaction = 'approved-and-green' OR reaction = 'agent-stuck'
                        OR reaction = 'agent-needs-input' OR reaction = 'agent-exited'
                        OR reaction = 'pr-closed' OR reaction = 'pr-merged'),
    event_type      TEXT NOT NULL,
    priority        TEXT NOT NULL
                    CHECK (priority = 'urgent' OR priority = 'action' OR priority = 'info'),
    message         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT,
    delivered_at    TEXT,
    failed_at       TEXT,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL
) STRICT;

-- Serves pending_outbox: only open rows are indexed, in id (oldest first) order, with the
-- due time alongside so the filter needs no table lookup.
CREATE INDEX idx_outbox_pending ON outbox (id, next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

-- What the human was told (listed newest first, optionally per project).
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    type       TEXT NOT NULL,
    priority   TEXT NOT NULL
               CHECK (priority = 'urgent' OR priority = 'action' OR priority = 'info'),
    message    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0 CHECK (read = 0 OR read = 1),
    resolved   INTEGER NOT NULL DEFAULT 0 CHECK (resolved = 0 OR resolved = 1)
) STRICT;

CREATE INDEX idx_notifications_project ON notifications (project_id, id);

-- The change log. seq is AUTOINCREMENT: monotonic and never reused, even after trimming.
-- session_id references sessions without cascade. Sessions are never deleted and their id
-- never changes (the store's UPDATE never sets it), so no parent-key check ever scans
-- change_log; there is deliberately no index on change_log(session_id): it cost ~12% of
-- group-commit throughput (one more random-leaf insert per CDC row, bench/store_bench.py).
-- Deleting a session would need that index (and a decision about its history) first.
CREATE TABLE change_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects (id),
    session_id TEXT REFERENCES sessions (id),
    event_type TEXT NOT NULL
               CHECK (event_type = 'session_created' OR event_type = 'session_updated'
                   OR event_type = 'pr_created' OR event_type = 'pr_updated'
                   OR event_type = 'pr_check_recorded' OR event_type = 'notification_created'),
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX idx_change_log_project ON change_log (project_id, seq);

-- CDC triggers (reference §6.3). An upsert that hits a conflict fires the UPDATE trigger.

CREATE TRIGGER sessions_cdc_insert AFTER INSERT ON sessions
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES (NEW.project_id, NEW.id, 'session_created',
            json_object('id', NEW.id, 'state', NEW.session_state,
                        'terminationReason', NEW.termination_reason,
                        'isAlive', NEW.is_alive, 'activity', NEW.activity_state),
            NEW.updated_at);
END;

CREATE TRIGGER sessions_cdc_update
AFTER UPDATE OF session_state, termination_reason, is_alive, activity_state ON sessions
WHEN OLD.session_state IS NOT NEW.session_state
  OR OLD.termination_reason IS NOT NEW.termination_reason
  OR OLD.is_alive IS NOT NEW.is_alive
  OR OLD.activity_state IS NOT NEW.activity_state
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES (NEW.project_id, NEW.id, 'session_updated',
            json_object('id', NEW.id, 'state', NEW.session_state,
                        'terminationReason', NEW.termination_reason,
                        'isAlive', NEW.is_alive, 'activity', NEW.activity_state),
            NEW.updated_at);
END;

CREATE TRIGGER pr_cdc_insert AFTER INSERT ON pr
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES ((SELECT project_id FROM sessions WHERE id = NEW.session_id), NEW.session_id,
            'pr_created',
            json_object('url', NEW.url, 'session', NEW.session_id, 'state', NEW.pr_state,
                        'ci', NEW.ci_state, 'review', NEW.review_decision,
                        'mergeability', NEW.mergeability),
            NEW.updated_at);
END;

CREATE TRIGGER pr_cdc_update
AFTER UPDATE OF pr_state, ci_state, review_decision, mergeability ON pr
WHEN OLD.pr_state IS NOT NEW.pr_state
  OR OLD.ci_state IS NOT NEW.ci_state
  OR OLD.review_decision IS NOT NEW.review_decision
  OR OLD.mergeability IS NOT NEW.mergeability
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES ((SELECT project_id FROM sessions WHERE id = NEW.session_id), NEW.session_id,
            'pr_updated',
            json_object('url', NEW.url, 'session', NEW.session_id, 'state', NEW.pr_state,
                        'ci', NEW.ci_state, 'review', NEW.review_decision,
                        'mergeability', NEW.mergeability),
            NEW.updated_at);
END;

CREATE TRIGGER pr_checks_cdc_insert AFTER INSERT ON pr_checks
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES ((SELECT s.project_id FROM pr JOIN sessions AS s ON s.id = pr.session_id
             WHERE pr.url = NEW.pr_url),
            (SELECT session_id FROM pr WHERE url = NEW.pr_url),
            'pr_check_recorded',
            json_object('pr', NEW.pr_url, 'name', NEW.name, 'commit', NEW.commit_hash,
                        'status', NEW.status),
            NEW.created_at);
END;

-- created_at stays the check's original first-seen time (reference §6.3).
CREATE TRIGGER pr_checks_cdc_update AFTER UPDATE OF status ON pr_checks
WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES ((SELECT s.project_id FROM pr JOIN sessions AS s ON s.id = pr.session_id
             WHERE pr.url = NEW.pr_url),
            (SELECT session_id FROM pr WHERE url = NEW.pr_url),
            'pr_check_recorded',
            json_object('pr', NEW.pr_url, 'name', NEW.name, 'commit', NEW.commit_hash,
                        'status', NEW.status),
            NEW.created_at);
END;

CREATE TRIGGER notifications_cdc_insert AFTER INSERT ON notifications
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES (NEW.project_id, NEW.session_id, 'notification_created',
            json_object('id', NEW.id, 'sessionId', NEW.session_id, 'type', NEW.type,
                        'priority', NEW.priority, 'message', NEW.message),
            NEW.created_at);
END;
