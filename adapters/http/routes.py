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
from datetime import datetime
from pathlib import Path, PurePath
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
from adapters.http.listing import filtered_page, listing_filter
from adapters.http.metrics import METRICS_PATH, metrics_response
from adapters.http.openapi import Access, Operation, Param
from adapters.http.services import ApiServices, PRCommands
from adapters.http.sse import EventStream, SSEResponse
from adapters.http.webhooks import github_webhook
from orchestrator.api import (
    API_PREFIX,
    BACKUPS_PATH,
    DATABASE_CHECK_PATH,
    DEFAULT_SESSION_PAGE,
    HEAD_SEQ_HEADER,
    HOOK_CHECK_PATH,
    MAX_PR_URL_LENGTH,
    MAX_SESSION_PAGE,
    NEXT_CURSOR_HEADER,
    ActivityIn,
    BackupIn,
    BackupOut,
    CleanupIn,
    CleanupOut,
    DatabaseCheckOut,
    ErrorCode,
    EventOut,
    Health,
    HookKeyRotated,
    HookTokenCheckIn,
    HookTokenCheckOut,
    ImportIn,
    ImportOut,
    KillIn,
    KillOut,
    NotificationsMarked,
    PRClaimIn,
    PRClaimOut,
    PRMergeOut,
    ProjectIn,
    PruneOut,
    ReclaimedOut,
    RestoreIn,
    ResyncOut,
    ScmRefreshOut,
    ScmStatusOut,
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
    ActivityState,
    PRFacts,
    PRObservation,
    ProjectId,
    SessionId,
    SessionRecord,
    SessionStatus,
)
from orchestrator.domain.pages import SessionListing
from orchestrator.domain.records import Notification, Project
from orchestrator.domain.scm import ObserverState, SCMObserverStatus
from orchestrator.lifecycle.manager import SessionView
from orchestrator.pr_actions import PRActions
from orchestrator.sessions import SpawnRequest

HEALTH_PATH: Final = "/healthz"
# Activity that ends an agent's turn: it may have pushed or answered a review, so its PRs
# are worth a look before the next scheduled poll.
TURN_ENDED: Final = frozenset({ActivityState.READY, ActivityState.IDLE})
NO_OBSERVER: Final = SCMObserverStatus(
    state=ObserverState.DISABLED, reason="this daemon runs no GitHub observer"
)
DEFAULT_NOTIFICATION_LIMIT: Final = 100
MAX_NOTIFICATION_LIMIT: Final = 1000


def session_out(view: SessionView) -> SessionOut:
    return _session_out(view.record, view.status, view.pr)


def listed_session_out(item: SessionListing, status: SessionStatus) -> SessionOut:
    return _session_out(item.record, status, item.pr, item.pr_changed_at)


