"""The HTTP API as a Starlette app over the engine's services: the routes of
``adapters.http.routes``, behind access control, error mapping and the drain gate.

- JSON is camelCase, encoded and decoded with msgspec; bodies are checked strictly before
  anything reaches the engine (``adapters.http.bodies``).
- Every error is ``{"error": {"code", "message"}}``; unknown paths are JSON 404s and wrong
  methods JSON 405s (with ``Allow``). Domain errors map to statuses in
  ``adapters.http.errors.domain_error``; anything else is a logged 500.
- Every route but ``/healthz`` and the GitHub webhook (which is signed instead:
  ``adapters.http.webhooks``) needs ``Authorization: Bearer <daemon token>``; a session's
  hook token opens only that session's activity route (401 for a missing or unknown token,
  403 for a hook token used anywhere else).
- Once ``DrainSwitch.begin()`` is called, every request but ``/healthz`` gets 503
  ``unavailable`` and open event streams end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.http.auth import bearer_token
from adapters.http.dashboard import DashboardServices, dashboard_gate, dashboard_routes
from adapters.http.errors import (
    RETRY_SOON,
    UNAUTHORIZED_HEADERS,
    ApiError,
    domain_error,
    encode,
    error_response,
)
from adapters.http.openapi import Access, Handler, Operation, openapi_document
from adapters.http.routes import HEALTH_PATH, Routes
from adapters.http.services import (
    ApiServices,
    DrainSwitch,
    LifecycleCommands,
    SessionCommands,
)
from orchestrator.api import API_PREFIX, ErrorCode

log = logging.getLogger(__name__)


async def authorize(services: ApiServices, request: Request, access: Access) -> None:
    """Pass, or raise the 401/403 ``ApiError`` for the request's bearer token."""
    if access is Access.PUBLIC:
        return
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "missing bearer token", UNAUTHORIZED_HEADERS)
    auth = services.auth
    if auth.is_daemon(token):
        return
    # A hook token names its session: one MAC tells whether it is ours, however many
    # sessions there are. A valid one is forbidden outside its own activity route.
    named = auth.session_of(token)
    if named is not None and access is Access.SESSION_HOOK and named == request.path_params["id"]:
        return
    if named is not None:
        raise ApiError(
            403,
            ErrorCode.FORBIDDEN,
            "a session hook token only opens that session's activity route",
        )
    raise ApiError(401, ErrorCode.UNAUTHORIZED, "wrong bearer token", UNAUTHORIZED_HEADERS)


def _endpoint(services: ApiServices, ops: list[Operation]) -> Handler:
    by_method = {op.method: op for op in ops}

    async def endpoint(request: Request) -> Response:
        method = request.method
        op = by_method.get("GET" if method == "HEAD" else method)
        if op is None or (method == "HEAD" and op.stream):
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(by_method))})
        try:
            await authorize(services, request, op.access)
            return await op.handler(request)
        except Exception as error:
            known = domain_error(error)
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
                503, ErrorCode.UNAVAILABLE, "the daemon is shutting down", RETRY_SOON
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(services: ApiServices, dashboard: DashboardServices | None = None) -> Starlette:
    """The API as an ASGI app. Serve it with hypercorn's trio worker (the change feed and
    the engine must run in the same trio run). With ``dashboard``, the web dashboard is
    served beside it (``adapters.http.dashboard``)."""
    routes = Routes(services)
    ops = routes.operations()
    routes.openapi_bytes = encode(
        openapi_document(ops, title="orchestrator", version=services.version, prefix=API_PREFIX)
    )
    grouped: dict[str, list[Operation]] = {}
    for op in ops:
        grouped.setdefault(op.path, []).append(op)
    starlette_routes: list[BaseRoute] = [
        Route(path, _endpoint(services, group), methods=[op.method for op in group])
        for path, group in grouped.items()
    ]
    middleware = [Middleware(_DrainGate, drain=services.drain)]
    if dashboard is not None:
        starlette_routes += dashboard_routes(services, dashboard)
        middleware.append(dashboard_gate(services, dashboard))
    handlers: dict[Any, Callable[[Request, Exception], Any]] = {
        HTTPException: _http_exception,
        Exception: _internal_error,
    }
    app = Starlette(
        routes=starlette_routes,
        middleware=middleware,
        exception_handlers=handlers,
    )
    app.router.redirect_slashes = False
    return app


def operations(services: ApiServices) -> list[Operation]:
    """The route table (for documentation and tests)."""
    return Routes(services).operations()


__all__ = [
    "ApiError",
    "ApiServices",
    "DrainSwitch",
    "LifecycleCommands",
    "SessionCommands",
    "authorize",
    "create_app",
    "operations",
]
