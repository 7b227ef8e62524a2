"""The HTTP API's wire types, shared by the server (adapters/http) and the CLI client.

Every request body, response body, SSE frame and header name the two sides exchange is
defined here once, plus the run-file and the CLI's own JSON output (``status --json``); the
CLI imports them and never copies one.

JSON is camelCase. Request bodies are decoded strictly (unknown fields and off-enum values
are rejected) before anything reaches the engine. Every error is
``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final

import msgspec

from orchestrator.domain.model import (
    ActivitySource,
    ActivityState,
    Lifecycle,
    Model,
    PRFacts,
    SessionKind,
    SessionMetadata,
    SessionStatus,
    TerminationReason,
)

API_PREFIX: Final = "/api/v1"
DEFAULT_ADDRESS: Final = "127.0.0.1:8731"
MAX_BODY_BYTES: Final = 1 << 20  # 1 MiB: a PR observation with many comments fits easily

SLUG_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,31}$"
PROJECT_ID_RULE: Final = (
    "project ids are lowercase letters, digits, - and _ (at most 32) "
    "and start with a letter or digit"
)
"""What a project id (a ``Slug``) must look like, in words: what clients are told instead
of the pattern."""
Slug = Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"  # 400: malformed JSON, failed validation
    UNAUTHORIZED = "unauthorized"  # 401: missing or wrong token
    FORBIDDEN = "forbidden"  # 403: a session token used outside its session
    NOT_FOUND = "not_found"  # 404
    CONFLICT = "conflict"  # 409: e.g. restoring a live session
    TOO_LARGE = "too_large"  # 413: body over MAX_BODY_BYTES
    OVERLOADED = "overloaded"  # 429: a session's mailbox is full
    UNAVAILABLE = "unavailable"  # 503: draining
    STORAGE_UNAVAILABLE = "storage_unavailable"  # 503: the database cannot be read or written
    INTERNAL = "internal"  # 500


class ErrorDetail(Model, frozen=True, kw_only=True):
    code: ErrorCode
    message: str


class ErrorBody(Model, frozen=True, kw_only=True):
    error: ErrorDetail


# omit_defaults: a healthy answer stays ``{"status": "ok", "version": ...}``, as it always
# was, so a CLI that does not know ``reason`` and ``since`` still reads it.
class Health(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``GET /healthz``. ``status``: ``ok``, ``draining`` (shutting down) or ``degraded``
    (the store hit a storage fault: ``reason`` says which, ``since`` when it began; writes
    fail with ``storage_unavailable`` until one succeeds again)."""

    status: str
    version: str = ""
    reason: str = ""
    since: datetime | None = None


# --- requests ----------------------------------------------------------------------


class ProjectIn(Model, frozen=True, kw_only=True):
    """Register (or update) a project: a git repository sessions are spawned from."""

    id: Slug
    path: NonEmpty
    repo_origin_url: str = ""
    display_name: str = ""


class SpawnIn(Model, frozen=True, kw_only=True):
    project_id: Slug
    agent: NonEmpty
    issue_id: str = ""
    kind: SessionKind = SessionKind.WORKER
    branch: str = ""
    prompt: str = ""
    agent_rules: str = ""


class KillIn(Model, frozen=True, kw_only=True):
    reason: TerminationReason = TerminationReason.MANUALLY_KILLED


# omit_defaults: without an agent the CLI sends ``{}``, as it always has.
class RestoreIn(Model, frozen=True, kw_only=True, omit_defaults=True):
    """Optional body of ``POST /sessions/{id}/restore``: ``agent`` names the agent to
    relaunch when the session's harness is not recorded (custom agents)."""

    agent: str | None = None


class SendIn(Model, frozen=True, kw_only=True):
    message: NonEmpty


class ActivityIn(Model, frozen=True, kw_only=True):
    """What an agent hook posts. ``timestamp`` defaults to the time of receipt."""

    state: ActivityState
    timestamp: datetime | None = None
    source: ActivitySource = ActivitySource.HOOK


# A PR observation is posted as ``orchestrator.domain.model.PRObservation`` itself.


# --- responses ---------------------------------------------------------------------


class SessionOut(Model, frozen=True, kw_only=True):
    """A session as clients see it: the record plus its derived status and PR facts."""

    id: str
    project_id: str
    num: int
    issue_id: str
    kind: SessionKind
    status: SessionStatus
    lifecycle: Lifecycle
    metadata: SessionMetadata
    pr: PRFacts
    created_at: datetime
    updated_at: datetime
    pr_changed_at: datetime | None = None
    """When the PR's state, CI, review or mergeability last changed; given in listings
    (``GET /sessions``), null elsewhere and without a PR."""


class KillOut(Model, frozen=True, kw_only=True):
    """``freed`` is false when teardown was refused (e.g. uncommitted work): see ``detail``."""

    session: SessionOut
    freed: bool
    detail: str = ""


class NotificationsMarked(Model, frozen=True, kw_only=True):
    """``POST /notifications/read``: how many unread notifications were marked read."""

    marked: int


class EventOut(Model, frozen=True, kw_only=True):
    """One change-log row as streamed over SSE (``id:`` is ``seq``)."""

    seq: int
    project_id: str
    session_id: str = ""
    type: str
    payload: msgspec.Raw
    created_at: datetime


RESYNC_EVENT: Final = "resync"
"""The last SSE event a subscriber that fell too far behind receives before the stream
closes: reconnect with ``Last-Event-ID`` to replay what was missed."""


class ResyncOut(Model, frozen=True, kw_only=True):
    """The data of the final ``resync`` frame: the last seq this stream sent (0 if none).
    Reconnect with it as ``Last-Event-ID`` to replay what was missed."""

    last_seq: int


NEXT_CURSOR_HEADER: Final = "X-Next-Cursor"
"""A response header of ``GET /api/v1/sessions`` when more sessions follow: pass it back
as ``?cursor=`` for the next page. The body stays a JSON list, as it always was."""
DEFAULT_SESSION_PAGE: Final = 500
MAX_SESSION_PAGE: Final = 1000

HEAD_SEQ_HEADER: Final = "X-Orchestrator-Head-Seq"
"""A response header of ``GET /api/v1/events``: the newest change-log seq the daemon had
published when the stream opened (0 for an empty log). Later seqs are live events: a client
that only wants what is already there (``orchestrator events`` without ``--follow``) stops
once it has seen this seq."""


# --- local files and CLI output -----------------------------------------------------


class RunFile(Model, frozen=True, kw_only=True):
    """Written to ``<data dir>/daemon.json`` (mode 0600) while the daemon runs."""

    pid: int
    address: str
    token: str
    started_at: datetime
    version: str = ""


class DaemonStatus(Model, frozen=True, kw_only=True):
    """What ``orchestrator status --json`` prints: whether a daemon answers for the data
    dir, and the run-file's and ``/healthz``'s facts about it. ``stale_run_file``: a
    run-file is there (its ``pid`` and ``address`` are given) but no daemon answers for it:
    the daemon died without removing it, or hangs."""

    running: bool
    data_dir: str
    pid: int | None = None
    address: str = ""
    version: str = ""
    started_at: datetime | None = None
    health: str = ""
    stale_run_file: bool = False
