"""``GET /api/v1/events`` over real loopback HTTP: order, replay by ``Last-Event-ID``, the
project filter, resync on overflow and at either end of the kept history, heartbeats, drain
and disconnects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
import trio

from adapters.http.sse import event_frame
from orchestrator.api import API_PREFIX, HEAD_SEQ_HEADER, RESYNC_EVENT
from orchestrator.domain.records import ChangeEvent, ChangeType
from tests.http_harness import Served, serve_api

# httpx's streaming iterators are nested async generators: when a test stops reading a
# stream that is still open, the inner ones cannot be closed from outside and trio warns
# as they are collected. A client-side artefact; the server's cleanup is asserted directly
# (the feed's subscriber count).
pytestmark = pytest.mark.filterwarnings("ignore:Async generator 'http:ResourceWarning")

P = API_PREFIX
FAILING_PR = {
    "url": "https://github.com/o/r/pull/1",
    "number": 1,
    "ci": "failing",
    "checks": [{"name": "tests", "commit": "c1", "status": "failed"}],
}


@dataclass
class Frame:
    event: str = "message"
    id: int | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict[str, object]:
        value = json.loads(self.data)
        assert isinstance(value, dict)
        return value


class Reader:
    """Parses an SSE response into frames (events and comment-only frames)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self) -> Frame | None:
        """The next frame, or None once the server ended the stream."""
        frame, data, seen = Frame(), list[str](), False
        async for line in self._lines:
            if line == "":
                if seen:
                    frame.data = "\n".join(data)
                    return frame
                continue
            seen = True
            if line.startswith(":"):
                frame.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                frame.event = value
            elif name == "id":
                frame.id = int(value)
        return None

    async def event(self) -> Frame | None:
        """The next event frame (comments skipped), or None at the end of the stream."""
        while True:
            frame = await self.next()
            if frame is None or frame.id is not None or frame.event != "message":
                return frame

    async def events_through(self, seq: int) -> list[Frame]:
        """Event frames up to and including ``seq``."""
        frames: list[Frame] = []
        with trio.fail_after(5):
            while not frames or frames[-1].id != seq:
                frame = await self.event()
                assert frame is not None, f"stream ended before seq {seq}: {frames}"
                assert frame.id is not None, frame
                assert frame.id <= seq, (frame, seq)
                frames.append(frame)
        return frames

    async def rest(self) -> list[Frame]:
        """Every frame until the server ends the stream."""
        frames: list[Frame] = []
        with trio.fail_after(5):
            while (frame := await self.next()) is not None:
                frames.append(frame)
        return frames


