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
from orchestrator.domain.zones import Zone

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
AgentSessionId = Annotated[
    str, msgspec.Meta(pattern=r"^([A-Za-z0-9_][A-Za-z0-9._:-]{0,255})?$", max_length=256)
]
"""An agent's own conversation id (a uuid, ``ses_…``): no whitespace, never an option."""


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"  # 400: malformed JSON, failed validation
    UNAUTHORIZED = "unauthorized"  # 401: missing or wrong token
    FORBIDDEN = "forbidden"  # 403: a session token used outside its session
    NOT_FOUND = "not_found"  # 404
    CONFLICT = "conflict"  # 409: e.g. restoring a live session
    TOO_LARGE = "too_large"  # 413: body over MAX_BODY_BYTES
    OVERLOADED = "overloaded"  # 429: a session's mailbox is full
    NOT_IMPLEMENTED = "not_implemented"  # 501: a capability this daemon was built without
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


# omit_defaults: without an agent the CLI sends ``{}``, as it always has.
class RestoreIn(Model, frozen=True, kw_only=True, omit_defaults=True):
    """Optional body of ``POST /sessions/{id}/restore``: ``agent`` names the agent to
    relaunch when the session's harness is not recorded (custom agents); ``fresh``
    relaunches the agent with its original prompt in a new conversation instead of
    resuming the recorded one (needed when none is recorded)."""

    agent: str | None = None
    fresh: bool = False


class SendIn(Model, frozen=True, kw_only=True):
    message: NonEmpty


class ActivityIn(Model, frozen=True, kw_only=True):
    """What an agent hook posts. ``timestamp`` defaults to the time of receipt;
    ``agentSessionId`` is the agent's own conversation id (e.g. the ``session_id`` of a
    Claude Code hook's input), which a restore resumes."""

    state: ActivityState
    timestamp: datetime | None = None
    source: ActivitySource = ActivitySource.HOOK
    agent_session_id: AgentSessionId = ""


# omit_defaults: a bare `orchestrator cleanup` sends ``{}``.
class CleanupIn(Model, frozen=True, kw_only=True, omit_defaults=True):
    """Optional body of ``POST /cleanup``: only say what would go (``dryRun``), and only
    for one terminated session (``sessionId``)."""

    dry_run: bool = False
    session_id: str | None = None


# A PR observation is posted as ``orchestrator.domain.model.PRObservation`` itself; its
# ``url`` must be an http(s) URL of at most MAX_PR_URL_LENGTH characters and its ``number``
# not negative (0: not known).

MAX_PR_URL_LENGTH: Final = 2048
PRNumber = Annotated[int, msgspec.Meta(gt=0)]


class PRClaimIn(Model, frozen=True, kw_only=True, omit_defaults=True):
    """``POST /sessions/{id}/pr/claim``: the PR to move to the session, by its ``url`` or by
    its ``number`` in the session's project repository (exactly one of the two)."""

    url: str | None = None
    number: PRNumber | None = None


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


class ReclaimedOut(Model, frozen=True, kw_only=True):
    """What cleanup (or ``DELETE /sessions/{id}``) freed of one terminated session: the
    pane and the worktree removed ('' for none); ``kept``, the worktree it left because
    removing it would lose work, and ``reason``, why (or why freeing it failed)."""

    session_id: str
    pane: str = ""
    workspace: str = ""
    kept: str = ""
    reason: str = ""


class PruneOut(Model, frozen=True, kw_only=True):
    """What ``git worktree prune`` forgot in a project's repository, or why it could not
    run there."""

    project_id: str
    entries: list[str]
    error: str = ""


class CleanupOut(Model, frozen=True, kw_only=True):
    """A cleanup run (or with ``dryRun``, what one would do)."""

    dry_run: bool
    sessions: list[ReclaimedOut]
    pruned: list[PruneOut]


class PRClaimOut(Model, frozen=True, kw_only=True):
    """The session after the claim; ``previous_session`` is who owned the PR ("" if none)."""

    session: SessionOut
    url: str
    previous_session: str = ""


