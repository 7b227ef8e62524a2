-- How a session ended: when, and what its agent's pane last showed (the exit status, a
-- signal n read as 128 + n, and the pane's last lines, cleaned). Set when the session ends,
-- cleared by a restore; NULL / '' for sessions that are live or ended before this column.
-- ended_at also starts a merged session's cleanup grace period, so a restart during it
-- still cleans up on time.
ALTER TABLE sessions ADD COLUMN ended_at TEXT;
ALTER TABLE sessions ADD COLUMN exit_status INTEGER;
ALTER TABLE sessions ADD COLUMN last_output TEXT NOT NULL DEFAULT '';
