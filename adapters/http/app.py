"""The HTTP API (DESIGN §7, issue 6): a Starlette app over the engine's services.

- JSON is camelCase, encoded and decoded with msgspec. Bodies are decoded strictly (unknown
  fields, off-enum values and wrong types are 400s naming the field) and checked further
  (no NUL characters, 64-bit integers, timezone-aware times, normalised to UTC) before
  anything reaches the engine. A body over ``MAX_BODY_BYTES`` is a 413; no more than
  ``MAX_BODY_BYTES + 1`` bytes of it are read.
- Every error is ``{"error": {"code", "message"}}``; unknown paths are JSON 404s and wrong
  methods JSON 405s (with ``Allow``). Domain errors map to statuses in ``_domain_error``.
- Every route but ``/healthz`` needs ``Authorization: Bearer <daemon token>``; a session's
  hook token opens only that session's activity route (401 for a missing or unknown token,
  403 for a hook token used anywhere else).
- Once ``DrainSwitch.begin()`` is called, every request but ``/healthz`` gets 503
  ``unavailable`` and open event streams end.

Kill answers 200 with ``freed: false`` when teardown was refused after the session was
already terminated (a workspace with uncommitted work is kept): the kill itself happened,
and ``detail`` says what was left behind. A refusal that left the session running is a 409.
"""

from __future__ import annotations

import builtins
import functools
import logging
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any, Final, Protocol, TypeVar, cast

import msgspec
import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.http.auth import TokenAuthority, bearer_token
from adapters.http.openapi import Access, Handler, Operation, Param, openapi_document
from adapters.http.sse import DEFAULT_HEARTBEAT, EventStream, ResyncOut, SSEResponse
from orchestrator.api import (
    API_PREFIX,
    MAX_BODY_BYTES,
    ActivityIn,
    ErrorBody,
    ErrorCode,
    ErrorDetail,
    EventOut,
    Health,
    KillIn,
    KillOut,
    ProjectIn,
    SendIn,
    SessionOut,
    SpawnIn,
)
from orchestrator.changefeed import ChangeFeed
from orchestrator.clock import SystemClock
from orchestrator.domain.errors import (
    ConflictError,
    DeliveryError,
    InvalidInputError,
    NotFoundError,
    OverloadedError,
    StoreError,
    TransientError,
)
from orchestrator.domain.model import (
    ActivitySignal,
    Model,
    PRFacts,
    PRObservation,
    ProjectId,
    SessionId,
    TerminationReason,
)
from orchestrator.domain.records import Notification, Project
from orchestrator.lifecycle.manager import SessionView, ShuttingDownError
from orchestrator.ports import Clock, Store
from orchestrator.sessions import SpawnRequest

log = logging.getLogger(__name__)

T = TypeVar("T")

HEALTH_PATH: Final = "/healthz"
DEFAULT_NOTIFICATION_LIMIT: Final = 100
MAX_NOTIFICATION_LIMIT: Final = 1000
_INT64: Final = 1 << 63
_JSON: Final = "application/json"


# --- what the app needs ------------------------------------------------------------------


class SessionCommands(Protocol):
    """The session manager's commands the API uses (``orchestrator.sessions``)."""

    async def spawn(self, request: SpawnRequest, /) -> SessionView: ...

    async def kill(self, session_id: SessionId, reason: TerminationReason, /) -> bool: ...

    async def restore(
        self, session_id: SessionId, /, *, agent: str | None = None
    ) -> SessionView: ...

    async def send(self, session_id: SessionId, message: str, /) -> object: ...


class LifecycleCommands(Protocol):
    """The lifecycle manager's reads and observation entry points the API uses."""

    async def exists(self, session_id: SessionId, /) -> bool: ...

    async def get(self, session_id: SessionId, /) -> SessionView: ...

    async def list(self, project_id: ProjectId | None = None, /) -> builtins.list[SessionView]: ...

    async def apply_activity_signal(
        self, session_id: SessionId, signal: ActivitySignal, /
    ) -> None: ...

    async def apply_pr_observation(
        self, session_id: SessionId, observation: PRObservation, /
    ) -> None: ...


