"""The pages and the fragments the page script swaps in, all rendered on the server.

Every handler reads the store only (the terminal peek, on its own endpoint, is the one
read that reaches a pane). Without a signed-in browser a page is the login notice, with no
data at all, and a fragment is an empty 401 the script turns into "signed out".

Full pages carry the change log's head seq (``data-seq``): the script opens the change
feed from there, so a change committed between rendering and subscribing is replayed, not
lost.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from adapters.http.dashboard.detail import SessionPage, read_session_page
from adapters.http.dashboard.gate import browser_session
from adapters.http.dashboard.reads import is_unread
from adapters.http.dashboard.security import BrowserSession
from adapters.http.dashboard.services import (
    PEEK_LINES,
    DashboardServices,
    NotWiredError,
    PeekUnavailableError,
)
from adapters.http.dashboard.templating import STATIC, html
from adapters.http.dashboard.views import Board, build_board, build_card
from adapters.http.services import ApiServices
from orchestrator.domain.model import ProjectId
from orchestrator.domain.records import Notification

NOTIFICATIONS_SHOWN: Final = 200
SIGNED_OUT: Final = {"X-Orchestrator-Signed-Out": "1"}


class Pages:
    """Handlers for the dashboard's GET routes."""

    def __init__(self, api: ApiServices, dash: DashboardServices) -> None:
        self.api = api
        self.dash = dash

    # -- shared

    def _login_notice(self, message: str = "", status: int = 401) -> Response:
        return html("login.html", status, page="login", message=message, signed_in=False)

    async def _project(self, request: Request) -> ProjectId | None:
        project = request.query_params.get("project") or None
        if project is not None and await self.api.store.get_project(project) is None:
            return None  # an unknown filter shows everything rather than an empty board
        return project

    async def _chrome(self, session: BrowserSession, project: ProjectId | None) -> dict[str, Any]:
        """What every full page's top bar shows."""
        return {
            "signed_in": True,
            "csrf": session.csrf_token,
            "now": self.api.clock.now(),
            "project": project or "",
            "projects": await self.api.store.list_projects(),
            "unread": await self.dash.reads.unread_notifications(project),
            "agents": self.dash.agents,
            "head": await self.api.store.max_change_seq(),
        }

    async def _detail(self, request: Request) -> SessionPage | None:
        return await read_session_page(
            self.dash.store,
            self.dash.reads,
            request.path_params["id"],
            tmux_socket=self.dash.tmux_socket,
        )

    async def _board(self, project: ProjectId | None) -> Board:
        return build_board(build_card(f) for f in await self.dash.reads.card_facts(project))

    # -- full pages

    async def board(self, request: Request) -> Response:
        session = browser_session(request.scope)
        if session is None:
            return self._login_notice()
        project = await self._project(request)
        chrome = await self._chrome(session, project)  # the head seq before the read
        board = await self._board(project)
        return html("board.html", page="board", board=board, **chrome)

    async def session_page(self, request: Request) -> Response:
        session = browser_session(request.scope)
        if session is None:
            return self._login_notice()
        chrome = await self._chrome(session, None)
        detail = await self._detail(request)
        if detail is None:
            missing = request.path_params["id"]
            return html("missing.html", 404, page="missing", session_id=missing, **chrome)
        return html("session.html", page="session", detail=detail, **chrome)

    async def notifications_page(self, request: Request) -> Response:
        session = browser_session(request.scope)
        if session is None:
            return self._login_notice()
        project = await self._project(request)
        chrome = await self._chrome(session, project)
        items = await self._notifications(project)
        return html("notifications.html", page="notifications", items=items, **chrome)

    async def _notifications(self, project: ProjectId | None) -> list[Notification]:
        rows = await self.api.store.list_notifications(
            project_id=project, limit=NOTIFICATIONS_SHOWN
        )
        return sorted(rows, key=lambda n: (not is_unread(n), -n.id))  # unread first

    # -- fragments

    async def frag_board(self, request: Request) -> Response:
        if browser_session(request.scope) is None:
            return Response(status_code=401, headers=SIGNED_OUT)
        project = await self._project(request)
        board = await self._board(project)
        return html(
            "_board.html",
            board=board,
            now=self.api.clock.now(),
            project=project or "",
            projects=await self.api.store.list_projects(),
            agents=self.dash.agents,
        )

    async def frag_card(self, request: Request) -> Response:
        if browser_session(request.scope) is None:
            return Response(status_code=401, headers=SIGNED_OUT)
        facts = await self.dash.reads.card_facts_of(request.path_params["id"])
        if facts is None:
            return Response(status_code=404)
        project = await self._project(request)
        if project is not None and facts.record.project_id != project:
            return Response(status_code=204)  # not on this board
        return html("_one_card.html", c=build_card(facts), now=self.api.clock.now())

    async def frag_session(self, request: Request) -> Response:
        if browser_session(request.scope) is None:
            return Response(status_code=401, headers=SIGNED_OUT)
        detail = await self._detail(request)
        if detail is None:
            return Response(status_code=404)
        return html("_session.html", detail=detail, now=self.api.clock.now())

    async def frag_peek(self, request: Request) -> Response:
        if browser_session(request.scope) is None:
            return Response(status_code=401, headers=SIGNED_OUT)
        record = await self.api.store.get_session(request.path_params["id"])
        if record is None:
            return Response(status_code=404)
        text, notice = "", ""
        try:
            text = await self.dash.panes.capture(record, PEEK_LINES)
        except (NotWiredError, PeekUnavailableError) as error:
            notice = str(error)
        return html("_peek.html", text=text, notice=notice, now=self.api.clock.now())

    async def frag_bell(self, request: Request) -> Response:
        if browser_session(request.scope) is None:
            return Response(status_code=401, headers=SIGNED_OUT)
        project = await self._project(request)
        unread = await self.dash.reads.unread_notifications(project)
        return html("_bell.html", unread=unread)

    async def frag_notifications(self, request: Request) -> Response:
        if browser_session(request.scope) is None:
            return Response(status_code=401, headers=SIGNED_OUT)
        items = await self._notifications(await self._project(request))
        return html("_notifications.html", items=items, now=self.api.clock.now())

    async def static(self, request: Request) -> Response:
        asset = STATIC.get(request.path_params["name"])
        if asset is None:
            return Response(status_code=404)
        return asset.response()


__all__ = ["NOTIFICATIONS_SHOWN", "Pages"]
