-- 0005_pr_claim: a PR belongs to one session, auto-merge, and GitHub webhook replays.
--
-- 1. pr.head_sha: the head commit the PR's CI, review and mergeability were read at ('' when
--    not known). A merge names it, so GitHub refuses the merge when the head moved since.
-- 2. pr_cdc_claim: a PR that moves to another session (an explicit claim, or a session taking
--    over the PR of a session that ended) writes one 'pr_updated' row for each of the two
--    sessions, both naming the new owner and the previous one, so each side's subscribers
--    see the move, with the PR's state as written. pr_cdc_update, created again below, no
--    longer fires for the same UPDATE, so a move is those two rows whatever else changed
--    (triggers on one event fire in no documented order). Writes that keep the owner (the
--    observation hot path) fire exactly as before.
-- 3. outbox is rebuilt: action also allows 'auto-merge', and pr_url / head_sha say what an
--    auto-merge merges ('' for the other actions). A CHECK cannot be altered in SQLite, so
--    the table is copied (ids and the AUTOINCREMENT counter carried over, so ids are never
--    reused) and its indexes are created again: idx_outbox_pending of 0001, and
--    idx_outbox_settled, the retention janitor's (its own migration comes earlier, and
--    dropping the table drops the index).
-- 4. webhook_deliveries: the GitHub delivery ids already handled, so a replayed delivery is
--    ignored. The store keeps only the newest ones (it deletes by id as it inserts).

ALTER TABLE pr ADD COLUMN head_sha TEXT NOT NULL DEFAULT '';

CREATE TRIGGER pr_cdc_claim AFTER UPDATE OF session_id ON pr
WHEN OLD.session_id IS NOT NEW.session_id
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES ((SELECT project_id FROM sessions WHERE id = OLD.session_id), OLD.session_id,
            'pr_updated',
            json_object('url', NEW.url, 'session', NEW.session_id,
                        'previousSession', OLD.session_id, 'state', NEW.pr_state,
                        'ci', NEW.ci_state, 'review', NEW.review_decision,
                        'mergeability', NEW.mergeability),
            NEW.updated_at);
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES ((SELECT project_id FROM sessions WHERE id = NEW.session_id), NEW.session_id,
            'pr_updated',
            json_object('url', NEW.url, 'session', NEW.session_id,
                        'previousSession', OLD.session_id, 'state', NEW.pr_state,
                        'ci', NEW.ci_state, 'review', NEW.review_decision,
                        'mergeability', NEW.mergeability),
            NEW.updated_at);
END;

DROP TRIGGER pr_cdc_update;

CREATE TRIGGER pr_cdc_update
AFTER UPDATE OF pr_state, ci_state, review_decision, mergeability ON pr
WHEN (OLD.pr_state IS NOT NEW.pr_state
   OR OLD.ci_state IS NOT NEW.ci_state
   OR OLD.review_decision IS NOT NEW.review_decision
   OR OLD.mergeability IS NOT NEW.mergeability)
  AND OLD.session_id IS NEW.session_id
BEGIN
    INSERT INTO change_log (project_id, session_id, event_type, payload, created_at)
    VALUES ((SELECT project_id FROM sessions WHERE id = NEW.session_id), NEW.session_id,
            'pr_updated',
            json_object('url', NEW.url, 'session', NEW.session_id, 'state', NEW.pr_state,
                        'ci', NEW.ci_state, 'review', NEW.review_decision,
                        'mergeability', NEW.mergeability),
            NEW.updated_at);
END;

CREATE TABLE outbox_next (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key       TEXT NOT NULL UNIQUE,
    session_id      TEXT NOT NULL REFERENCES sessions (id),
    project_id      TEXT NOT NULL REFERENCES projects (id),
    action          TEXT NOT NULL
                    CHECK (action = 'send-to-agent' OR action = 'notify'
                        OR action = 'auto-merge'),
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
    created_at      TEXT NOT NULL,
    pr_url          TEXT NOT NULL DEFAULT '',
    head_sha        TEXT NOT NULL DEFAULT ''
) STRICT;

INSERT INTO outbox_next (id, dedup_key, session_id, project_id, action, reaction, event_type,
                         priority, message, attempts, next_attempt_at, delivered_at,
                         failed_at, last_error, created_at)
SELECT id, dedup_key, session_id, project_id, action, reaction, event_type, priority, message,
       attempts, next_attempt_at, delivered_at, failed_at, last_error, created_at
FROM outbox;

DELETE FROM sqlite_sequence WHERE name = 'outbox_next';

INSERT INTO sqlite_sequence (name, seq)
SELECT 'outbox_next', seq FROM sqlite_sequence WHERE name = 'outbox';

DROP TABLE outbox;

ALTER TABLE outbox_next RENAME TO outbox;

CREATE INDEX idx_outbox_pending ON outbox (id, next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

CREATE INDEX idx_outbox_settled ON outbox (COALESCE(delivered_at, failed_at))
    WHERE delivered_at IS NOT NULL OR failed_at IS NOT NULL;

CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL
) STRICT;
