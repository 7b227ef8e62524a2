"""Sign-in, sign-out, the dashboard's two API routes, and the actions the JSON API does not
have yet.

Sending, killing, restoring and spawning are not here: the page calls the JSON API for
those (the gate lets a signed-in browser in), so a browser and the CLI run the same code.

- ``GET /login?token=…`` swaps a one-time login token for the session cookie and redirects
  to the board; a used, expired or unknown token gets the login notice.
- ``POST /logout`` clears the cookie.
- ``POST /api/v1/dashboard/login`` (daemon token): a fresh login link, for ``orchestrator
  dashboard``.
- ``GET /api/v1/zones`` (daemon token, ``?project=``): every session's zone as the board
  shows it, for ``orchestrator ls --by-zone``.
- ``POST /ui/act/notifications/{id}/read`` and ``…/resolve``, ``POST /ui/act/s/{id}/merge``:
  through the store and the PR actions (``adapters.http.dashboard.wiring``); 501 from a
  daemon built without them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adapters.http.auth import bearer_token
from adapters.http.dashboard.security import COOKIE_NAME, COOKIE_TTL
from adapters.http.dashboard.services import DashboardServices, NotWiredError
from adapters.http.dashboard.templating import html
from adapters.http.dashboard.views import build_card
from adapters.http.errors import (
    UNAUTHORIZED_HEADERS,
    ApiError,
    domain_error,
    error_response,
    json_response,
)
from adapters.http.services import ApiServices
from orchestrator.api import ErrorCode, LoginLinkOut, SessionZoneOut
from orchestrator.domain.errors import NotFoundError

LOGIN_PATH: Final = "/login"


class Actions:
    """Handlers for sign-in and the dashboard's POST routes."""

    def __init__(self, api: ApiServices, dash: DashboardServices) -> None:
        self.api = api
        self.dash = dash

    async def login(self, request: Request) -> Response:
        cookie = self.dash.browser.redeem(request.query_params.get("token", ""))
        if cookie is None:
            message = (
                "This login link was already used or has expired (links work once, for a minute)."
            )
            return html("login.html", 401, page="login", message=message, signed_in=False)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            cookie,
            max_age=int(COOKIE_TTL.total_seconds()),
            path="/",
            httponly=True,
            samesite="strict",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = Response(status_code=204)
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
        return response

    def _require_daemon_token(self, request: Request) -> None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None or not self.api.auth.is_daemon(token):
            raise ApiError(
                401, ErrorCode.UNAUTHORIZED, "the daemon token is needed", UNAUTHORIZED_HEADERS
            )

    async def login_link(self, request: Request) -> Response:
        return await _answer(self._login_link, request)

    async def _login_link(self, request: Request) -> Response:
        self._require_daemon_token(request)
        token, expires = self.dash.browser.issue_login_token()
        path = f"{LOGIN_PATH}?token={quote(token, safe='')}"
        return json_response(LoginLinkOut(path=path, expires_at=expires), 201)

    async def zones(self, request: Request) -> Response:
        return await _answer(self._zones, request)

    async def _zones(self, request: Request) -> Response:
        self._require_daemon_token(request)
        project = request.query_params.get("project") or None
        if project is not None and await self.api.store.get_project(project) is None:
            raise NotFoundError(f"project {project!r} not found")
        cards = [build_card(f) for f in await self.dash.reads.card_facts(project)]
        return json_response(
            [
                SessionZoneOut(
                    id=c.id,
                    project_id=c.project_id,
                    zone=c.zone,
                    status=c.status,
                    title=c.title,
                    branch=c.branch,
                    pr_number=c.pr.number,
                    pr_url=c.pr.url,
                    updated_at=c.updated_at,
                )
                for c in cards
            ]
        )

    async def mark_read(self, request: Request) -> Response:
        return await _answer(self._notification, request, resolve=False)

    async def resolve(self, request: Request) -> Response:
        return await _answer(self._notification, request, resolve=True)

    async def _notification(self, request: Request, *, resolve: bool) -> Response:
        try:
            notification_id = int(request.path_params["id"])
        except ValueError:
            raise ApiError(400, ErrorCode.BAD_REQUEST, "a notification id is a number") from None
        now = self.api.clock.now()
        if resolve:
            await self.dash.notifications.resolve_notification(notification_id, now)
        else:
            await self.dash.notifications.mark_notification_read(notification_id, now)
        return Response(status_code=204)

    async def merge(self, request: Request) -> Response:
        return await _answer(self._merge, request)

    async def _merge(self, request: Request) -> Response:
        view = await self.api.lifecycle.get(request.path_params["id"])
        if not view.pr.is_open:
            raise ApiError(409, ErrorCode.CONFLICT, f"{view.record.id} has no open PR to merge")
        await self.dash.merger.merge(view.record.id, view.pr.url)
        return Response(status_code=204)


async def _answer(
    handler: Callable[..., Awaitable[Response]], request: Request, **kwargs: bool
) -> Response:
    """Run a handler, mapping errors as the JSON API does (and 501 for what is not wired)."""
    try:
        return await handler(request, **kwargs)
    except NotWiredError as error:
        return error_response(501, ErrorCode.NOT_IMPLEMENTED, str(error))
    except Exception as error:
        known = domain_error(error)
        if known is None:
            raise
        return known.response()


__all__ = ["LOGIN_PATH", "Actions"]
