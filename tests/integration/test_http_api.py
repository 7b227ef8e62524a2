"""The HTTP API over real loopback HTTP: hypercorn's trio worker serving the real app over
a memory store and a running engine (issue 6, item 3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.http import LifecycleCommands, SessionCommands, TokenAuthority, operations
from adapters.memory import (
    MemoryWorkspace,
    RecordingMessenger,
    ScriptedRuntime,
    StubAgent,
)
from orchestrator.api import API_PREFIX, MAX_BODY_BYTES
from orchestrator.cleanup import CleanupReport, Reclaimed
from orchestrator.domain.errors import OverloadedError, TransientError
from orchestrator.domain.model import (
    ActivitySource,
    ActivityState,
    CheckStatus,
    CIState,
    Mergeability,
    ReviewDecision,
    SessionRecord,
)
from orchestrator.lifecycle.manager import SessionView, ShuttingDownError
from orchestrator.sessions import SessionManager, SpawnRequest
from tests.engine_harness import Engine
from tests.http_harness import DAEMON_TOKEN, Served, serve_api

P = API_PREFIX

# --- helpers -----------------------------------------------------------------------------


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert response.headers["content-type"].startswith("application/json")
    return response.status_code, body["error"]["code"], body["error"]["message"]


async def assert_unchanged(api: Served, head: int) -> None:
    assert await api.head() == head


FAILING_PR = {
    "url": "https://github.com/o/r/pull/7",
    "number": 7,
    "ci": "failing",
    "checks": [
        {"name": "tests", "commit": "abc123", "status": "failed", "logTail": "assert 1 == 2"}
    ],
    "comments": [{"id": "c1", "author": "rev", "body": "please fix", "file": "a.py", "line": 3}],
}


# --- health, docs, routing ------------------------------------------------------------------


async def test_healthz_is_open_and_json() -> None:
    async with serve_api() as api:
        response = await api.anonymous.get("/healthz")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"status": "ok", "version": "test"}


async def test_unknown_path_and_wrong_method_are_json() -> None:
    async with serve_api() as api:
        assert error_of(await api.client.get(f"{P}/nope"))[:2] == (404, "not_found")
        assert error_of(await api.client.get(f"{P}/sessions/"))[:2] == (404, "not_found")
        response = await api.client.delete(f"{P}/sessions")
        assert error_of(response)[:2] == (405, "bad_request")
        assert {"GET", "POST"} <= set(response.headers["allow"].replace(" ", "").split(","))
        response = await api.client.get(f"{P}/sessions/x/activity")
        assert error_of(response)[0] == 405


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


async def test_openapi_document_matches_the_route_table() -> None:
    async with serve_api() as api:
        response = await api.client.get(f"{P}/openapi.json")
        assert response.status_code == 200
        doc = response.json()
        assert doc["openapi"] == "3.1.0"
        table = {(op.method.lower(), op.path) for op in operations(api.services)}
        documented = {(m, path) for path, item in doc["paths"].items() for m in item}
        assert documented == table
        schemas = doc["components"]["schemas"]
        for name in ("SessionOut", "ErrorBody", "ActivityIn", "PRObservation", "EventOut"):
            assert name in schemas
        for ref in _refs(doc):
            assert ref.startswith("#/components/schemas/")
            assert ref.removeprefix("#/components/schemas/") in schemas
        activity = doc["paths"][f"{P}/sessions/{{id}}/activity"]["post"]
        assert activity["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ActivityIn"
        }
        assert {"204", "400", "401", "403", "404", "413", "503"} <= set(activity["responses"])
        assert doc["paths"]["/healthz"]["get"]["security"] == []
        # camelCase on the wire, enums spelled out
        props = schemas["ActivityIn"]["properties"]
        assert set(props) == {"state", "timestamp", "source", "agentSessionId"}
        assert "waiting_input" in json.dumps(schemas)


# --- auth -------------------------------------------------------------------------------------


async def test_auth_missing_or_wrong_token_is_401() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        for method, path in [
            ("GET", f"{P}/sessions"),
            ("GET", f"{P}/sessions/{sid}"),
            ("GET", f"{P}/openapi.json"),
            ("POST", f"{P}/sessions/{sid}/activity"),
            ("GET", f"{P}/events"),
        ]:
            response = await api.anonymous.request(method, path, json={"state": "active"})
            assert error_of(response)[:2] == (401, "unauthorized"), path
            assert response.headers["www-authenticate"].startswith("Bearer")
            for header in (
                "Bearer nope-nope-nope",
                "Basic " + DAEMON_TOKEN,
                "Bearer",
                DAEMON_TOKEN,
            ):
                response = await api.anonymous.request(
                    method, path, json={"state": "active"}, headers={"Authorization": header}
                )
                assert error_of(response)[:2] == (401, "unauthorized"), (path, header)
        assert (await api.client.get(f"{P}/sessions")).status_code == 200


async def test_session_token_opens_only_its_own_activity_route() -> None:
    async with serve_api() as api:
        mine, other = await api.spawn(), await api.spawn()
        token = api.as_token(api.auth.session_token(mine))
        ok = await api.anonymous.post(
            f"{P}/sessions/{mine}/activity", json={"state": "active"}, headers=token
        )
        assert ok.status_code == 204, ok.text
        head = await api.head()
        forbidden = [
            ("POST", f"{P}/sessions/{other}/activity", {"state": "active"}),
            ("GET", f"{P}/sessions/{mine}", None),
            ("POST", f"{P}/sessions/{mine}/kill", None),
            ("POST", f"{P}/sessions/{mine}/pr", FAILING_PR),
            ("GET", f"{P}/sessions", None),
            ("GET", f"{P}/events", None),
        ]
        for method, path, body in forbidden:
            response = await api.anonymous.request(method, path, json=body, headers=token)
            assert error_of(response)[:2] == (403, "forbidden"), path
        await assert_unchanged(api, head)
        # the daemon token opens the hook route too
        response = await api.client.post(f"{P}/sessions/{other}/activity", json={"state": "idle"})
        assert response.status_code == 204


# --- happy paths --------------------------------------------------------------------------------


async def test_projects_register_update_and_list() -> None:
    async with serve_api() as api:
        body = {"id": "web", "path": "/repos/web", "displayName": "Web"}
        created = await api.client.post(f"{P}/projects", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["displayName"] == "Web"
        updated = await api.client.post(f"{P}/projects", json=body | {"displayName": "Web 2"})
        assert updated.status_code == 200
        assert updated.json()["registeredAt"] == created.json()["registeredAt"]
        listed = (await api.client.get(f"{P}/projects")).json()
        assert [(p["id"], p["displayName"]) for p in listed] == [("web", "Web 2")]
        for bad in (body | {"path": "relative/dir"}, body | {"id": "Not A Slug"}, {"id": "x"}):
            response = await api.client.post(f"{P}/projects", json=bad)
            assert error_of(response)[:2] == (400, "bad_request"), bad


async def test_sessions_spawn_get_and_list() -> None:
    async with serve_api() as api:
        await api.engine.project("mer")
        await api.engine.project("web")
        response = await api.client.post(
            f"{P}/sessions",
            json={"projectId": "mer", "agent": "stub", "issueId": "#12", "prompt": "fix it"},
        )
        assert response.status_code == 201, response.text
        session = response.json()
        assert response.headers["location"] == f"{P}/sessions/{session['id']}"
        assert session["issueId"] == "#12"
        assert session["status"] == "spawning"
        assert api.sessions.spawned[0].prompt == "fix it"
        other = await api.spawn("web")
        got = (await api.client.get(f"{P}/sessions/{session['id']}")).json()
        assert got == session | {"updatedAt": got["updatedAt"]}
        everything = (await api.client.get(f"{P}/sessions")).json()
        assert [s["id"] for s in everything] == [session["id"], other]
        only_web = (await api.client.get(f"{P}/sessions", params={"project": "web"})).json()
        assert [s["id"] for s in only_web] == [other]
        response = await api.client.get(f"{P}/sessions", params={"project": "ghost"})
        assert error_of(response)[:2] == (404, "not_found")
        response = await api.client.post(f"{P}/sessions", json={"projectId": "ghost", "agent": "x"})
        assert error_of(response)[:2] == (404, "not_found")


async def test_session_list_filters_by_status_and_terminated() -> None:
    async with serve_api() as api:
        working, waiting, killed = await api.spawn(), await api.spawn(), await api.spawn()
        await api.engine.project("web")
        other = await api.spawn("web")
        for sid, state in ((working, "active"), (waiting, "waiting_input"), (other, "active")):
            response = await api.client.post(f"{P}/sessions/{sid}/activity", json={"state": state})
            assert response.status_code == 204
        assert (await api.client.post(f"{P}/sessions/{killed}/kill")).status_code == 200

        async def ids(**params: str | list[str]) -> list[str]:
            response = await api.client.get(f"{P}/sessions", params=params)
            assert response.status_code == 200, response.text
            return [s["id"] for s in response.json()]

        assert await ids() == [working, waiting, killed, other]  # everything, as before
        assert await ids(includeTerminated="false") == [working, waiting, other]
        assert await ids(includeTerminated="0", project="mer") == [working, waiting]
        assert await ids(includeTerminated="TRUE") == [working, waiting, killed, other]
        assert await ids(status="working") == [working, other]
        assert await ids(status="working", project="web") == [other]
        assert await ids(status=["needs_input", "killed"]) == [waiting, killed]
        assert await ids(status="needs_input,killed") == [waiting, killed]
        assert await ids(status="killed", includeTerminated="false") == []
        assert await ids(status="", includeTerminated="") == [working, waiting, killed, other]
        for params, needle in (
            ({"status": "sleepy"}, "unknown value 'sleepy' (known: spawning, working,"),
            ({"status": "working,Working"}, "'Working'"),
            ({"includeTerminated": "maybe"}, "'includeTerminated' must be true or false"),
        ):
            response = await api.client.get(f"{P}/sessions", params=params)
            status, code, message = error_of(response)
            assert (status, code) == (400, "bad_request"), params
            assert needle in message, message


async def test_a_bad_project_id_is_explained_in_words() -> None:
    async with serve_api() as api:
        for path, body, where in (
            (f"{P}/projects", {"id": "My_App", "path": "/repos/x"}, "$.id"),
            (f"{P}/sessions", {"projectId": "a" * 33, "agent": "x"}, "$.projectId"),
            (f"{P}/sessions", {"projectId": "-app", "agent": "x"}, "$.projectId"),
        ):
            status, code, message = error_of(await api.client.post(path, json=body))
            assert (status, code) == (400, "bad_request")
            assert message == (
                "invalid body: project ids are lowercase letters, digits, - and _ (at most 32) "
                f"and start with a letter or digit - at `{where}`"
            )


async def test_activity_moves_the_session_and_pr_observation_shows_up() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        response = await api.client.post(f"{P}/sessions/{sid}/activity", json={"state": "active"})
        assert response.status_code == 204
        assert response.content == b""
        record = await api.engine.state(sid)
        assert record.lifecycle.state == "working"
        assert record.lifecycle.activity is not None
        assert record.lifecycle.activity.source == ActivitySource.HOOK
        # A second later than the first report, written at +01:00: normalised to UTC.
        later = api.engine.clock.now() + timedelta(seconds=1)
        stamp = later.astimezone(timezone(timedelta(hours=1))).isoformat()
        response = await api.client.post(
            f"{P}/sessions/{sid}/activity",
            json={"state": "waiting_input", "timestamp": stamp, "source": "native"},
        )
        assert response.status_code == 204
        record = await api.engine.state(sid)
        assert record.lifecycle.activity is not None
        assert record.lifecycle.activity.last_activity_at == later
        assert record.lifecycle.activity.last_activity_at.tzinfo is UTC

        response = await api.client.post(f"{P}/sessions/{sid}/pr", json=FAILING_PR)
        assert response.status_code == 200, response.text
        pr = response.json()["pr"]
        assert (pr["exists"], pr["number"], pr["ci"], pr["reviewComments"]) == (
            True,
            7,
            "failing",
            True,
        )
        facts = (await api.client.get(f"{P}/sessions/{sid}/pr")).json()
        assert [f["url"] for f in facts] == [FAILING_PR["url"]]
        assert (await api.client.get(f"{P}/sessions/{sid}")).json()["pr"] == pr


async def test_kill_restore_and_send() -> None:
    async with serve_api() as api:
        sid, dirty = await api.spawn(), await api.spawn()
        response = await api.client.post(f"{P}/sessions/{sid}/send", json={"message": "hi"})
        assert response.status_code == 204
        assert api.sessions.sent == [(sid, "hi")]

        killed = await api.client.post(f"{P}/sessions/{sid}/kill")
        assert killed.status_code == 200, killed.text
        assert killed.json()["freed"] is True
        assert killed.json()["session"]["lifecycle"]["terminationReason"] == "manually_killed"
        response = await api.client.post(f"{P}/sessions/{sid}/send", json={"message": "hi"})
        assert error_of(response)[:2] == (409, "conflict")

        restored = await api.client.post(f"{P}/sessions/{sid}/restore")
        assert restored.status_code == 200, restored.text
        assert restored.json()["status"] == "spawning"
        response = await api.client.post(f"{P}/sessions/{sid}/restore", json={"agent": "stub"})
        assert error_of(response)[:2] == (409, "conflict")  # live: not restorable

        api.sessions.dirty.add(dirty)
        response = await api.client.post(
            f"{P}/sessions/{dirty}/kill", json={"reason": "auto_cleanup"}
        )
        assert response.status_code == 200, response.text
        out = response.json()
        assert out["freed"] is False
        assert "uncommitted" in out["detail"]
        assert out["session"]["lifecycle"]["state"] == "terminated"
        assert out["session"]["lifecycle"]["terminationReason"] == "auto_cleanup"


async def test_notifications_list_filters_and_limits() -> None:
    async with serve_api() as api:
        a, b = await api.spawn("mer"), await api.spawn("web")
        for sid in (a, b):
            response = await api.client.post(
                f"{P}/sessions/{sid}/activity", json={"state": "waiting_input"}
            )
            assert response.status_code == 204
        await api.engine.deliver()
        rows = (await api.client.get(f"{P}/notifications")).json()
        assert {r["sessionId"] for r in rows} == {a, b}
        assert all(r["type"].startswith("reaction.") for r in rows)
        web = (await api.client.get(f"{P}/notifications", params={"project": "web"})).json()
        assert [r["sessionId"] for r in web] == [b]
        one = (await api.client.get(f"{P}/notifications", params={"limit": "1"})).json()
        assert len(one) == 1
        for limit in ("0", "-1", "x", "1001"):
            response = await api.client.get(f"{P}/notifications", params={"limit": limit})
            assert error_of(response)[:2] == (400, "bad_request")
        response = await api.client.get(f"{P}/notifications", params={"project": "ghost"})
        assert error_of(response)[:2] == (404, "not_found")


# --- bad input changes nothing -----------------------------------------------------------------


async def test_bad_input_gets_the_documented_error_and_changes_nothing() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        head = await api.head()
        activity = f"{P}/sessions/{sid}/activity"
        cases: list[tuple[str, bytes, int, str, str]] = [
            (activity, b"{not json", 400, "bad_request", "malformed"),
            (activity, b"", 400, "bad_request", "malformed"),
            (activity, b'{"state": "sleepy"}', 400, "bad_request", "$.state"),
            (activity, b'{"state": "active", "mood": 1}', 400, "bad_request", "mood"),
            (activity, b'{"state": "active", "source": "psychic"}', 400, "bad_request", "$.source"),
            (activity, b'{"state": 3}', 400, "bad_request", "$.state"),
            (activity, b"[]", 400, "bad_request", "Expected `object`"),
            (
                activity,
                b'{"state": "active", "timestamp": "2026-01-01T00:00:00"}',
                400,
                "bad_request",
                "$.timestamp",
            ),
            (activity, b'{"state": "active\\u0000"}', 400, "bad_request", "$.state"),
            (f"{P}/sessions/ghost-9/activity", b'{"state": "active"}', 404, "not_found", "ghost"),
            (f"{P}/sessions/{sid}/pr", b'{"number": 1}', 400, "bad_request", "url"),
            (f"{P}/sessions/{sid}/pr", b'{"url": "u", "ci": "red"}', 400, "bad_request", "$.ci"),
            (
                f"{P}/sessions/{sid}/pr",
                b'{"url": "u", "number": 123456789012345678901234567890}',
                400,
                "bad_request",
                "$.number",
            ),
            (
                f"{P}/sessions/{sid}/pr",
                b'{"url": "u", "checks": [{"name": "t", "commit": "c", "status": "meh"}]}',
                400,
                "bad_request",
                "$.checks[0].status",
            ),
            (
                f"{P}/sessions/{sid}/pr",
                b'{"url":"u","comments":[{"id":"1","createdAt":"2026-01-01T00:00:00"}]}',
                400,
                "bad_request",
                "$.comments[0].createdAt",
            ),
            (f"{P}/sessions/ghost-9/pr", b'{"url": "https://x/pull/1"}', 404, "not_found",
             "ghost"),
            (f"{P}/sessions/{sid}/kill", b'{"reason": "bored"}', 400, "bad_request", "$.reason"),
            (f"{P}/sessions/ghost-9/kill", b"", 404, "not_found", "ghost"),
            (f"{P}/sessions/ghost-9/restore", b"", 404, "not_found", "ghost"),
            (f"{P}/sessions/{sid}/send", b'{"message": ""}', 400, "bad_request", "$.message"),
            (f"{P}/sessions/ghost-9/send", b'{"message": "x"}', 404, "not_found", "ghost"),
            (f"{P}/sessions", b'{"projectId": "mer", "agent": "x", "kind": "boss"}', 400,
             "bad_request", "$.kind"),
            (f"{P}/sessions", b'{"projectId": "mer"}', 400, "bad_request", "agent"),
        ]  # fmt: skip
        for path, body, status, code, needle in cases:
            response = await api.client.post(
                path, content=body, headers={"content-type": "application/json"}
            )
            got_status, got_code, message = error_of(response)
            assert (got_status, got_code) == (status, code), (path, body, response.text)
            assert needle in message, (path, body, message)
            await assert_unchanged(api, head)
        for path in (f"{P}/sessions/ghost-9", f"{P}/sessions/ghost-9/pr"):
            assert error_of(await api.client.get(path))[:2] == (404, "not_found")
        assert api.sessions.sent == []


class _Chunks(httpx.AsyncByteStream):
    """An upload in chunks, sent as the request's stream. Not an async generator: the
    server answers 413 before the upload ends, and an abandoned generator would warn."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk, self.left = chunk, count

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self.left == 0:
            raise StopAsyncIteration
        self.left -= 1
        return self.chunk


