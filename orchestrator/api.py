"""The HTTP API's wire types, shared by the server (adapters/http) and the CLI client.

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

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
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
    INTERNAL = "internal"  # 500


class ErrorDetail(Model, frozen=True, kw_only=True):
    code: ErrorCode
    message: str


class ErrorBody(Model, frozen=True, kw_only=True):
    error: ErrorDetail


class Health(Model, frozen=True, kw_only=True):
    status: str = "ok"
    version: str = ""


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


class KillOut(Model, frozen=True, kw_only=True):
    """``freed`` is false when teardown was refused (e.g. uncommitted work): see ``detail``."""

    session: SessionOut
    freed: bool
    detail: str = ""


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


class RunFile(Model, frozen=True, kw_only=True):
    """Written to ``<data dir>/daemon.json`` (mode 0600) while the daemon runs."""

    pid: int
    address: str
    token: str
    started_at: datetime
    version: str = ""
