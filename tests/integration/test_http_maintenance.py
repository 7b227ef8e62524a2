"""The HTTP API of cleanup, rm, a fresh restore, the agent's conversation id on the
activity route, and the project path check: bodies, statuses and what reaches the engine."""

from __future__ import annotations

import httpx
import pytest

from orchestrator.api import API_PREFIX
from orchestrator.cleanup import CleanupReport, PruneResult, Reclaimed
from orchestrator.domain.model import TerminationReason
from tests.http_harness import serve_api

P = API_PREFIX


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"]["code"], body["error"]["message"]


async def test_delete_removes_a_terminated_session_and_refuses_a_live_one() -> None:
    async with serve_api() as api:
        done, live = await api.spawn(), await api.spawn()
        await api.engine.manager.on_kill_requested(done, TerminationReason.MANUALLY_KILLED)

        response = await api.client.delete(f"{P}/sessions/{done}")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "sessionId": done,
            "pane": f"{done}#1",
            "workspace": "",
            "kept": "",
            "reason": "",
        }
        assert error_of(await api.client.get(f"{P}/sessions/{done}"))[:2] == (404, "not_found")
        assert error_of(await api.client.delete(f"{P}/sessions/{done}"))[:2] == (
            404,
            "not_found",
        )
        status, code, message = error_of(await api.client.delete(f"{P}/sessions/{live}"))
        assert (status, code) == (409, "conflict")
        assert message == f"session {live} is not_started, not terminated"
        assert [s["id"] for s in (await api.client.get(f"{P}/sessions")).json()] == [live]


async def test_cleanup_passes_its_options_and_answers_the_report() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        api.sessions.cleanup_report = CleanupReport(
            dry_run=True,
            sessions=(
                Reclaimed(session_id=sid, pane=f"{sid}#1", kept="/w/x", reason="it has changes"),
            ),
            pruned=(PruneResult(project_id="mer", entries=("Removing worktrees/x: gone",)),),
        )

        response = await api.client.post(f"{P}/cleanup", json={"dryRun": True, "sessionId": sid})
        assert response.status_code == 200, response.text
        assert response.json() == {
            "dryRun": True,
            "sessions": [
                {
                    "sessionId": sid,
                    "pane": f"{sid}#1",
                    "workspace": "",
                    "kept": "/w/x",
                    "reason": "it has changes",
                }
            ],
            "pruned": [
                {"projectId": "mer", "entries": ["Removing worktrees/x: gone"], "error": ""}
            ],
        }
        assert (await api.client.post(f"{P}/cleanup")).status_code == 200  # no body: defaults
        assert (await api.client.post(f"{P}/cleanup", json={})).status_code == 200
        assert api.sessions.cleanups == [(sid, True), (None, False), (None, False)]

        response = await api.client.post(f"{P}/cleanup", json={"sessionId": "mer-9"})
        assert error_of(response)[:2] == (404, "not_found")
        response = await api.client.post(f"{P}/cleanup", json={"dryrun": True})
        assert error_of(response)[:2] == (400, "bad_request")
        assert len(api.sessions.cleanups) == 3


async def test_restore_may_ask_for_a_fresh_start() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        for body in ({"fresh": True}, None):
            await api.engine.manager.on_kill_requested(sid)
            response = await api.client.post(f"{P}/sessions/{sid}/restore", json=body)
            assert response.status_code == 200, response.text
        assert api.sessions.restored == [(sid, True), (sid, False)]


async def test_the_activity_route_records_the_agent_s_conversation_id() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        token = api.auth.session_token(sid)
        response = await api.anonymous.post(
            f"{P}/sessions/{sid}/activity",
            json={"state": "active", "agentSessionId": "0b9e6d3c-6a51-4f0e-9d43-2f1c7f0f6a10"},
            headers=api.as_token(token),
        )
        assert response.status_code == 204, response.text
        view = (await api.client.get(f"{P}/sessions/{sid}")).json()
        assert view["metadata"]["agentSessionId"] == "0b9e6d3c-6a51-4f0e-9d43-2f1c7f0f6a10"


@pytest.mark.parametrize("bad", ["-rf", "has space", "x" * 257, "é", "a\nb"])
async def test_an_agent_session_id_that_is_no_id_is_a_400(bad: str) -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        head = await api.head()
        response = await api.client.post(
            f"{P}/sessions/{sid}/activity", json={"state": "active", "agentSessionId": bad}
        )
        status, code, message = error_of(response)
        assert (status, code) == (400, "bad_request")
        assert "agentSessionId" in message
        assert await api.head() == head


async def test_a_project_path_that_is_no_work_tree_is_refused() -> None:
    async with serve_api() as api:
        api.sessions.bad_paths.add("/repos/plain")
        response = await api.client.post(f"{P}/projects", json={"id": "pl", "path": "/repos/plain"})
        assert error_of(response) == (400, "bad_request", "/repos/plain is not a git work tree")
        assert (await api.client.get(f"{P}/projects")).json() == []
        response = await api.client.post(f"{P}/projects", json={"id": "ok", "path": "/repos/ok"})
        assert response.status_code == 201, response.text
