"""The dashboard's gate: an ASGI middleware in front of the whole app.

Requests that neither ask for a dashboard path nor carry the dashboard cookie pass through
untouched: the JSON API keeps its bearer tokens and its behaviour. For the others:

1. the ``Host`` must be a loopback name or the bound host (DNS rebinding), else 403;
2. a state-changing method (anything but GET and HEAD) needs a signed-in cookie, the page's
   CSRF token in ``X-CSRF-Token`` and, when the browser sends one, our own ``Origin``;
   else 403;
3. an API request (``/api/…``) with a valid cookie and no ``Authorization`` header is let
   through as the daemon token would be: the page's fetches and its ``EventSource`` (which
   cannot send headers) use the API itself, so actions and the change feed are exactly
   the CLI's;
4. dashboard responses get the page headers (a strict Content-Security-Policy, no framing,
   no sniffing, no referrer) and ``Cache-Control: no-store``.

The signed-in browser session (or None) is left in ``scope[BROWSER_SCOPE_KEY]`` for the
page routes, which show the login notice, and no data, without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.dashboard.security import (
    COOKIE_NAME,
    CSRF_HEADER,
    PAGE_HEADERS,
    BrowserAuth,
    BrowserSession,
    csrf_ok,
    hostname,
    origin_matches,
)
from orchestrator.api import ErrorBody, ErrorCode, ErrorDetail

BROWSER_SCOPE_KEY: Final = "orchestrator.browser"
API_PATH_PREFIX: Final = "/api/"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
_NO_STORE: Final = (b"cache-control", b"no-store")


class DashboardGate:
    """See the module doc. ``is_dashboard_path`` says which paths the dashboard serves;
    ``daemon_token`` is what an authenticated browser's API requests are let in as."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        browser: BrowserAuth,
        daemon_token: str,
        allowed_hosts: frozenset[str],
        is_dashboard_path: Callable[[str], bool],
    ) -> None:
        self.app = app
        self._browser = browser
        self._bearer = f"Bearer {daemon_token}".encode()
        self._hosts = allowed_hosts
        self._is_dashboard = is_dashboard_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        path: str = scope["path"]
        dashboard = self._is_dashboard(path)
        cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE_NAME)
        if not dashboard and (cookie is None or "authorization" in headers):
            await self.app(scope, receive, send)
            return
        host = headers.get("host", "")
        if hostname(host) not in self._hosts:
            await _refuse(scope, receive, send, f"host {host!r} is not this daemon's address")
            return
        session = self._browser.session(cookie)
        if scope["method"] not in _SAFE_METHODS:
            problem = _unsafe_request_problem(session, headers, host)
            if problem:
                await _refuse(scope, receive, send, problem)
                return
        if not dashboard:
            if session is None:  # not ours: the API answers 401 as it would without it
                await self.app(scope, receive, send)
                return
            raw = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
            scope = {**scope, "headers": [*raw, (b"authorization", self._bearer)]}
            await self.app(scope, receive, send)
            return
        scope = {**scope, BROWSER_SCOPE_KEY: session}
        await self.app(scope, receive, _with_page_headers(send))


def browser_session(scope: Scope) -> BrowserSession | None:
    """The signed-in browser of a request that passed the gate."""
    session = scope.get(BROWSER_SCOPE_KEY)
    return session if isinstance(session, BrowserSession) else None


def _unsafe_request_problem(
    session: BrowserSession | None, headers: dict[str, str], host: str
) -> str:
    if session is None:
        return "sign in first: run `orchestrator dashboard`"
    if not origin_matches(headers.get("origin"), host):
        return "a cross-site request is refused"
    if not csrf_ok(session, headers.get(CSRF_HEADER)):
        return "the page's CSRF token is missing or wrong: reload the page"
    return ""


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name in found:  # a repeated header is one list (HTTP/2 splits cookies)
            value = found[name] + ("; " if name == "cookie" else ", ") + value
        found[name] = value
    return found


def _with_page_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name for name, _ in headers}
            extra = [h for h in (*PAGE_HEADERS, _NO_STORE) if h[0] not in names]
            message = {**message, "headers": headers + extra}
        await send(message)

    return wrapped


async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    body = msgspec.json.encode(
        ErrorBody(error=ErrorDetail(code=ErrorCode.FORBIDDEN, message=message))
    )
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *PAGE_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["BROWSER_SCOPE_KEY", "DashboardGate", "browser_session"]