class PRMergeOut(Model, frozen=True, kw_only=True):
    """A merge GitHub made: the PR, the head commit it merged, and the merge commit."""

    url: str
    head_sha: str
    merge_sha: str = ""
    message: str = ""


class WebhookOut(Model, frozen=True, kw_only=True):
    """The answer to a GitHub webhook delivery: ``kicked`` PRs or commits made due now, or
    ``ignored`` (an event that changes no PR, a replayed delivery id) with the reason."""

    kicked: int = 0
    ignored: str = ""


GITHUB_SIGNATURE_HEADER: Final = "X-Hub-Signature-256"
GITHUB_EVENT_HEADER: Final = "X-GitHub-Event"
GITHUB_DELIVERY_HEADER: Final = "X-GitHub-Delivery"


class EventOut(Model, frozen=True, kw_only=True):
    """One change-log row as streamed over SSE (``id:`` is ``seq``)."""

    seq: int
    project_id: str
    session_id: str = ""
    type: str
    payload: msgspec.Raw
    created_at: datetime


class HookKeyRotated(Model, frozen=True, kw_only=True):
    """The answer of ``POST /api/v1/tokens/rotate``: the hook key was replaced, so every hook
    token issued before stopped working. The agents of ``sessions_to_restart`` (every live
    session) still hold one: kill and restore them to hand them new tokens."""

    sessions_to_restart: list[str]


RESYNC_EVENT: Final = "resync"
"""An SSE event saying the stream is not continuous with what the client asked for: either
the last event of a subscriber that fell too far behind (the stream then closes: reconnect
with ``Last-Event-ID`` to replay what was missed), or the first event of a replay whose
``Last-Event-ID`` the change log can no longer continue from (see ``ResyncReason``)."""


class ResyncReason(StrEnum):
    LAGGED = "lagged"
    """The subscriber fell too far behind; the stream closes after this event."""
    EXPIRED = "expired"
    """The events after ``Last-Event-ID`` up to ``oldestSeq`` were trimmed from the log; the
    stream goes on from the oldest event it still holds."""
    AHEAD = "ahead"
    """``Last-Event-ID`` is beyond the log's head (the database was reset or replaced); the
    stream goes on from the start of the log."""


# omit_defaults: the ``lagged`` frame stays ``{"lastSeq": n}``, as it always was.
class ResyncOut(Model, frozen=True, kw_only=True, omit_defaults=True):
    """The data of a ``resync`` frame. ``last_seq``: the stream goes on after this seq (for
    ``lagged``: the last seq it sent, 0 if none; reconnect with it as ``Last-Event-ID``).
    ``oldest_seq`` (0 when the log holds no event) and ``head_seq`` name the log's span when
    the frame was sent; both are 0 in a ``lagged`` frame."""

    last_seq: int
    reason: ResyncReason = ResyncReason.LAGGED
    oldest_seq: int = 0
    head_seq: int = 0


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


# --- the dashboard ------------------------------------------------------------------

DASHBOARD_LOGIN_PATH: Final = "/dashboard/login"
"""Under ``API_PREFIX``, ``POST`` (daemon token): a one-time browser login link, as
``LoginLinkOut``."""

ZONES_PATH: Final = "/zones"
"""Under ``API_PREFIX``, ``GET`` (``?project=``): every session's attention zone, as
``list[SessionZoneOut]``."""


class LoginLinkOut(Model, frozen=True, kw_only=True):
    """A one-time login link for the dashboard: open ``path`` on the daemon's address
    before ``expires_at``; it works once and becomes a session cookie."""

    path: str
    expires_at: datetime


class SessionZoneOut(Model, frozen=True, kw_only=True):
    """Where the board shows a session (``orchestrator.domain.zones``), with what a
    listing prints beside it."""

    id: str
    project_id: str
    zone: Zone
    status: SessionStatus
    title: str
    branch: str = ""
    pr_number: int = 0
    pr_url: str = ""
    updated_at: datetime
