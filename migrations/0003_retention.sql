-- 0003_retention: what the janitor needs to bound every table (adapters/sqlite/retention.py).
--
-- A notification is kept for a while after it was read or resolved: record when. Rows
-- already read or resolved count from their creation. The partial indexes hold only
-- such rows, so inserting a notification (never read yet) costs nothing more.
ALTER TABLE notifications ADD COLUMN read_at TEXT;
ALTER TABLE notifications ADD COLUMN resolved_at TEXT;
UPDATE notifications SET read_at = created_at WHERE read = 1;
UPDATE notifications SET resolved_at = created_at WHERE resolved = 1;
CREATE INDEX idx_notifications_read_at ON notifications (read_at) WHERE read_at IS NOT NULL;
CREATE INDEX idx_notifications_resolved_at ON notifications (resolved_at)
    WHERE resolved_at IS NOT NULL;

-- Settled outbox rows (delivered, or given up on) by when they settled. Open rows are not
-- in it: the engine's outbox inserts (the hot path) never touch this index, only the
-- dispatcher's mark_delivered / mark_failed do.
CREATE INDEX idx_outbox_settled ON outbox (COALESCE(delivered_at, failed_at))
    WHERE delivered_at IS NOT NULL OR failed_at IS NOT NULL;
