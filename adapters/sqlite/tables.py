"""The SQLite schema as SQLAlchemy Core tables, and the timestamp codec.

The numbered files in ``migrations/`` are the source of truth for the schema (CHECKs,
triggers, STRICT); these ``Table`` objects mirror its columns so the store can build
statements with SQLAlchemy Core. ``tests/integration/test_sqlite_migrate.py`` checks the two agree.

Timestamps are stored as fixed-width UTC text, ``YYYY-MM-DD HH:MM:SS.ffffff+00:00``, so
text order is time order and ``ORDER BY`` on a timestamp column sorts by time
(docs/design.md, "Storage"). ``encode_ts``/``decode_ts`` are the only way in and out;
naive datetimes are refused.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from orchestrator.domain.timestamps import utc_text

# --- timestamps ------------------------------------------------------------------------

TS_WIDTH = len("2026-01-01 00:00:00.000000+00:00")

encode_ts = utc_text


def decode_ts(text: str) -> datetime:
    """The aware UTC datetime ``encode_ts`` wrote. Raises ``ValueError`` on other text."""
    if len(text) != TS_WIDTH or not text.endswith("+00:00"):
        raise ValueError(f"not a stored timestamp: {text!r}")
    return datetime.fromisoformat(text)


def encode_opt_ts(value: datetime | None) -> str | None:
    return None if value is None else encode_ts(value)


def decode_opt_ts(text: str | None) -> datetime | None:
    return None if text is None else decode_ts(text)


# --- tables (mirror of the migrated schema) --------------------------------------------

metadata = sa.MetaData()

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("repo_origin_url", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("registered_at", sa.Text, nullable=False),
    sa.Column("archived_at", sa.Text),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("project_id", sa.Text, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("num", sa.Integer, nullable=False),
    sa.Column("issue_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("harness", sa.Text, nullable=False),
    sa.Column("session_state", sa.Text, nullable=False),
    sa.Column("termination_reason", sa.Text, nullable=False),
    sa.Column("is_alive", sa.Integer, nullable=False),
    sa.Column("activity_state", sa.Text, nullable=False),
    sa.Column("activity_last_at", sa.Text, nullable=False),
    sa.Column("activity_source", sa.Text, nullable=False),
    sa.Column("detecting_attempts", sa.Integer),
    sa.Column("detecting_started_at", sa.Text),
    sa.Column("detecting_evidence_hash", sa.Text),
    sa.Column("branch", sa.Text, nullable=False),
    sa.Column("workspace_path", sa.Text, nullable=False),
    sa.Column("runtime_handle_id", sa.Text, nullable=False),
    sa.Column("runtime_name", sa.Text, nullable=False),
    sa.Column("agent_session_id", sa.Text, nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("agent", sa.Text, nullable=False),  # migration 0002
)

pr = sa.Table(
    "pr",
    metadata,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("pr_state", sa.Text, nullable=False),
    sa.Column("review_decision", sa.Text, nullable=False),
    sa.Column("ci_state", sa.Text, nullable=False),
    sa.Column("mergeability", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("write_seq", sa.Integer, nullable=False),
    sa.Column("head_sha", sa.Text, nullable=False),  # migration 0005
)

pr_checks = sa.Table(
    "pr_checks",
    metadata,
    sa.Column("pr_url", sa.Text, sa.ForeignKey("pr.url"), primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("commit_hash", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("log_tail", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
)

pr_comment = sa.Table(
    "pr_comment",
    metadata,
    sa.Column("pr_url", sa.Text, sa.ForeignKey("pr.url"), primary_key=True),
    sa.Column("comment_id", sa.Text, primary_key=True),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("resolved", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
)

reaction_trackers = sa.Table(
    "reaction_trackers",
    metadata,
    sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("reaction", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_at", sa.Text),
    sa.Column("escalated", sa.Integer, nullable=False),
    sa.Column("seen", sa.Text, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dedup_key", sa.Text, nullable=False, unique=True),
    sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("project_id", sa.Text, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("reaction", sa.Text),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("priority", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Text),
    sa.Column("delivered_at", sa.Text),
    sa.Column("failed_at", sa.Text),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("pr_url", sa.Text, nullable=False),  # migration 0005
    sa.Column("head_sha", sa.Text, nullable=False),  # migration 0005
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("project_id", sa.Text, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("priority", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("read", sa.Integer, nullable=False),
    sa.Column("resolved", sa.Integer, nullable=False),
    sa.Column("read_at", sa.Text),  # migration 0003
    sa.Column("resolved_at", sa.Text),  # migration 0003
)

change_log = sa.Table(
    "change_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Text, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("session_id", sa.Text),  # no reference: a removed session's history stays
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
)

# The last session number given out per project (migrations/0004_session_removal.sql).
session_numbers = sa.Table(
    "session_numbers",
    metadata,
    sa.Column("project_id", sa.Text, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("last_num", sa.Integer, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.Text, nullable=False, unique=True),
    sa.Column("received_at", sa.Text, nullable=False),
)

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("checksum", sa.Text, nullable=False),
    sa.Column("applied_at", sa.Text, nullable=False),
)