def upload(api: Served, path: str, headers: dict[str, str]) -> httpx.Request:
    """A POST of MAX_BODY_BYTES + 128 KiB in 64 KiB chunks."""
    chunk, count = b" " * 65536, MAX_BODY_BYTES // 65536 + 2
    url = httpx.URL(api.url + path)
    headers = {"host": url.netloc.decode(), **api.as_token(DAEMON_TOKEN), **headers}
    return httpx.Request("POST", url, headers=headers, stream=_Chunks(chunk, count))


async def test_oversized_body_is_413_and_changes_nothing() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        head = await api.head()
        too_big = str(MAX_BODY_BYTES + 2 * 65536)
        declared = {"content-length": too_big}  # refused on the header alone
        response = await api.client.send(upload(api, f"{P}/sessions/{sid}/activity", declared))
        assert error_of(response)[:2] == (413, "too_large")
        # no Content-Length (chunked): the limit applies while reading
        chunked = {"transfer-encoding": "chunked"}
        response = await api.client.send(upload(api, f"{P}/sessions/{sid}/pr", chunked))
        assert error_of(response)[:2] == (413, "too_large")
        # exactly at the limit is fine (and then judged on its content)
        padded = b'{"state": "active"}'.ljust(MAX_BODY_BYTES, b" ")
        response = await api.client.post(f"{P}/sessions/{sid}/activity", content=padded)
        assert response.status_code == 204
        assert await api.head() == head + 1


