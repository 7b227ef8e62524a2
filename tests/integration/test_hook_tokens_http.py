"""Hook tokens over HTTP: whatever the number of sessions, a request with a wrong token costs
at most one MAC; rotation (``POST /tokens/rotate``) invalidates every hook token issued
before and names the live sessions whose agents must be restarted."""

from __future__ import annotations

import pytest

from orchestrator.api import API_PREFIX
from tests.http_harness import Served, serve_api

P = API_PREFIX
SESSIONS = 100


async def many_sessions(api: Served) -> list[str]:
    await api.engine.project("mer")
    now = api.engine.clock.now()
    return [(await api.store.create_session("mer", now=now)).id for _ in range(SESSIONS)]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-token-of-ours-at-all", id="opaque"),
        pytest.param("mer-7." + "ab" * 32, id="forged mac"),
        pytest.param("mer-99999." + "ab" * 32, id="unknown session"),
    ],
)
@pytest.mark.parametrize("route", ["activity", "list"])
async def test_a_wrong_token_costs_one_mac_however_many_sessions(token: str, route: str) -> None:
    async with serve_api() as api:
        ids = await many_sessions(api)
        auth = api.services.auth
        before = auth.macs_computed
        if route == "activity":
            response = await api.client.post(
                f"{P}/sessions/{ids[6]}/activity",
                json={"state": "active"},
                headers=api.as_token(token),
            )
        else:
            response = await api.client.get(f"{P}/sessions", headers=api.as_token(token))
        assert response.status_code == 401
        assert auth.macs_computed - before <= 1


async def test_a_hook_token_is_checked_with_one_mac() -> None:
    async with serve_api() as api:
        ids = await many_sessions(api)
        auth = api.services.auth
        mine, other = ids[0], ids[-1]
        token = api.as_token(auth.session_token(mine))
        before = auth.macs_computed
        own = await api.client.post(f"{P}/sessions/{mine}/activity", json={"state": "active"})
        assert own.status_code == 204  # the daemon token: no MAC at all
        assert auth.macs_computed == before
        hooked = await api.client.post(
            f"{P}/sessions/{mine}/activity", json={"state": "idle"}, headers=token
        )
        assert hooked.status_code == 204
        elsewhere = await api.client.post(
            f"{P}/sessions/{other}/activity", json={"state": "idle"}, headers=token
        )
        assert elsewhere.status_code == 403
        listing = await api.client.get(f"{P}/sessions", headers=token)
        assert listing.status_code == 403
        assert auth.macs_computed - before == 3  # one per request


async def test_rotation_invalidates_issued_tokens_and_names_live_sessions() -> None:
    async with serve_api() as api:
        live, ended = await api.spawn(), await api.spawn()
        kill = await api.client.post(f"{P}/sessions/{ended}/kill", json={})
        assert kill.status_code == 200, kill.text
        old = api.as_token(api.services.auth.session_token(live))
        by_hook = await api.client.post(f"{P}/tokens/rotate", headers=old)
        assert by_hook.status_code == 403  # only the daemon token rotates
        response = await api.client.post(f"{P}/tokens/rotate")
        assert response.status_code == 200, response.text
        assert response.json() == {"sessionsToRestart": [live]}
        refused = await api.client.post(
            f"{P}/sessions/{live}/activity", json={"state": "active"}, headers=old
        )
        assert refused.status_code == 401
        new = api.as_token(api.services.auth.session_token(live))
        accepted = await api.client.post(
            f"{P}/sessions/{live}/activity", json={"state": "active"}, headers=new
        )
        assert accepted.status_code == 204


async def test_rotation_that_cannot_keep_the_key_changes_nothing() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        auth = api.services.auth
        token = api.as_token(auth.session_token(sid))

        def disk_full(key: bytes) -> None:
            raise OSError(28, "No space left on device")

        auth._save_hook_key = disk_full
        response = await api.client.post(f"{P}/tokens/rotate")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
        assert "old one stays in use" in response.json()["error"]["message"]
        still = await api.client.post(
            f"{P}/sessions/{sid}/activity", json={"state": "active"}, headers=token
        )
        assert still.status_code == 204
