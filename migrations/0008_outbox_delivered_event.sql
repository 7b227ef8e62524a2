-- 0008_outbox_delivered_event: the change feed says when a reaction reached the agent or
-- the human, and a PR remembers when its facts last changed.
--
-- * `reaction_delivered`: written when an outbox row's delivered_at goes from NULL to a
--   time (a nudge typed into the agent's pane, a page handed to the notifiers). A row
--   given up on (failed_at) writes none: its fallback page is a notification_created.
--   Payload keys in this order: id, sessionId, action, reaction (its key, or null), type,
--   priority; createdAt is the delivery time.
-- * change_log's event_type CHECK lists every event, and SQLite cannot alter a CHECK, so
--   the table is rebuilt with the new type: its rows are copied aside and back under the
--   same name, and the AUTOINCREMENT counter is carried over, so no seq is ever reused
--   (not even when every row had been trimmed). Never a RENAME: renaming re-parses every
--   trigger that writes change_log, and fails while the table is gone.
-- * idx_outbox_retrying: open rows requeued for a later retry (next_attempt_at set), by
--   session. pending_outbox leaves out the rows queued behind such a row, so a session's
--   reactions go in order after a restart too; the index holds only those few rows, so
--   the engine's outbox inserts (next_attempt_at NULL) never touch it.
-- * pr.changed_at: when the PR last wrote a pr_created / pr_updated row (its state, CI,
--   review decision or mergeability changed, or it moved to another session), not every
--   time it was observed: listings show it, so a session whose PR went red moves up. Rows
--   already there take their updated_at, the best known.

CREATE TEMP TABLE change_log_copy AS SELECT * FROM change_log;
CREATE TEMP TABLE change_log_counter AS
    SELECT seq FROM sqlite_sequence WHERE name = 'change_log';
DROP TABLE change_log;

-- As 0004 left it (session_id references nothing: a removed session's rows stay), plus
-- 'reaction_delivered'.
CREATE TABLE change_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects (id),
    session_id TEXT,
    event_type TEXT NOT NULL
               CHECK (event_type = 'session_created' OR event_type = 'session_updated'
                   OR event_type = 'session_deleted'
                   OR event_type = 'pr_created' OR event_type = 'pr_updated'
                   OR event_type = 'pr_check_recorded' OR event_type = 'notification_created'
                   OR event_type = 'reaction_delivered'),
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

INSERT INTO change_log (seq, project_id, session_id, event_type, payload, created_at)
    SELECT seq, project_id, session_id, event_type, payload, created_at
    FROM change_log_copy ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'change_log';
INSERT INTO sqlite_sequence (name, seq) SELECT 'change_log', seq FROM change_log_counter;
DROP TABLE change_log_copy;
DROP TABLE change_log_counter;
CREATE INDEX idx_change_log_project ON change_log (project_id, seq);

CREATE TRIGGER outbox_cdc_delivered AFTER UPDATE OF delivered_at ON outbox
WHEN OLD.delivered_at IS NULL AND NEW.delivered_at IS NOT NULL
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES (NEW.project_id, NEW.session_id, 'reaction_delivered',
            json_object('id', NEW.id, 'sessionId', NEW.session_id, 'action', NEW.action,
                        'reaction', NEW.reaction, 'type', NEW.event_type,
                        'priority', NEW.priority),
            NEW.delivered_at);
END;

CREATE INDEX idx_outbox_retrying ON outbox (session_id, id, next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at IS NOT NULL;

ALTER TABLE pr ADD COLUMN changed_at TEXT;
UPDATE pr SET changed_at = updated_at;

-- The conditions of pr_cdc_insert, and of pr_cdc_update or pr_cdc_claim (0005): a
-- change-log row and a new changed_at go together. Updating only changed_at fires none of
-- them again.
CREATE TRIGGER pr_changed_at_insert AFTER INSERT ON pr
BEGIN
    UPDATE pr SET changed_at = NEW.updated_at WHERE url = NEW.url;
END;

CREATE TRIGGER pr_changed_at_update
AFTER UPDATE OF pr_state, ci_state, review_decision, mergeability, session_id ON pr
WHEN OLD.pr_state IS NOT NEW.pr_state
  OR OLD.ci_state IS NOT NEW.ci_state
  OR OLD.review_decision IS NOT NEW.review_decision
  OR OLD.mergeability IS NOT NEW.mergeability
  OR OLD.session_id IS NOT NEW.session_id
BEGIN
    UPDATE pr SET changed_at = NEW.updated_at WHERE url = NEW.url;
END;