# --- engine and manager errors map to statuses ---------------------------------------------------


class _Raising:
    """A SessionCommands whose every call raises the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def spawn(self, request: SpawnRequest, /) -> SessionView:
        raise self.error

    async def kill(self, session_id: str, reason: object, /) -> bool:
        raise self.error

    async def restore(
        self, session_id: str, /, *, agent: str | None = None, fresh: bool = False
    ) -> SessionView:
        raise self.error

    async def send(self, session_id: str, message: str, /) -> None:
        raise self.error

    async def cleanup(
        self, *, session_id: str | None = None, dry_run: bool = False
    ) -> CleanupReport:
        raise self.error

    async def remove(self, session_id: str, /) -> Reclaimed:
        raise self.error

    async def check_project_path(self, path: str, /) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (OverloadedError("mailbox full"), 429, "overloaded"),
        (ShuttingDownError("draining"), 503, "unavailable"),
        (TransientError("tmux busy"), 503, "unavailable"),
        (RuntimeError("bug"), 500, "internal"),
    ],
)
async def test_errors_map_to_statuses(error: Exception, status: int, code: str) -> None:
    async with serve_api(sessions=lambda _engine, _auth: _Raising(error)) as api:
        await api.engine.project("mer")
        sid = (await api.engine.spawn("mer")).id
        response = await api.client.post(f"{P}/sessions/{sid}/send", json={"message": "x"})
        assert error_of(response)[:2] == (status, code)
        if status in (429, 503):
            assert response.headers["retry-after"] == "1"
        if status == 500:
            assert "bug" not in response.text  # no internals leak


# --- drain -----------------------------------------------------------------------------------


async def test_draining_refuses_everything_but_healthz() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        head = await api.head()
        api.services.drain.begin()
        for method, path in [
            ("GET", f"{P}/sessions"),
            ("POST", f"{P}/sessions/{sid}/activity"),
            ("GET", f"{P}/events"),
            ("GET", f"{P}/nope"),
        ]:
            response = await api.client.request(method, path, json={"state": "active"})
            assert error_of(response)[:2] == (503, "unavailable"), path
        health = await api.anonymous.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "draining"
        await assert_unchanged(api, head)


# --- generated bodies ----------------------------------------------------------------------


_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_offsets = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
    timezone
)
_timestamp = st.datetimes(timezones=_offsets).map(datetime.isoformat)
_naive = st.datetimes().map(datetime.isoformat)  # refused: a timestamp needs a timezone


def _enum(values: type[Any]) -> st.SearchStrategy[str]:
    return st.sampled_from([v.value for v in values])


_activity = st.fixed_dictionaries(
    {"state": _enum(ActivityState)},
    optional={"timestamp": _timestamp, "source": _enum(ActivitySource)},
)
_check = st.fixed_dictionaries(
    {"name": st.text(max_size=8), "commit": st.text(max_size=8)},
    optional={
        "status": _enum(CheckStatus),
        "createdAt": _timestamp,
        "logTail": st.text(max_size=20),
        "url": st.text(max_size=8),
    },
)
_comment = st.fixed_dictionaries(
    {"id": st.text(max_size=6)},
    optional={
        "line": st.integers(min_value=-1, max_value=1 << 64),
        "resolved": st.booleans(),
        "createdAt": _timestamp,
        "body": st.text(max_size=20),
        "author": st.text(max_size=6),
    },
)
_pr = st.fixed_dictionaries(
    {"url": st.text(max_size=20)},
    optional={
        "number": st.integers(min_value=-1, max_value=1 << 64),
        "fetched": st.booleans(),
        "merged": st.booleans(),
        "closed": st.booleans(),
        "draft": st.booleans(),
        "ci": _enum(CIState),
        "review": _enum(ReviewDecision),
        "mergeability": _enum(Mergeability),
        "checks": st.lists(_check, max_size=3),
        "comments": st.lists(_comment, max_size=3),
    },
)


@st.composite
def _mutated(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A well-shaped body with one field (existing or new) set to arbitrary JSON."""
    body = dict(draw(valid))
    key = draw(st.sampled_from(sorted(body)) | st.text(max_size=6))
    body[key] = draw(_json | _naive)
    return body


