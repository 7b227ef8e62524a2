"""``GET /api/v1/sessions`` a page at a time over real loopback HTTP: ``limit`` and
``cursor``, the next page's cursor in ``X-Next-Cursor`` (the body stays a list), the
filters filling a page, and when each session's PR last changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
import trio

from orchestrator.api import API_PREFIX, DEFAULT_SESSION_PAGE, NEXT_CURSOR_HEADER
from orchestrator.domain.pages import SessionPage
from tests.http_harness import Served, serve_api

P = API_PREFIX
PR = {"url": "https://github.com/o/r/pull/7", "number": 7, "ci": "pending"}


async def sessions(api: Served, count: int, project: str = "mer") -> list[str]:
    """``count`` sessions straight in the store (a listing needs no spawn)."""
    await api.engine.project(project)
    now = api.engine.clock.now()
    return [(await api.store.create_session(project, now=now)).id for _ in range(count)]


async def pages(api: Served, **params: str) -> list[list[str]]:
    """Every page of the listing, following ``X-Next-Cursor``."""
    found: list[list[str]] = []
    query = dict(params)
    while True:
        response = await api.client.get(f"{P}/sessions", params=query)
        assert response.status_code == 200, response.text
        found.append([s["id"] for s in response.json()])
        cursor = response.headers.get(NEXT_CURSOR_HEADER)
        if cursor is None:
            return found
        query["cursor"] = cursor


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


async def test_a_listing_pages_by_limit_and_cursor() -> None:
    async with serve_api() as api:
        ids = await sessions(api, 7)
        assert await pages(api, limit="3") == [ids[:3], ids[3:6], ids[6:]]
        assert await pages(api, limit="7") == [ids]  # an exact fit ends at once
        assert await pages(api) == [ids]
        more = await sessions(api, 2, project="web")
        assert await pages(api, limit="4", project="web") == [more]


async def test_the_default_page_holds_500(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serve_api() as api:
        await sessions(api, 2)
        asked: list[int] = []
        read_page = api.store.list_session_page

        async def recording(*, limit: int, **rest: Any) -> SessionPage:
            asked.append(limit)
            return await read_page(limit=limit, **rest)

        # 500 sessions in the memory store would take seconds to make: count what is asked
        monkeypatch.setattr(api.store, "list_session_page", recording)
        assert len((await api.client.get(f"{P}/sessions")).json()) == 2
        assert (await api.client.get(f"{P}/sessions", params={"limit": "1000"})).status_code == 200
        assert asked == [DEFAULT_SESSION_PAGE, 1000]
        assert DEFAULT_SESSION_PAGE == 500


async def test_a_bad_limit_or_cursor_is_a_400() -> None:
    async with serve_api() as api:
        await sessions(api, 2)
        for limit in ("0", "-1", "x", "1001"):
            response = await api.client.get(f"{P}/sessions", params={"limit": limit})
            status, code, message = error_of(response)
            assert (status, code) == (400, "bad_request"), limit
            assert "'limit' must be an integer from 1 to 1000" in message
        for cursor in ("not a cursor!", "WyJtZXIiXQ"):  # garbage; a place without a number
            response = await api.client.get(f"{P}/sessions", params={"cursor": cursor})
            status, code, message = error_of(response)
            assert (status, code) == (400, "bad_request"), cursor
            assert "invalid page cursor" in message


async def test_filters_fill_each_page_and_the_cursor_resumes_after_the_last_kept() -> None:
    async with serve_api() as api:
        ids = [await api.spawn() for _ in range(6)]
        for killed in ids[1::2]:
            assert (await api.client.post(f"{P}/sessions/{killed}/kill")).status_code == 200
        live = ids[0::2]
        assert await pages(api, limit="2", includeTerminated="false") == [live[:2], live[2:]]
        assert await pages(api, limit="2", status="killed") == [ids[1::2][:2], ids[5:]]
        assert await pages(api, limit="3", status="killed") == [ids[1::2]]
        working = await api.client.post(f"{P}/sessions/{ids[2]}/activity", json={"state": "active"})
        assert working.status_code == 204
        response = await api.client.post(f"{P}/sessions/{ids[2]}/pr", json=PR | {"ci": "failing"})
        assert response.status_code == 200, response.text
        # the status is derived per listed session, with its PR
        assert await pages(api, limit="1", status="ci_failed") == [[ids[2]], []]


async def test_a_listing_says_when_each_sessions_pr_last_changed() -> None:
    async with serve_api() as api:
        with_pr, bare = await api.spawn(), await api.spawn()

        async def listed() -> dict[str, dict[str, object]]:
            response = await api.client.get(f"{P}/sessions")
            return {s["id"]: s for s in response.json()}

        before = api.engine.clock.now()
        assert (await api.client.post(f"{P}/sessions/{with_pr}/pr", json=PR)).status_code == 200
        first = await listed()
        changed = datetime.fromisoformat(str(first[with_pr]["prChangedAt"]))
        assert before <= changed <= api.engine.clock.now()
        assert first[bare]["prChangedAt"] is None
        await trio.sleep(0.01)
        assert (await api.client.post(f"{P}/sessions/{with_pr}/pr", json=PR)).status_code == 200
        assert (await listed())[with_pr]["prChangedAt"] == first[with_pr]["prChangedAt"]
        await trio.sleep(0.01)
        passing = PR | {"ci": "passing"}
        assert (
            await api.client.post(f"{P}/sessions/{with_pr}/pr", json=passing)
        ).status_code == 200
        later = datetime.fromisoformat(str((await listed())[with_pr]["prChangedAt"]))
        assert later > changed