class DrainSwitch:
    """Intake control: once ``begin()`` is called the API refuses new work (503) and ends
    its event streams. Create and flip it from the trio thread."""

    def __init__(self) -> None:
        self._event = trio.Event()

    @property
    def draining(self) -> bool:
        return self._event.is_set()

    def begin(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


@dataclass(frozen=True, slots=True)
class ApiServices:
    """Everything the routes use. The daemon builds one; tests build theirs."""

    store: Store
    lifecycle: LifecycleCommands
    sessions: SessionCommands
    changefeed: ChangeFeed
    auth: TokenAuthority
    drain: DrainSwitch = field(default_factory=DrainSwitch)
    clock: Clock = field(default_factory=SystemClock)
    version: str = ""
    heartbeat: float = DEFAULT_HEARTBEAT
    """Seconds between ``: ping`` comments on an idle event stream."""
    replay_batch: int = 512
    sse_buffer: int | None = None
    """Per-stream subscriber buffer; None uses the change feed's."""


class RestoreIn(Model, frozen=True, kw_only=True):
    """Optional body of ``POST /sessions/{id}/restore``: ``agent`` names the agent to
    relaunch when the session's harness is not recorded (custom agents)."""

    agent: str | None = None


# --- errors --------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer: status, code and message (and extra headers)."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.headers)


_encoder = msgspec.json.Encoder()


def json_response(
    value: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(_encoder.encode(value), status_code=status, headers=headers, media_type=_JSON)


def error_response(
    status: int, code: ErrorCode, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return json_response(body, status, headers)


def _domain_error(error: Exception) -> ApiError | None:
    """The answer for an error the engine raised on purpose, or None for a bug."""
    match error:
        case ApiError():
            return error
        case NotFoundError():
            return ApiError(404, ErrorCode.NOT_FOUND, str(error))
        case ShuttingDownError():
            return ApiError(503, ErrorCode.UNAVAILABLE, str(error), {"Retry-After": "1"})
        case OverloadedError():
            return ApiError(429, ErrorCode.OVERLOADED, str(error), {"Retry-After": "1"})
        case ConflictError() | StoreError() | DeliveryError():
            # StoreError: the store refused the write (a constraint) given what it holds.
            # DeliveryError: the agent cannot take the message, and retrying will not help.
            return ApiError(409, ErrorCode.CONFLICT, str(error))
        case InvalidInputError():
            return ApiError(400, ErrorCode.BAD_REQUEST, str(error))
        case TransientError():
            return ApiError(503, ErrorCode.UNAVAILABLE, str(error), {"Retry-After": "1"})
    return None


_UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": 'Bearer realm="orchestrator"'}


# --- bodies and parameters ------------------------------------------------------------------


DISCARD_LIMIT = 16 * MAX_BODY_BYTES
"""How much of an oversized body is read and thrown away before answering 413. Closing a
connection with unread request bytes makes TCP reset it, and the client then loses the 413;
past this much, that is the client's problem."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing (413) anything over ``limit``. Nothing past ``limit`` is
    kept; up to ``DISCARD_LIMIT`` bytes are drained so the client can read the answer."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, ErrorCode.BAD_REQUEST, "bad Content-Length") from None
        if size > DISCARD_LIMIT:
            raise _too_large(limit)
    body = bytearray()
    oversized = 0
    async with aclosing(request.stream()) as chunks:
        async for chunk in chunks:
            if oversized:
                oversized += len(chunk)
                if oversized > DISCARD_LIMIT:
                    break
                continue
            body += chunk
            if len(body) > limit:
                oversized = len(body)
                body.clear()
    if oversized:
        raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, ErrorCode.TOO_LARGE, f"the body is larger than {limit} bytes")


def decode_body(body: bytes, type_: type[T]) -> T:
    """Decode ``body`` strictly as ``type_`` and check what msgspec cannot (``checked``)."""
    try:
        value = msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as error:
        raise ApiError(400, ErrorCode.BAD_REQUEST, f"invalid body: {error}") from None
    except msgspec.DecodeError as error:
        raise ApiError(400, ErrorCode.BAD_REQUEST, f"malformed JSON body: {error}") from None
    return checked(value)


def checked(value: T, where: str = "$") -> T:
    """``value`` with every datetime normalised to UTC, after checking that strings hold
    no NUL, integers fit in 64 bits and datetimes carry a timezone (400 naming the field)."""
    return cast("T", _check(value, where))


@functools.cache
def _field_names(struct: type[msgspec.Struct]) -> tuple[tuple[str, str], ...]:
    """(attribute, wire) names; cached, as ``structs.fields`` re-resolves annotations."""
    return tuple((f.name, f.encode_name) for f in msgspec.structs.fields(struct))


def _check(value: object, where: str) -> object:
    match value:
        case str():
            if "\x00" in value:
                raise ApiError(
                    400, ErrorCode.BAD_REQUEST, f"invalid body: NUL character - at `{where}`"
                )
            return value
        case bool():
            return value
        case int():
            if not -_INT64 <= value < _INT64:
                raise ApiError(
                    400, ErrorCode.BAD_REQUEST, f"invalid body: integer out of range - at `{where}`"
                )
            return value
        case datetime():
            if value.tzinfo is None or value.utcoffset() is None:
                raise ApiError(
                    400,
                    ErrorCode.BAD_REQUEST,
                    f"invalid body: a timestamp needs a timezone (e.g. `Z`) - at `{where}`",
                )
            try:
                return value.astimezone(UTC)
            except OverflowError:
                raise ApiError(
                    400,
                    ErrorCode.BAD_REQUEST,
                    f"invalid body: timestamp out of range - at `{where}`",
                ) from None
        case msgspec.Struct():
            changes: dict[str, object] = {}
            for name, encode_name in _field_names(type(value)):
                old = getattr(value, name)
                new = _check(old, f"{where}.{encode_name}")
                if new is not old:
                    changes[name] = new
            return msgspec.structs.replace(value, **changes) if changes else value
        case tuple() | list():
            items = [_check(item, f"{where}[{i}]") for i, item in enumerate(value)]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return type(value)(items)
    return value


def _query_int(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(
            400,
            ErrorCode.BAD_REQUEST,
            f"query parameter {name!r} must be an integer from {low} to {high}",
        )
    return value


def session_out(view: SessionView) -> SessionOut:
    record = view.record
    return SessionOut(
        id=record.id,
        project_id=record.project_id,
        num=record.num,
        issue_id=record.issue_id,
        kind=record.kind,
        status=view.status,
        lifecycle=record.lifecycle,
        metadata=record.metadata,
        pr=view.pr,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


# --- the routes -----------------------------------------------------------------------------


class _Api:
    def __init__(self, services: ApiServices) -> None:
        self.s = services
        self.openapi_bytes = b""

    # -- access

    async def authorize(self, request: Request, access: Access) -> None:
        if access is Access.PUBLIC:
            return
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise ApiError(
                401, ErrorCode.UNAUTHORIZED, "missing bearer token", _UNAUTHORIZED_HEADERS
            )
        auth = self.s.auth
        if auth.is_daemon(token):
            return
        if access is Access.SESSION_HOOK and auth.is_session(token, request.path_params["id"]):
            return
        # Not accepted here. A hook token of a known session is forbidden outside its own
        # activity route; anything else is simply not a token of ours.
        sessions = await self.s.store.list_sessions()
        if auth.session_of(token, (s.id for s in sessions)) is not None:
            raise ApiError(
                403,
                ErrorCode.FORBIDDEN,
                "a session hook token only opens that session's activity route",
            )
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "wrong bearer token", _UNAUTHORIZED_HEADERS)

    async def _session_exists(self, session_id: SessionId) -> None:
        if not await self.s.lifecycle.exists(session_id):
            raise ApiError(404, ErrorCode.NOT_FOUND, f"session {session_id!r} not found")

    async def _project_filter(self, request: Request) -> ProjectId | None:
        project_id = request.query_params.get("project")
        if not project_id:
            return None
        if await self.s.store.get_project(project_id) is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"project {project_id!r} not found")
        return project_id

    async def _body(self, request: Request, type_: type[T], *, default: T | None = None) -> T:
        raw = await read_body(request)
        if default is not None and not raw.strip():
            return default
        return decode_body(raw, type_)

    # -- health and docs

    async def health(self, request: Request) -> Response:
        status = "draining" if self.s.drain.draining else "ok"
        return json_response(Health(status=status, version=self.s.version))

    async def openapi(self, request: Request) -> Response:
        return Response(self.openapi_bytes, media_type=_JSON)

    # -- projects

    async def list_projects(self, request: Request) -> Response:
        return json_response(await self.s.store.list_projects())

    async def put_project(self, request: Request) -> Response:
        body = await self._body(request, ProjectIn)
        if not PurePath(body.path).is_absolute():
            raise ApiError(
                400, ErrorCode.BAD_REQUEST, "invalid body: the path must be absolute - at `$.path`"
            )
        existed = await self.s.store.get_project(body.id) is not None
        project = await self.s.store.upsert_project(
            Project(
                id=body.id,
                path=body.path,
                repo_origin_url=body.repo_origin_url,
                display_name=body.display_name,
                registered_at=self.s.clock.now(),
            )
        )
        return json_response(project, 200 if existed else 201)

    # -- sessions

    async def list_sessions(self, request: Request) -> Response:
        project_id = await self._project_filter(request)
        views = await self.s.lifecycle.list(project_id)
        return json_response([session_out(v) for v in views])

    async def spawn(self, request: Request) -> Response:
        body = await self._body(request, SpawnIn)
        view = await self.s.sessions.spawn(
            SpawnRequest(
                project_id=body.project_id,
                agent=body.agent,
                issue_id=body.issue_id,
                kind=body.kind,
                branch=body.branch,
                prompt=body.prompt,
                agent_rules=body.agent_rules,
            )
        )
        location = f"{API_PREFIX}/sessions/{view.record.id}"
        return json_response(session_out(view), 201, {"Location": location})

    async def get_session(self, request: Request) -> Response:
        view = await self.s.lifecycle.get(request.path_params["id"])
        return json_response(session_out(view))

    async def kill(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        body = await self._body(request, KillIn, default=KillIn())
        await self._session_exists(session_id)
        try:
            freed = await self.s.sessions.kill(session_id, body.reason)
        except ConflictError as error:
            view = await self.s.lifecycle.get(session_id)
            if not view.record.lifecycle.state.is_terminal:
                raise  # refused before the session ended: a plain conflict
            return json_response(KillOut(session=session_out(view), freed=False, detail=str(error)))
        view = await self.s.lifecycle.get(session_id)
        detail = "" if freed else "nothing to free: the session had no runtime or workspace"
        return json_response(KillOut(session=session_out(view), freed=freed, detail=detail))

    async def restore(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        body = await self._body(request, RestoreIn, default=RestoreIn())
        await self._session_exists(session_id)
        view = await self.s.sessions.restore(session_id, agent=body.agent or None)
        return json_response(session_out(view))

    async def send(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        body = await self._body(request, SendIn)
        await self._session_exists(session_id)
        await self.s.sessions.send(session_id, body.message)
        return Response(status_code=204)

    async def activity(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        body = await self._body(request, ActivityIn)
        await self._session_exists(session_id)  # the engine ignores unknown ids (D-11)
        signal = ActivitySignal(
            state=body.state,
            timestamp=body.timestamp or self.s.clock.now(),
            source=body.source,
        )
        await self.s.lifecycle.apply_activity_signal(session_id, signal)
        return Response(status_code=204)

    async def post_pr(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        observation = await self._body(request, PRObservation)
        await self._session_exists(session_id)
        await self.s.lifecycle.apply_pr_observation(session_id, observation)
        return json_response(session_out(await self.s.lifecycle.get(session_id)))

    async def list_prs(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        await self._session_exists(session_id)
        return json_response(await self.s.store.list_pr_facts(session_id))

    # -- notifications and events

    async def notifications(self, request: Request) -> Response:
        project_id = await self._project_filter(request)
        limit = _query_int(
            request,
            "limit",
            default=DEFAULT_NOTIFICATION_LIMIT,
            low=1,
            high=MAX_NOTIFICATION_LIMIT,
        )
        rows = await self.s.store.list_notifications(project_id=project_id, limit=limit)
        return json_response(rows)

    async def events(self, request: Request) -> Response:
        project_id = await self._project_filter(request)
        since = _query_int(request, "since", default=-1, low=0, high=_INT64 - 1)
        last_event_id = request.headers.get("last-event-id")
        if last_event_id is not None and last_event_id.strip():
            try:
                since = int(last_event_id)
            except ValueError:
                since = -1
            if not 0 <= since < _INT64:
                raise ApiError(
                    400, ErrorCode.BAD_REQUEST, "Last-Event-ID must be a non-negative integer"
                )
        stream = EventStream(
            feed=self.s.changefeed,
            log=self.s.store,
            project_id=project_id,
            since=since if since >= 0 else None,
            heartbeat=self.s.heartbeat,
            batch=self.s.replay_batch,
            subscriber_buffer=self.s.sse_buffer,
        )
        return SSEResponse(stream, self.s.drain)

    # -- the table

    def operations(self) -> list[Operation]:
        p = API_PREFIX
        project_q = Param("project", {"type": "string"}, "Only this project's entries")
        return [
            Operation("GET", HEALTH_PATH, "health", "Liveness (no token needed)", self.health,
                      access=Access.PUBLIC, response=Health),
            Operation("GET", f"{p}/openapi.json", "openapi", "This document", self.openapi,
                      response=dict[str, Any]),
            Operation("GET", f"{p}/projects", "listProjects", "Registered projects",
                      self.list_projects, response=list[Project]),
            Operation("POST", f"{p}/projects", "putProject",
                      "Register a project (201), or update it (200)", self.put_project,
                      status=201, body=ProjectIn, response=Project),
            Operation("GET", f"{p}/sessions", "listSessions", "Sessions by (project, num)",
                      self.list_sessions, response=list[SessionOut], query=(project_q,),
                      errors=(400, 404)),
            Operation("POST", f"{p}/sessions", "spawn", "Spawn a session", self.spawn,
                      status=201, body=SpawnIn, response=SessionOut, errors=(404, 409, 429)),
            Operation("GET", f"{p}/sessions/{{id}}", "getSession",
                      "A session: record, derived status and PR facts", self.get_session,
                      response=SessionOut, errors=(404,)),
            Operation("POST", f"{p}/sessions/{{id}}/kill", "kill",
                      "Terminate a session and free its runtime and workspace; `freed` is "
                      "false (200) when the workspace was kept, see `detail`", self.kill,
                      body=KillIn, body_required=False, response=KillOut,
                      errors=(404, 409, 429)),
            Operation("POST", f"{p}/sessions/{{id}}/restore", "restore",
                      "Bring a terminated session back", self.restore, body=RestoreIn,
                      body_required=False, response=SessionOut, errors=(404, 409, 429)),
            Operation("POST", f"{p}/sessions/{{id}}/send", "send",
                      "Type a message into the session's agent", self.send, status=204,
                      body=SendIn, errors=(404, 409)),
            Operation("POST", f"{p}/sessions/{{id}}/activity", "activity",
                      "An agent hook's activity report (session hook token accepted)",
                      self.activity, access=Access.SESSION_HOOK, status=204, body=ActivityIn,
                      errors=(404, 429)),
            Operation("POST", f"{p}/sessions/{{id}}/pr", "postPR",
                      "A PR observation (facts, checks, comments)", self.post_pr,
                      body=PRObservation, response=SessionOut, errors=(404, 409, 429)),
            Operation("GET", f"{p}/sessions/{{id}}/pr", "listPRs",
                      "Facts of every PR of the session, most recently updated first",
                      self.list_prs, response=list[PRFacts], errors=(404,)),
            Operation("GET", f"{p}/notifications", "notifications",
                      "What humans were told, newest first", self.notifications,
                      response=list[Notification],
                      query=(project_q, Param("limit", {"type": "integer", "minimum": 1,
                             "maximum": MAX_NOTIFICATION_LIMIT, "default": 100}, "At most this many")),
                      errors=(400, 404)),
            Operation("GET", f"{p}/events", "events",
                      "The change log as Server-Sent Events: `id:` is the seq, `event:` the "
                      "change type, `data:` an EventOut. Replays after `Last-Event-ID` (or "
                      "`since`), then streams live; a subscriber that falls behind gets a "
                      "final `resync` event (data: ResyncOut) and the stream closes",
                      self.events, response=(EventOut, ResyncOut), stream=True,
                      query=(project_q,
                             Param("since", {"type": "integer", "minimum": 0},
                                   "Replay changes after this seq"),
                             Param("Last-Event-ID", {"type": "integer", "minimum": 0},
                                   "Replay changes after this seq (wins over `since`)",
                                   where="header")),
                      errors=(400, 404)),
        ]  # fmt: skip


# --- assembly ---------------------------------------------------------------------------------


def _endpoint(api: _Api, ops: list[Operation]) -> Handler:
    by_method = {op.method: op for op in ops}

    async def endpoint(request: Request) -> Response:
        method = request.method
        op = by_method.get("GET" if method == "HEAD" else method)
        if op is None or (method == "HEAD" and op.stream):
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(by_method))})
        try:
            await api.authorize(request, op.access)
            return await op.handler(request)
        except Exception as error:
            known = _domain_error(error)
            if known is None:
                log.exception("%s %s failed", method, request.url.path)
                return error_response(500, ErrorCode.INTERNAL, "internal error")
            return known.response()

    return endpoint


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = exc.headers if isinstance(exc, HTTPException) else None
    if status == 404:
        return error_response(404, ErrorCode.NOT_FOUND, f"no route {request.url.path}", headers)
    if status == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
        return error_response(405, ErrorCode.BAD_REQUEST, message, headers)
    return error_response(status, ErrorCode.BAD_REQUEST, str(getattr(exc, "detail", "")), headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return error_response(500, ErrorCode.INTERNAL, "internal error")


class _DrainGate:
    """503 for every request but ``/healthz`` once draining (before routing and auth)."""

    def __init__(self, app: ASGIApp, drain: DrainSwitch) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.drain.draining and scope["path"] != HEALTH_PATH:
            response = error_response(
                503, ErrorCode.UNAVAILABLE, "the daemon is shutting down", {"Retry-After": "1"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(services: ApiServices) -> Starlette:
    """The API as an ASGI app. Serve it with hypercorn's trio worker (the change feed and
    the engine must run in the same trio run)."""
    api = _Api(services)
    ops = api.operations()
    api.openapi_bytes = _encoder.encode(
        openapi_document(ops, title="orchestrator", version=services.version, prefix=API_PREFIX)
    )
    grouped: dict[str, list[Operation]] = {}
    for op in ops:
        grouped.setdefault(op.path, []).append(op)
    routes = [
        Route(path, _endpoint(api, group), methods=[op.method for op in group])
        for path, group in grouped.items()
    ]
    handlers: dict[Any, Callable[[Request, Exception], Any]] = {
        HTTPException: _http_exception,
        Exception: _internal_error,
    }
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_DrainGate, drain=services.drain)],
        exception_handlers=handlers,
    )
    app.router.redirect_slashes = False
    return app


def operations(services: ApiServices) -> list[Operation]:
    """The route table (for documentation and tests)."""
    return _Api(services).operations()


__all__ = [
    "ApiError",
    "ApiServices",
    "DrainSwitch",
    "LifecycleCommands",
    "RestoreIn",
    "SessionCommands",
    "create_app",
    "operations",
]
