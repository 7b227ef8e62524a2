"""The routes: one handler per operation, and the table (``Routes.operations``) that both
the Starlette app and the OpenAPI document are built from.

Handlers turn wire bodies (``orchestrator.api``) into engine calls and engine results back
into wire bodies; access, errors and draining are the app's job (``adapters.http.app``).

Kill answers 200 with ``freed: false`` when teardown was refused after the session was
already terminated (a workspace with uncommitted work is kept): the kill itself happened,
and ``detail`` says what was left behind. A refusal that left the session running is a 409.

A PR belongs to one session: posting an observation of a PR another live session owns is a
409 naming the owner, and ``pr/claim`` moves it. PR URLs must be http(s) URLs of at most
``MAX_PR_URL_LENGTH`` characters; a claimed PR number must be positive. The GitHub webhook
route takes no bearer token: its body's signature is the check (``adapters.http.webhooks``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import PurePath
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from adapters.http.bodies import INT64, query_bool, query_enums, query_int, request_body
from adapters.http.errors import (
    JSON,
    RETRY_SOON,
    ApiError,
    bad_request,
    json_response,
    not_found,
)
from adapters.http.openapi import Access, Operation, Param
from adapters.http.services import ApiServices, PRCommands
from adapters.http.sse import EventStream, SSEResponse
from adapters.http.webhooks import github_webhook
from orchestrator.api import (
    API_PREFIX,
    HEAD_SEQ_HEADER,
    MAX_PR_URL_LENGTH,
    ActivityIn,
    CleanupIn,
    CleanupOut,
    ErrorCode,
    EventOut,
    Health,
    HookKeyRotated,
    KillIn,
    KillOut,
    PRClaimIn,
    PRClaimOut,
    PRMergeOut,
    ProjectIn,
    PruneOut,
    ReclaimedOut,
    RestoreIn,
    ResyncOut,
    SendIn,
    SessionOut,
    SpawnIn,
    WebhookOut,
)
from orchestrator.cleanup import CleanupReport, Reclaimed
from orchestrator.domain.decide import activity_time
from orchestrator.domain.errors import ConflictError
from orchestrator.domain.model import (
    ActivitySignal,
    PRFacts,
    PRObservation,
    ProjectId,
    SessionId,
    SessionStatus,
)
from orchestrator.domain.records import Notification, Project
from orchestrator.lifecycle.manager import SessionView
from orchestrator.pr_actions import PRActions
from orchestrator.sessions import SpawnRequest

HEALTH_PATH: Final = "/healthz"
DEFAULT_NOTIFICATION_LIMIT: Final = 100
MAX_NOTIFICATION_LIMIT: Final = 1000


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


def reclaimed_out(done: Reclaimed) -> ReclaimedOut:
    return ReclaimedOut(**asdict(done))


def cleanup_out(report: CleanupReport) -> CleanupOut:
    return CleanupOut(
        dry_run=report.dry_run,
        sessions=[reclaimed_out(done) for done in report.sessions],
        pruned=[
            PruneOut(project_id=p.project_id, entries=list(p.entries), error=p.error)
            for p in report.pruned
        ],
    )


def check_pr_url(url: str, where: str) -> str:
    """``url`` if it is an http(s) URL with a host of at most ``MAX_PR_URL_LENGTH``
    characters; else a 400 naming the field."""
    if len(url) > MAX_PR_URL_LENGTH:
        raise bad_request(
            f"invalid body: a PR URL is at most {MAX_PR_URL_LENGTH} characters - at `{where}`"
        )
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request(f"invalid body: {url[:80]!r} is not an http(s) URL - at `{where}`")
    return url


def spawn_request(body: SpawnIn) -> SpawnRequest:
    """The engine's spawn input for a checked ``POST /sessions`` body."""
    return SpawnRequest(
        project_id=body.project_id,
        agent=body.agent,
        issue_id=body.issue_id,
        kind=body.kind,
        branch=body.branch,
        prompt=body.prompt,
        agent_rules=body.agent_rules,
    )