def _bodies(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    well_formed = valid.map(lambda d: json.dumps(d).encode())
    broken = st.one_of(
        _mutated(valid).map(lambda d: json.dumps(d).encode()),
        _json.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=40),
    )
    return well_formed | broken


GENERATED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


async def _post_generated(route: str, body: bytes) -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        head = await api.head()
        response = await api.client.post(
            f"{P}/sessions/{sid}/{route}",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code < 500, response.text
        event(f"status {response.status_code}")
        if response.status_code >= 400:
            assert error_of(response)[:2] == (400, "bad_request"), response.text
            await assert_unchanged(api, head)
        else:
            assert response.status_code in (200, 204)
            view = await api.client.get(f"{P}/sessions/{sid}")
            assert view.status_code == 200


@GENERATED
@given(body=_bodies(_activity))
async def test_generated_activity_bodies_never_500(body: bytes) -> None:
    await _post_generated("activity", body)


@GENERATED
@given(body=_bodies(_pr))
async def test_generated_pr_bodies_never_500(body: bytes) -> None:
    await _post_generated("pr", body)


# --- the real session manager ------------------------------------------------------------------


async def test_with_the_real_session_manager() -> None:
    runtime, workspace, messenger = ScriptedRuntime(), MemoryWorkspace(), RecordingMessenger()

    def real(engine: Engine, auth: TokenAuthority) -> SessionCommands:
        def hook_env(record: SessionRecord) -> dict[str, str]:
            return {"ORCHESTRATOR_TOKEN": auth.session_token(record.id)}

        # The return type makes mypy check that the real manager fits the protocol.
        return SessionManager(
            engine.store,
            engine.manager,
            runtime=runtime,
            workspace=workspace,
            agents=StubAgent,
            messenger=messenger,
            clock=engine.clock,
            hook_environment=hook_env,
        )

    async with serve_api(sessions=real) as api:
        lifecycle: LifecycleCommands = api.engine.manager  # and the real lifecycle manager
        assert lifecycle is api.services.lifecycle
        await api.engine.project("mer")
        response = await api.client.post(
            f"{P}/sessions", json={"projectId": "mer", "agent": "claude-code", "prompt": "go"}
        )
        assert response.status_code == 201, response.text
        session = response.json()
        sid = session["id"]
        token = runtime.created[0].env["ORCHESTRATOR_TOKEN"]
        response = await api.anonymous.post(
            f"{P}/sessions/{sid}/activity",
            json={"state": "active", "agentSessionId": "conv-7"},
            headers=api.as_token(token),
        )
        assert response.status_code == 204
        response = await api.client.post(f"{P}/sessions/{sid}/send", json={"message": "hello"})
        assert response.status_code == 204
        assert messenger.messages_for(sid) == ["hello"]

        workspace.dirty.add(session["metadata"]["workspacePath"])
        response = await api.client.post(f"{P}/sessions/{sid}/kill")
        assert response.status_code == 200, response.text
        killed = response.json()
        assert killed["freed"] is False
        assert "uncommitted" in killed["detail"]
        assert killed["session"]["lifecycle"]["state"] == "terminated"

        response = await api.client.post(f"{P}/sessions/{sid}/restore")
        assert response.status_code == 200, response.text
        # The conversation the hook reported is the one resumed.
        assert runtime.created[-1].launch_command == ("stub-agent", "--resume", "conv-7")
        response = await api.client.post(f"{P}/sessions/nope-1/kill")
        assert error_of(response)[:2] == (404, "not_found")
        response = await api.client.post(f"{P}/sessions", json={"projectId": "nope", "agent": "x"})
        assert error_of(response)[:2] == (404, "not_found")