@asynccontextmanager
async def stream(
    api: Served, *, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[Reader]:
    async with api.client.stream("GET", f"{P}/events", params=params, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        yield Reader(response)


async def log_after(api: Served, seq: int, project: str | None = None) -> list[ChangeEvent]:
    return await api.store.changes_after(seq, limit=10_000, project_id=project)


async def busy_session(api: Served, project: str = "mer") -> str:
    """A session that went through spawn, activity and a PR with a failing check (a PR of
    its own: a PR belongs to one session)."""
    sid = await api.spawn(project)
    response = await api.client.post(f"{P}/sessions/{sid}/activity", json={"state": "active"})
    assert response.status_code == 204
    pr = {**FAILING_PR, "url": f"https://github.com/o/{sid}/pull/1"}
    response = await api.client.post(f"{P}/sessions/{sid}/pr", json=pr)
    assert response.status_code == 200
    return sid


async def released(api: Served) -> None:
    """Wait until the server has dropped every subscription (streams gone)."""
    with trio.fail_after(5):
        while True:
            if api.feed.subscriber_count == 0:
                return
            await trio.sleep(0.01)


def ids(frames: list[Frame]) -> list[int | None]:
    return [f.id for f in frames]


async def test_live_events_arrive_in_seq_order() -> None:
    async with serve_api() as api, stream(api) as reader:
        start = await api.head()
        sid = await busy_session(api)
        head = await api.head()
        frames = await reader.events_through(head)
        expected = await log_after(api, start)
        assert ids(frames) == [e.seq for e in expected] == list(range(start + 1, head + 1))
        assert [f.event for f in frames] == [str(e.type) for e in expected]
        assert {
            ChangeType.SESSION_CREATED,
            ChangeType.SESSION_UPDATED,
            ChangeType.PR_CREATED,
            ChangeType.PR_CHECK_RECORDED,
        } <= {ChangeType(f.event) for f in frames}
        for frame, change in zip(frames, expected, strict=True):
            body = frame.json
            assert body["seq"] == frame.id
            assert body["type"] == frame.event
            assert body["sessionId"] == sid
            assert body["projectId"] == "mer"
            assert body["payload"] == json.loads(change.payload)
            assert isinstance(body["createdAt"], str)


async def test_replay_after_last_event_id_then_live() -> None:
    async with serve_api() as api:
        await busy_session(api)
        await busy_session(api)
        head = await api.head()
        assert head > 6
        async with stream(api, headers={"Last-Event-ID": "3"}) as reader:
            replayed = await reader.events_through(head)
            assert ids(replayed) == list(range(4, head + 1))
            await busy_session(api)  # live, after the replay: nothing missed or doubled
            live = await reader.events_through(await api.head())
            assert ids(live) == list(range(head + 1, await api.head() + 1))


async def published(api: Served) -> int:
    """Wait until the feed has published everything committed; returns that seq."""
    with trio.fail_after(5):
        while True:
            head = await api.head()
            if api.feed.cursor == head:
                return head
            await trio.sleep(0.01)


async def test_the_stream_names_the_head_it_opened_at() -> None:
    async with serve_api() as api:
        async with stream(api) as reader:
            assert reader.response.headers[HEAD_SEQ_HEADER] == str(await published(api))
        await busy_session(api)
        head = await published(api)
        async with stream(api, params={"since": "2"}) as reader:
            assert reader.response.headers[HEAD_SEQ_HEADER] == str(head)
            assert ids(await reader.events_through(head)) == list(range(3, head + 1))
            await busy_session(api)  # later seqs are live, past the named head
            live = await reader.events_through(await api.head())
            assert live
            assert all(f.id is not None and f.id > head for f in live)


async def test_reconnect_gets_exactly_the_missed_events() -> None:
    async with serve_api() as api:
        async with stream(api) as reader:
            await busy_session(api)
            seen = await reader.events_through(await api.head())
        last = seen[-1].id
        assert last is not None
        await released(api)  # the server let go of the subscription
        await busy_session(api)
        missed = await log_after(api, last)
        assert missed
        # the header wins over ``since`` (a browser keeps the URL and sends the header)
        async with stream(api, params={"since": "0"}, headers={"Last-Event-ID": str(last)}) as r:
            got = await r.events_through(missed[-1].seq)
        assert ids(got) == [e.seq for e in missed]
        async with stream(api, params={"since": str(last)}) as r:
            got = await r.events_through(missed[-1].seq)
        assert ids(got) == [e.seq for e in missed]


async def test_project_filter_applies_to_replay_and_live() -> None:
    async with serve_api() as api:
        await busy_session(api, "mer")
        web = await busy_session(api, "web")
        async with stream(api, params={"project": "web", "since": "0"}) as reader:
            replayed = await reader.events_through((await log_after(api, 0, "web"))[-1].seq)
            assert ids(replayed) == [e.seq for e in await log_after(api, 0, "web")]
            before = await api.head()
            await busy_session(api, "mer")
            response = await api.client.post(f"{P}/sessions/{web}/activity", json={"state": "idle"})
            assert response.status_code == 204
            live = await reader.events_through(await api.head())
            assert [e.seq for e in await log_after(api, before, "web")] == ids(live)
            assert {f.json["projectId"] for f in replayed + live} == {"web"}


async def test_a_subscriber_that_falls_behind_gets_resync_then_can_replay() -> None:
    async with serve_api(subscriber_buffer=2) as api:
        await api.engine.project("mer")
        async with stream(api) as reader:
            start = await api.head()
            # Five commits before the feed runs again: it publishes them in one go, and the
            # third finds this stream's two-event buffer full.
            for _ in range(5):
                await api.store.create_session("mer", now=api.engine.clock.now())
            frames = await reader.rest()
        events = [f for f in frames if not f.comments]
        assert ids(events[:2]) == [start + 1, start + 2]
        assert events[-1].event == RESYNC_EVENT
        assert events[-1].id is None
        assert events[-1].json == {"lastSeq": start + 2}
        assert len(events) == 3
        assert api.feed.dropped == 1
        async with stream(api, headers={"Last-Event-ID": str(start + 2)}) as reader:
            rest = await reader.events_through(start + 5)
        assert ids(rest) == [start + 3, start + 4, start + 5]


def trim_oldest(api: Served, upto: int) -> None:
    """What the retention janitor does to the log: drop its rows up to ``upto`` (the memory
    store has no janitor of its own)."""
    log = api.store._t.change_log
    log[:] = [e for e in log if e.seq > upto]


async def resync_first(reader: Reader) -> tuple[int | None, dict[str, object]]:
    """The stream's first frame, which must be a resync: its id and data."""
    first = await reader.event()
    assert first is not None
    assert first.event == RESYNC_EVENT, first
    return first.id, first.json


async def test_a_last_event_id_older_than_the_kept_log_gets_a_resync_first() -> None:
    async with serve_api() as api:
        await busy_session(api)
        await busy_session(api)
        head = await api.head()
        trim_oldest(api, 3)
        async with stream(api, headers={"Last-Event-ID": "1"}) as reader:
            # The stream goes on after its id: the seq before the oldest kept.
            assert await resync_first(reader) == (
                3,
                {"lastSeq": 3, "reason": "expired", "oldestSeq": 4, "headSeq": head},
            )
            replayed = await reader.events_through(head)
            assert ids(replayed) == list(range(4, head + 1))
            await busy_session(api)  # then live, as always
            live = await reader.events_through(await api.head())
            assert ids(live) == list(range(head + 1, await api.head() + 1))


async def test_no_resync_when_the_kept_log_continues_the_last_event_id() -> None:
    async with serve_api() as api:
        await busy_session(api)
        head = await api.head()
        trim_oldest(api, 2)
        for last_event_id, first_seq in (("2", 3), ("3", 4), ("0", 3)):
            async with stream(api, headers={"Last-Event-ID": last_event_id}) as reader:
                replayed = await reader.events_through(head)
            assert all(f.event != RESYNC_EVENT for f in replayed), last_event_id
            assert ids(replayed) == list(range(first_seq, head + 1))


async def test_a_log_trimmed_to_nothing_resyncs_to_its_head() -> None:
    async with serve_api() as api:
        await busy_session(api)
        head = await api.head()
        trim_oldest(api, head)
        async with stream(api, params={"since": "1"}) as reader:
            # ``oldestSeq`` is left out: 0, the log holds no event.
            assert await resync_first(reader) == (
                head,
                {"lastSeq": head, "reason": "expired", "headSeq": head},
            )
            await busy_session(api)
            live = await reader.events_through(await api.head())
            assert ids(live) == list(range(head + 1, await api.head() + 1))


async def test_a_last_event_id_beyond_the_head_resyncs_from_the_start() -> None:
    """A client that saw seq 5000 of a database that was since reset."""
    async with serve_api() as api:
        await busy_session(api)
        head = await api.head()
        async with stream(api, headers={"Last-Event-ID": str(head + 5000)}) as reader:
            assert await resync_first(reader) == (
                0,
                {"lastSeq": 0, "reason": "ahead", "oldestSeq": 1, "headSeq": head},
            )
            replayed = await reader.events_through(head)
            assert ids(replayed) == list(range(1, head + 1))
        async with stream(api, headers={"Last-Event-ID": str(head)}) as reader:
            await busy_session(api)  # at the head exactly: no resync, only what comes next
            live = await reader.events_through(await api.head())
            assert ids(live) == list(range(head + 1, await api.head() + 1))


async def test_idle_streams_get_heartbeats() -> None:
    async with serve_api(heartbeat=0.05) as api, stream(api) as reader:
        with trio.fail_after(5):
            comments: list[str] = []
            while comments.count("ping") < 2:
                frame = await reader.next()
                assert frame is not None
                assert frame.id is None
                comments += frame.comments
        assert comments[0] == "connected"


async def test_drain_ends_open_streams_and_refuses_new_ones() -> None:
    async with serve_api() as api:
        async with stream(api) as reader, stream(api) as other:
            await busy_session(api)
            await reader.events_through(await api.head())
            api.services.drain.begin()
            frames = await reader.rest()
            assert all(f.event != RESYNC_EVENT for f in frames)
            assert await other.rest() is not None
        response = await api.client.get(f"{P}/events")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"


async def test_closing_the_feed_ends_streams_without_resync() -> None:
    async with serve_api() as api, stream(api) as reader:
        api.feed.close()
        frames = await reader.rest()
        assert [f.event for f in frames if not f.comments] == []


async def test_a_client_that_leaves_releases_its_subscription() -> None:
    async with serve_api(heartbeat=0.02) as api:
        for _ in range(3):
            async with stream(api) as reader:
                assert await reader.next() is not None
                assert api.feed.subscriber_count >= 1
        await released(api)


async def test_bad_parameters() -> None:
    async with serve_api() as api:
        cases: list[tuple[dict[str, str], dict[str, str], int]] = [
            ({}, {"Last-Event-ID": "abc"}, 400),
            ({}, {"Last-Event-ID": "-4"}, 400),
            ({"since": "-1"}, {}, 400),
            ({"since": "x"}, {}, 400),
            ({"project": "ghost"}, {}, 404),
        ]
        for params, headers, status in cases:
            response = await api.client.get(f"{P}/events", params=params, headers=headers)
            assert response.status_code == status, (params, headers)
            assert "error" in response.json()
        response = await api.anonymous.get(f"{P}/events")
        assert response.status_code == 401
        assert api.feed.subscriber_count == 0


def test_a_payload_with_line_breaks_stays_one_event() -> None:
    event = ChangeEvent(
        seq=9,
        project_id="mer",
        session_id="mer-1",
        type=ChangeType.SESSION_UPDATED,
        payload='{"a":\n1,\r\n"b": 2}',
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    frame = event_frame(event).decode()
    assert frame.startswith("id: 9\nevent: session_updated\ndata: ")
    assert frame.endswith("\n\n")
    assert frame.count("\n\n") == 1
    data = "\n".join(
        line.removeprefix("data: ") for line in frame.splitlines() if line.startswith("data:")
    )
    assert json.loads(data)["payload"] == {"a": 1, "b": 2}