class Routes:
    """The handlers over one ``ApiServices``."""

    def __init__(self, services: ApiServices) -> None:
        self.s = services
        self.pr_actions: PRCommands = services.pr_actions or PRActions(
            services.store, services.lifecycle
        )
        self.openapi_bytes = b""
        """The encoded OpenAPI document, set once the table is built (``create_app``)."""

    async def _session_exists(self, session_id: SessionId) -> None:
        if not await self.s.lifecycle.exists(session_id):
            raise not_found(f"session {session_id!r} not found")

    async def _project_filter(self, request: Request) -> ProjectId | None:
        project_id = request.query_params.get("project")
        if not project_id:
            return None
        if await self.s.store.get_project(project_id) is None:
            raise not_found(f"project {project_id!r} not found")
        return project_id

    # -- health and docs

    async def health(self, request: Request) -> Response:
        status = "draining" if self.s.drain.draining else "ok"
        return json_response(Health(status=status, version=self.s.version))

    async def openapi(self, request: Request) -> Response:
        return Response(self.openapi_bytes, media_type=JSON)

    # -- projects

    async def list_projects(self, request: Request) -> Response:
        return json_response(await self.s.store.list_projects())

    async def put_project(self, request: Request) -> Response:
        body = await request_body(request, ProjectIn)
        if not PurePath(body.path).is_absolute():
            raise bad_request("invalid body: the path must be absolute - at `$.path`")
        await self.s.sessions.check_project_path(body.path)
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
        statuses = query_enums(request, "status", SessionStatus)
        # Everything by default: what clients of this route have always been given.
        include_terminated = query_bool(request, "includeTerminated", default=True)
        views = await self.s.lifecycle.list(project_id)
        return json_response(
            [
                session_out(view)
                for view in views
                if (not statuses or view.status in statuses)
                and (include_terminated or not view.record.lifecycle.state.is_terminal)
            ]
        )

    async def spawn(self, request: Request) -> Response:
        body = await request_body(request, SpawnIn)
        view = await self.s.sessions.spawn(spawn_request(body))
        location = f"{API_PREFIX}/sessions/{view.record.id}"
        return json_response(session_out(view), 201, {"Location": location})

    async def get_session(self, request: Request) -> Response:
        view = await self.s.lifecycle.get(request.path_params["id"])
        return json_response(session_out(view))

    async def kill(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        body = await request_body(request, KillIn, default=KillIn())
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
        body = await request_body(request, RestoreIn, default=RestoreIn())
        await self._session_exists(session_id)
        view = await self.s.sessions.restore(session_id, agent=body.agent or None, fresh=body.fresh)
        return json_response(session_out(view))

    async def remove(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        await self._session_exists(session_id)
        return json_response(reclaimed_out(await self.s.sessions.remove(session_id)))

    async def cleanup(self, request: Request) -> Response:
        body = await request_body(request, CleanupIn, default=CleanupIn())
        if body.session_id is not None:
            await self._session_exists(body.session_id)
        report = await self.s.sessions.cleanup(session_id=body.session_id, dry_run=body.dry_run)
        return json_response(cleanup_out(report))

    async def send(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        body = await request_body(request, SendIn)
        await self._session_exists(session_id)
        await self.s.sessions.send(session_id, body.message)
        return Response(status_code=204)

    async def activity(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        body = await request_body(request, ActivityIn)
        # The engine ignores unknown ids (docs/design.md, D-11); a client is told.
        await self._session_exists(session_id)
        signal = ActivitySignal(
            state=body.state,
            timestamp=activity_time(body.timestamp, received=self.s.clock.now()),
            source=body.source,
            agent_session_id=body.agent_session_id,
        )
        await self.s.lifecycle.apply_activity_signal(session_id, signal)
        return Response(status_code=204)

    async def post_pr(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        observation = await request_body(request, PRObservation)
        check_pr_url(observation.url, "$.url")
        if observation.number < 0:
            raise bad_request("invalid body: a PR number is not negative - at `$.number`")
        await self._session_exists(session_id)
        await self.s.lifecycle.apply_pr_observation(session_id, observation)
        return json_response(session_out(await self.s.lifecycle.get(session_id)))

    async def list_prs(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        await self._session_exists(session_id)
        return json_response(await self.s.store.list_pr_facts(session_id))

    # -- tokens

    async def rotate_tokens(self, request: Request) -> Response:
        try:
            self.s.auth.rotate_hook_key()
        except OSError as error:
            message = f"the new hook key could not be kept ({error}); the old one stays in use"
            raise ApiError(503, ErrorCode.UNAVAILABLE, message, RETRY_SOON) from None
        sessions = await self.s.store.list_sessions()
        live = [r.id for r in sessions if not r.lifecycle.state.is_terminal]
        return json_response(HookKeyRotated(sessions_to_restart=live))

    async def claim_pr(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        body = await request_body(request, PRClaimIn)
        if (body.url is None) == (body.number is None):
            raise bad_request("invalid body: give the PR's `url` or its `number`, not both")
        if body.url is not None:
            check_pr_url(body.url, "$.url")
        await self._session_exists(session_id)
        claimed = await self.pr_actions.claim(
            session_id, url=body.url or "", number=body.number or 0
        )
        view = await self.s.lifecycle.get(session_id)
        previous = claimed.previous_owner or ""
        return json_response(
            PRClaimOut(session=session_out(view), url=claimed.url, previous_session=previous)
        )

    async def merge_pr(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        await self._session_exists(session_id)
        merged = await self.pr_actions.merge(session_id)
        outcome = merged.outcome
        return json_response(
            PRMergeOut(
                url=merged.url,
                head_sha=merged.head_sha,
                merge_sha=outcome.sha,
                message=outcome.message,
            )
        )

    async def github_webhook(self, request: Request) -> Response:
        return await github_webhook(self.s.github_webhooks, request)

    # -- notifications and events

    async def notifications(self, request: Request) -> Response:
        project_id = await self._project_filter(request)
        limit = query_int(
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
        since = query_int(request, "since", default=-1, low=0, high=INT64 - 1)
        last_event_id = request.headers.get("last-event-id")
        if last_event_id is not None and last_event_id.strip():
            try:
                since = int(last_event_id)
            except ValueError:
                since = -1
            if not 0 <= since < INT64:
                raise bad_request("Last-Event-ID must be a non-negative integer")
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
                      "Register a project (201), or update it (200); its path must be a "
                      "git work tree", self.put_project, status=201, body=ProjectIn,
                      response=Project, errors=(400,)),
            Operation("GET", f"{p}/sessions", "listSessions", "Sessions by (project, num)",
                      self.list_sessions, response=list[SessionOut],
                      query=(project_q,
                             Param("status", {"type": "array", "items": {
                                   "type": "string", "enum": [s.value for s in SessionStatus]}},
                                   "Only sessions with one of these derived statuses (repeat "
                                   "the parameter, or separate values with commas)"),
                             Param("includeTerminated", {"type": "boolean", "default": True},
                                   "false leaves out terminated sessions (lifecycle state "
                                   "done or terminated)")),
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
            Operation("DELETE", f"{p}/sessions/{{id}}", "removeSession",
                      "Remove a terminated session, freeing its pane and worktree first; its "
                      "history stays in the change log (409 for a live session, or one whose "
                      "worktree holds work)", self.remove, response=ReclaimedOut,
                      errors=(404, 409, 429)),
            Operation("POST", f"{p}/cleanup", "cleanup",
                      "Free the panes and worktrees of terminated sessions where no work is "
                      "lost, and prune git's records of worktrees whose directories are gone; "
                      "`dryRun` only says what would go", self.cleanup, body=CleanupIn,
                      body_required=False, response=CleanupOut, errors=(404, 409)),
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
            Operation("POST", f"{p}/tokens/rotate", "rotateTokens",
                      "Replace the hook key: every session hook token issued so far stops "
                      "working; the agents of the listed live sessions must be restarted "
                      "to get new ones", self.rotate_tokens, response=HookKeyRotated),
            Operation("POST", f"{p}/sessions/{{id}}/pr/claim", "claimPR",
                      "Move a PR (by `url`, or by `number` in the project's repository) to "
                      "the session; `previousSession` is who had it", self.claim_pr,
                      body=PRClaimIn, response=PRClaimOut, errors=(400, 404, 409, 429)),
            Operation("POST", f"{p}/sessions/{{id}}/pr/merge", "mergePR",
                      "Merge the session's PR at the head commit it was last observed at, "
                      "when that showed CI passing, approved and mergeable (409 with the "
                      "reason otherwise, or when GitHub refuses)", self.merge_pr,
                      response=PRMergeOut, errors=(404, 409, 503)),
            Operation("POST", f"{p}/webhooks/github", "githubWebhook",
                      "GitHub webhook deliveries (no token: the `X-Hub-Signature-256` HMAC "
                      "of the body under the configured secret; 401 without it, 404 when "
                      "no secret is configured)", self.github_webhook, access=Access.PUBLIC,
                      response=WebhookOut, errors=(400, 401, 404, 413)),
            Operation("GET", f"{p}/notifications", "notifications",
                      "What humans were told, newest first", self.notifications,
                      response=list[Notification],
                      query=(project_q, Param("limit", {"type": "integer", "minimum": 1,
                             "maximum": MAX_NOTIFICATION_LIMIT, "default": 100}, "At most this many")),
                      errors=(400, 404)),
            Operation("GET", f"{p}/events", "events",
                      "The change log as Server-Sent Events: `id:` is the seq, `event:` the "
                      "change type, `data:` an EventOut. Replays after `Last-Event-ID` (or "
                      "`since`), then streams live. A `resync` event (data: ResyncOut) comes "
                      "first when the log cannot continue after that seq (`expired`: "
                      "trimmed; `ahead`: beyond the head), and last, closing the stream, "
                      "for a subscriber that fell behind (`lagged`)",
                      self.events, response=(EventOut, ResyncOut), stream=True,
                      query=(project_q,
                             Param("since", {"type": "integer", "minimum": 0},
                                   "Replay changes after this seq"),
                             Param("Last-Event-ID", {"type": "integer", "minimum": 0},
                                   "Replay changes after this seq (wins over `since`)",
                                   where="header")),
                      headers=(Param(HEAD_SEQ_HEADER, {"type": "integer", "minimum": 0},
                                     "The newest seq published when the stream opened: "
                                     "later seqs are live", where="header"),),
                      errors=(400, 404)),
        ]  # fmt: skip


__all__ = [
    "DEFAULT_NOTIFICATION_LIMIT",
    "HEALTH_PATH",
    "MAX_NOTIFICATION_LIMIT",
    "Routes",
    "cleanup_out",
    "reclaimed_out",
    "session_out",
    "spawn_request",
]
