-- 0003_session_removal: sessions can be removed (`orchestrator rm`) while their history
-- stays in the change log, session numbers are never reused, and a change of the agent's
-- own conversation id (sessions.agent_session_id) is a change-log row.
--
-- 1. session_numbers holds the last number given out per project, so removing the newest
--    session does not hand its id (and its branch, worktree path and history) to the next.
-- 2. change_log is rebuilt: session_id no longer references sessions (a removed session's
--    rows stay, naming it; with no reference left, a delete needs no index on the column),
--    and event_type also allows 'session_deleted'. A table's
--    constraints cannot be altered in SQLite, so the table is copied; the CDC triggers that
--    write it are dropped first and created again afterwards, and the AUTOINCREMENT
--    counter is carried over, so seqs are never reused even when the log was trimmed empty.
-- 3. sessions_cdc_update no longer fires when the same UPDATE changes agent_session_id:
--    sessions_cdc_agent_session then writes the one row, with the id in its payload.
--    Lifecycle-only updates (the hot path) never set agent_session_id, so their cost and
--    payloads are unchanged.
-- 4. sessions_cdc_delete writes 'session_deleted' with the row's last state. Its time is
--    the row's updated_at, which the store sets to the removal time just before deleting.

CREATE TABLE session_numbers (
    project_id TEXT PRIMARY KEY NOT NULL REFERENCES projects (id),
    last_num   INTEGER NOT NULL CHECK (last_num > 0)
) STRICT, WITHOUT ROWID;

INSERT INTO session_numbers (project_id, last_num)
SELECT project_id, MAX(num) FROM sessions GROUP BY project_id;

DROP TRIGGER sessions_cdc_insert;
DROP TRIGGER sessions_cdc_update;
DROP TRIGGER pr_cdc_insert;
DROP TRIGGER pr_cdc_update;
DROP TRIGGER pr_checks_cdc_insert;
DROP TRIGGER pr_checks_cdc_update;
DROP TRIGGER notifications_cdc_insert;

CREATE TABLE change_log_next (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects (id),
    session_id TEXT,
    event_type TEXT NOT NULL
               CHECK (event_type = 'session_created' OR event_type = 'session_updated'
                   OR event_type = 'session_deleted'
                   OR event_type = 'pr_created' OR event_type = 'pr_updated'
                   OR event_type = 'pr_check_recorded' OR event_type = 'notification_created'),
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

INSERT INTO change_log_next (seq, project_id, session_id, event_type, payload, created_at)
SELECT seq, project_id, session_id, event_type, payload, created_at FROM change_log;

DELETE FROM sqlite_sequence WHERE name = 'change_log_next';

INSERT INTO sqlite_sequence (name, seq)
SELECT 'change_log_next', seq FROM sqlite_sequence WHERE name = 'change_log';

DROP TABLE change_log;

ALTER TABLE change_log_next RENAME TO change_log;

CREATE INDEX idx_change_log_project ON change_log (project_id, seq);

-- The CDC triggers of 0001, as they were, except sessions_cdc_update's last condition.

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
WHEN (OLD.session_state IS NOT NEW.session_state
   OR OLD.termination_reason IS NOT NEW.termination_reason
   OR OLD.is_alive IS NOT NEW.is_alive
   OR OLD.activity_state IS NOT NEW.activity_state)
  AND OLD.agent_session_id IS NEW.agent_session_id
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES (NEW.project_id, NEW.id, 'session_updated',
            json_object('id', NEW.id, 'state', NEW.session_state,
                        'terminationReason', NEW.termination_reason,
                        'isAlive', NEW.is_alive, 'activity', NEW.activity_state),
            NEW.updated_at);
END;

CREATE TRIGGER sessions_cdc_agent_session
AFTER UPDATE OF agent_session_id ON sessions
WHEN OLD.agent_session_id IS NOT NEW.agent_session_id
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES (NEW.project_id, NEW.id, 'session_updated',
            json_object('id', NEW.id, 'state', NEW.session_state,
                        'terminationReason', NEW.termination_reason,
                        'isAlive', NEW.is_alive, 'activity', NEW.activity_state,
                        'agentSessionId', NEW.agent_session_id),
            NEW.updated_at);
END;

CREATE TRIGGER sessions_cdc_delete AFTER DELETE ON sessions
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES (OLD.project_id, OLD.id, 'session_deleted',
            json_object('id', OLD.id, 'state', OLD.session_state,
                        'terminationReason', OLD.termination_reason,
                        'isAlive', OLD.is_alive, 'activity', OLD.activity_state),
            OLD.updated_at);
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
