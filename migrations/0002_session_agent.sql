-- The agent a session runs: "claude-code", "codex", a custom agent's name… so a restore
-- relaunches the same agent without being told. '' for sessions made before this column
-- (a restore of one of those still needs the agent named).
ALTER TABLE sessions ADD COLUMN agent TEXT NOT NULL DEFAULT '';
