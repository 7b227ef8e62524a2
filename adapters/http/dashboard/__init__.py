"""The live web dashboard, served by the daemon's own app on its one port.

Server-rendered pages (Starlette + Jinja2), one hand-written script and one stylesheet; no
build step. The pages read the store only and change nothing themselves: actions go
through the JSON API, and live updates follow the same change feed as ``orchestrator
events`` (docs/design.md, "Where the next capabilities go").

| Route | What |
|---|---|
| ``GET /`` | the board: sessions in columns by zone, the Done list, the top bar |
| ``GET /s/{id}`` | a session: facts, PR panel, timeline, terminal peek, attach command |
| ``GET /notifications`` | the notification centre, unread first |
| ``GET /login?token=``, ``POST /logout`` | sign-in with a one-time token, sign-out |
| ``GET /ui/frag/{board,card/{id},session/{id},peek/{id},bell,notifications}`` | fragments |
| ``GET /ui/static/{app.js,app.css}`` | the script and the stylesheet |
| ``POST /ui/act/…`` | mark read, resolve, merge |
| ``POST /api/v1/dashboard/login``, ``GET /api/v1/zones`` | for the CLI (daemon token) |

Modules: ``security`` (tokens, cookie, CSRF, Host check, headers), ``gate`` (the middleware
applying them), ``reads`` and ``sqlite_reads`` (what the board reads), ``views`` and
``detail`` (what the templates render), ``templating``, ``pages`` (GET handlers),
``actions`` (sign-in and POST handlers), ``services`` (what the daemon provides).
"""

from __future__ import annotations

from typing import Final

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from adapters.http.dashboard.actions import LOGIN_PATH, Actions
from adapters.http.dashboard.gate import DashboardGate
from adapters.http.dashboard.pages import Pages
from adapters.http.dashboard.services import DashboardServices
from adapters.http.services import ApiServices
from orchestrator.api import API_PREFIX, DASHBOARD_LOGIN_PATH, ZONES_PATH

PAGE_PATHS: Final = frozenset({"/", LOGIN_PATH, "/logout", "/notifications"})
PAGE_PREFIXES: Final = ("/s/", "/ui/")


def is_dashboard_path(path: str) -> bool:
    """Whether the dashboard serves ``path`` (its pages, fragments, assets and actions)."""
    return path in PAGE_PATHS or path.startswith(PAGE_PREFIXES)


def dashboard_routes(api: ApiServices, dash: DashboardServices) -> list[BaseRoute]:
    pages = Pages(api, dash)
    actions = Actions(api, dash)
    get = ["GET"]
    post = ["POST"]
    return [
        Route("/", pages.board, methods=get),
        Route("/s/{id}", pages.session_page, methods=get),
        Route("/notifications", pages.notifications_page, methods=get),
        Route(LOGIN_PATH, actions.login, methods=get),
        Route("/logout", actions.logout, methods=post),
        Route("/ui/frag/board", pages.frag_board, methods=get),
        Route("/ui/frag/card/{id}", pages.frag_card, methods=get),
        Route("/ui/frag/session/{id}", pages.frag_session, methods=get),
        Route("/ui/frag/peek/{id}", pages.frag_peek, methods=get),
        Route("/ui/frag/bell", pages.frag_bell, methods=get),
        Route("/ui/frag/notifications", pages.frag_notifications, methods=get),
        Route("/ui/static/{name}", pages.static, methods=get),
        Route("/ui/act/notifications/{id}/read", actions.mark_read, methods=post),
        Route("/ui/act/notifications/{id}/resolve", actions.resolve, methods=post),
        Route("/ui/act/s/{id}/merge", actions.merge, methods=post),
        Route(API_PREFIX + DASHBOARD_LOGIN_PATH, actions.login_link, methods=post),
        Route(API_PREFIX + ZONES_PATH, actions.zones, methods=get),
    ]


def dashboard_gate(api: ApiServices, dash: DashboardServices) -> Middleware:
    """The middleware that must wrap the whole app (``adapters.http.dashboard.gate``)."""
    return Middleware(
        DashboardGate,
        browser=dash.browser,
        daemon_token=api.auth.token,
        allowed_hosts=dash.allowed_hosts,
        is_dashboard_path=is_dashboard_path,
    )


__all__ = ["DashboardServices", "dashboard_gate", "dashboard_routes", "is_dashboard_path"]
