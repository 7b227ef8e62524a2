"""What a human does with notifications over real loopback HTTP: mark one read or
resolved (404 when unknown), list the unread, mark every unread one read; the listing
shows when each was first read and resolved."""

from __future__ import annotations

from datetime import datetime

import httpx

from orchestrator.api import API_PREFIX
from tests.http_harness import Served, serve_api

P = API_PREFIX


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


async def paged(api: Served, *projects: str) -> list[int]:
    """A page per project given (a session asking for input), delivered; the ids."""
    for project in projects:
        sid = await api.spawn(project)
        response = await api.client.post(
            f"{P}/sessions/{sid}/activity", json={"state": "waiting_input"}
        )
        assert response.status_code == 204
    await api.engine.deliver()
    listed = (await api.client.get(f"{P}/notifications")).json()
    assert len(listed) == len(projects)
    return sorted(n["id"] for n in listed)


async def listed(api: Served, **params: str) -> dict[int, dict[str, object]]:
    response = await api.client.get(f"{P}/notifications", params=params)
    assert response.status_code == 200, response.text
    return {n["id"]: n for n in response.json()}


async def test_read_and_resolve_mark_a_notification_and_keep_the_first_time() -> None:
    async with serve_api() as api:
        first, second = await paged(api, "mer", "web")
        before = api.engine.clock.now()
        response = await api.client.post(f"{P}/notifications/{first}/read")
        assert (response.status_code, response.content) == (204, b"")
        assert (await api.client.post(f"{P}/notifications/{second}/resolve")).status_code == 204
        after = api.engine.clock.now()
        notes = await listed(api)
        read_at = datetime.fromisoformat(str(notes[first]["readAt"]))
        assert before <= read_at <= after
        assert (notes[first]["read"], notes[first]["resolved"]) == (True, False)
        assert notes[first]["resolvedAt"] is None
        assert (notes[second]["read"], notes[second]["resolved"]) == (False, True)
        assert notes[second]["readAt"] is None
        assert (await api.client.post(f"{P}/notifications/{first}/read")).status_code == 204
        assert (await listed(api))[first]["readAt"] == notes[first]["readAt"]


async def test_an_unknown_notification_is_a_404() -> None:
    async with serve_api() as api:
        await paged(api, "mer")
        for path in ("99/read", "99/resolve", "0/read", "x/read", "-1/resolve", f"{2**63}/read"):
            status, code, message = error_of(await api.client.post(f"{P}/notifications/{path}"))
            assert (status, code) == (404, "not_found"), path
            assert "notification" in message


async def test_unread_lists_only_the_unread_and_read_all_marks_them() -> None:
    async with serve_api() as api:
        ids = await paged(api, "mer", "web", "web")
        project = {n: str(note["projectId"]) for n, note in (await listed(api)).items()}
        mer = next(n for n in ids if project[n] == "mer")
        web, other_web = (n for n in ids if project[n] == "web")
        assert (await api.client.post(f"{P}/notifications/{web}/read")).status_code == 204
        assert sorted(await listed(api, unread="true")) == sorted([mer, other_web])
        assert sorted(await listed(api, unread="false")) == ids
        response = await api.client.get(f"{P}/notifications", params={"unread": "perhaps"})
        assert error_of(response)[:2] == (400, "bad_request")

        response = await api.client.post(f"{P}/notifications/read", params={"project": "web"})
        assert (response.status_code, response.json()) == (200, {"marked": 1})
        assert sorted(await listed(api, unread="true")) == [mer]
        response = await api.client.post(f"{P}/notifications/read")
        assert response.json() == {"marked": 1}
        assert await listed(api, unread="true") == {}
        assert (await api.client.post(f"{P}/notifications/read")).json() == {"marked": 0}
        response = await api.client.post(f"{P}/notifications/read", params={"project": "ghost"})
        assert error_of(response)[:2] == (404, "not_found")