def _session_out(
    record: SessionRecord,
    status: SessionStatus,
    pr: PRFacts,
    pr_changed_at: datetime | None = None,
) -> SessionOut:
    return SessionOut(
        id=record.id,
        project_id=record.project_id,
        num=record.num,
        issue_id=record.issue_id,
        kind=record.kind,
        status=status,
        lifecycle=record.lifecycle,
        metadata=record.metadata,
        pr=pr,
        ended=record.ended,
        created_at=record.created_at,
        updated_at=record.updated_at,
        pr_changed_at=pr_changed_at,
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


def _notification_id(request: Request) -> int:
    """The path's notification id; one that cannot exist (not a positive 64-bit integer)
    is not found."""
    raw: str = request.path_params["id"]
    if raw.isascii() and raw.isdigit() and 0 < int(raw) < INT64:
        return int(raw)
    raise not_found(f"notification {raw[:40]!r} not found")


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
        store = self.s.store.health()
        status = "draining" if self.s.drain.draining else store.status.value
        return json_response(
            Health(status=status, version=self.s.version, reason=store.reason, since=store.since)
        )

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
        limit = query_int(
            request, "limit", default=DEFAULT_SESSION_PAGE, low=1, high=MAX_SESSION_PAGE
        )
        listed, next_cursor = await filtered_page(
            self.s.store,
            limit=limit,
            cursor=request.query_params.get("cursor") or None,
            project_id=project_id,
            keep=listing_filter(statuses, include_terminated=include_terminated),
        )
        headers = {NEXT_CURSOR_HEADER: next_cursor} if next_cursor else None
        return json_response([listed_session_out(*entry) for entry in listed], headers=headers)

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

    async def import_agent_orchestrator(self, request: Request) -> Response:
        if self.s.importer is None:
            raise ApiError(501, ErrorCode.NOT_IMPLEMENTED, "this daemon cannot import")
        body = await request_body(request, ImportIn, default=ImportIn())
        report = await self.s.importer.run(body.from_ or None, dry_run=body.dry_run)
        return json_response(report)

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
        if self.s.scm is not None and body.state in TURN_ENDED:
            self.s.scm.kick(session_id)
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

    # -- GitHub

    async def scm_status(self, request: Request) -> Response:
        scm = self.s.scm
        return json_response(scm.status() if scm is not None else NO_OBSERVER)

    async def scm_refresh(self, request: Request) -> Response:
        session_id: SessionId = request.path_params["id"]
        await self._session_exists(session_id)
        status = self.s.scm.status() if self.s.scm is not None else NO_OBSERVER
        if self.s.scm is None or status.state is ObserverState.DISABLED:
            raise ConflictError(f"the GitHub observer is disabled: {status.reason}")
        watching = self.s.scm.kick(session_id)
        return json_response(ScmRefreshOut(session_id=session_id, watching=watching), 202)

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

    async def check_hook_tokens(self, request: Request) -> Response:
        body = await request_body(request, HookTokenCheckIn)
        auth = self.s.auth
        return json_response(
            [
                HookTokenCheckOut(session_id=sid, valid=auth.session_of(token) == sid)
                for sid, token in sorted(body.tokens.items())
            ]
        )

    # -- operations

    async def backup(self, request: Request) -> Response:
        if self.s.backups is None:
            raise ApiError(501, ErrorCode.NOT_IMPLEMENTED, "this daemon takes no backups")
        body = await request_body(request, BackupIn, default=BackupIn())
        taken = await self.s.backups.take(Path(body.to) if body.to else None)
        out = BackupOut(path=str(taken.path), size_bytes=taken.size_bytes, seconds=taken.seconds)
        return json_response(out, 201)

    async def check_database(self, request: Request) -> Response:
        if self.s.backups is None:
            raise ApiError(501, ErrorCode.NOT_IMPLEMENTED, "this daemon cannot check its database")
        problem = await self.s.backups.quick_check()
        return json_response(DatabaseCheckOut(ok=problem is None, problem=problem or ""))

    async def metrics(self, request: Request) -> Response:
        if self.s.metrics is None:
            raise ApiError(501, ErrorCode.NOT_IMPLEMENTED, "this daemon keeps no metrics")
        return await metrics_response(self.s.metrics)

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
        unread = query_bool(request, "unread", default=False)
        rows = await self.s.store.list_notifications(
            project_id=project_id, limit=limit, unread=unread
        )
        return json_response(rows)

    async def read_notification(self, request: Request) -> Response:
        notification_id = _notification_id(request)
        if not await self.s.store.mark_notification_read(notification_id, self.s.clock.now()):
            raise not_found(f"notification {notification_id} not found")
        return Response(status_code=204)

    async def resolve_notification(self, request: Request) -> Response:
        notification_id = _notification_id(request)
        if not await self.s.store.resolve_notification(notification_id, self.s.clock.now()):
            raise not_found(f"notification {notification_id} not found")
        return Response(status_code=204)

    async def read_all_notifications(self, request: Request) -> Response:
        project_id = await self._project_filter(request)
        marked = await self.s.store.mark_all_notifications_read(
            self.s.clock.now(), project_id=project_id
        )
        return json_response(NotificationsMarked(marked=marked))

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
            Operation("GET", METRICS_PATH, "metrics",
                      "Prometheus metrics in the text exposition format", self.metrics),
            Operation("GET", f"{p}/openapi.json", "openapi", "This document", self.openapi,
                      response=dict[str, Any]),
            Operation("GET", f"{p}/projects", "listProjects", "Registered projects",
                      self.list_projects, response=list[Project]),
            Operation("POST", f"{p}/projects", "putProject",
                      "Register a project (201), or update it (200); its path must be a "
                      "git work tree", self.put_project, status=201, body=ProjectIn,
                      response=Project, errors=(400,)),
            Operation("GET", f"{p}/sessions", "listSessions",
                      "Sessions by (project, num), a page at a time: while more follow, the "
                      f"`{NEXT_CURSOR_HEADER}` header holds the `cursor` of the next page",
                      self.list_sessions, response=list[SessionOut],
                      query=(project_q,
                             Param("status", {"type": "array", "items": {
                                   "type": "string", "enum": [s.value for s in SessionStatus]}},
                                   "Only sessions with one of these derived statuses (repeat "
                                   "the parameter, or separate values with commas)"),
                             Param("includeTerminated", {"type": "boolean", "default": True},
                                   "false leaves out terminated sessions (lifecycle state "
                                   "done or terminated)"),
                             Param("limit", {"type": "integer", "minimum": 1,
                                   "maximum": MAX_SESSION_PAGE, "default": DEFAULT_SESSION_PAGE},
                                   "At most this many sessions"),
                             Param("cursor", {"type": "string"},
                                   f"Continue after the page that gave this `{NEXT_CURSOR_HEADER}`")),
                      headers=(Param(NEXT_CURSOR_HEADER, {"type": "string"},
                                     "The cursor of the next page; absent on the last",
                                     where="header"),),
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
            Operation("POST", f"{p}/import/agent-orchestrator", "importAgentOrchestrator",
                      "Import an agent-orchestrator installation (read-only on its files): "
                      "projects, sessions with their PRs, and an orchestrator.yaml fragment "
                      "to review; `dryRun` only says what would be imported",
                      self.import_agent_orchestrator, body=ImportIn, body_required=False,
                      response=ImportOut, errors=(400, 409)),
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
            Operation("GET", f"{p}/scm/status", "scmStatus",
                      "The GitHub observer: state, what it watches, its counters and the "
                      "shared rate budget", self.scm_status, response=ScmStatusOut),
            Operation("POST", f"{p}/sessions/{{id}}/scm/refresh", "scmRefresh",
                      "Poll the session's PRs on GitHub now (after a short debounce, under "
                      "the rate budget)", self.scm_refresh, status=202,
                      response=ScmRefreshOut, errors=(404, 409)),
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
            Operation("POST", f"{p}{HOOK_CHECK_PATH}", "checkHookTokens",
                      "Whether each given session hook token is valid for its session",
                      self.check_hook_tokens, body=HookTokenCheckIn,
                      response=list[HookTokenCheckOut], errors=(400,)),
            Operation("POST", f"{p}{BACKUPS_PATH}", "backup",
                      "An online, checked copy of the database (0600); `to` an absolute path "
                      "that must not exist, else a new file in the backups directory",
                      self.backup, status=201, body=BackupIn, body_required=False,
                      response=BackupOut, errors=(400, 409)),
            Operation("GET", f"{p}{DATABASE_CHECK_PATH}", "checkDatabase",
                      "`quick_check` of the live database, beside the writer",
                      self.check_database, response=DatabaseCheckOut),
            Operation("GET", f"{p}/notifications", "notifications",
                      "What humans were told, newest first", self.notifications,
                      response=list[Notification],
                      query=(project_q, Param("limit", {"type": "integer", "minimum": 1,
                             "maximum": MAX_NOTIFICATION_LIMIT, "default": 100}, "At most this many"),
                             Param("unread", {"type": "boolean", "default": False},
                                   "true lists only those not marked read")),
                      errors=(400, 404)),
            Operation("POST", f"{p}/notifications/read", "readAllNotifications",
                      "Mark every unread notification read (of one project with `project`)",
                      self.read_all_notifications, response=NotificationsMarked,
                      query=(project_q,), errors=(404,)),
            Operation("POST", f"{p}/notifications/{{id}}/read", "readNotification",
                      "Mark a notification read (the first time is kept)",
                      self.read_notification, status=204, errors=(404,)),
            Operation("POST", f"{p}/notifications/{{id}}/resolve", "resolveNotification",
                      "Mark a notification resolved (the first time is kept)",
                      self.resolve_notification, status=204, errors=(404,)),
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
