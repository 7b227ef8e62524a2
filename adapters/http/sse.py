"""``GET /api/v1/events``: the change log as Server-Sent Events.

Each change is one frame, ``id: <seq>\\nevent: <type>\\ndata: <EventOut JSON>\\n\\n``.
A client that reconnects with ``Last-Event-ID`` (or ``?since=``) first gets the change-log
rows after that seq, read in batches, then the live tail. The live subscription is taken
*before* the replay reads anything and the tail skips every seq already sent, so the seam
neither loses nor repeats an event. The ``X-Orchestrator-Head-Seq`` response header names
the feed's seq at that moment: every later seq arrives live (a client that wants only the
backlog stops there).

A replay never skips silently. When the change log cannot continue from ``Last-Event-ID``
— the events after it were trimmed (``expired``), or it lies beyond the log's head, as after
a database reset (``ahead``) — the first frame is ``event: resync`` naming the oldest seq the
log holds and its head, with ``id:`` the seq the stream goes on after (the oldest kept minus
one, or 0 to start over); the replay then goes on from there. ``Last-Event-ID: 0`` asks for
whatever the log holds and never gets one.

A subscriber that falls too far behind is dropped by the feed; it still receives every event
it had buffered, then a final ``event: resync`` frame whose data names the last seq it was
sent, and the stream closes: reconnecting with that seq as ``Last-Event-ID`` replays the
rest. Idle streams carry a ``: ping`` comment every ``heartbeat`` seconds. Streams end
cleanly when the daemon drains (the feed closes, or the drain switch flips) and when the
client disconnects.

The response is a small ASGI callable that owns a nursery (a disconnect watcher, a drain
watcher and the producer) and calls ``send`` directly: no async generator yields inside a
nursery or cancel scope (ruff ASYNC119): a scope left open across a yield would govern the
consumer's code instead of the generator's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

import msgspec
import trio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from orchestrator.api import HEAD_SEQ_HEADER, RESYNC_EVENT, EventOut, ResyncOut, ResyncReason
from orchestrator.changefeed import ChangeFeed, Subscription
from orchestrator.domain.model import ProjectId
from orchestrator.domain.records import ChangeEvent
from orchestrator.ports import ChangeLog

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT: Final = 15.0
REPLAY_BATCH: Final = 512
CONNECTED: Final = b": connected\n\n"
PING: Final = b": ping\n\n"

Emit = Callable[[bytes], Awaitable[None]]

_HEAD_SEQ: Final = HEAD_SEQ_HEADER.lower().encode()

_encoder = msgspec.json.Encoder()


class DrainSignal(Protocol):
    """What an event stream watches to end itself when the daemon drains."""

    @property
    def draining(self) -> bool: ...

    async def wait(self) -> None: ...


def event_out(event: ChangeEvent) -> EventOut:
    payload = event.payload.encode() if event.payload else b"null"
    return EventOut(
        seq=event.seq,
        project_id=event.project_id,
        session_id=event.session_id,
        type=str(event.type),
        payload=msgspec.Raw(payload),
        created_at=event.created_at,
    )


def event_frame(event: ChangeEvent) -> bytes:
    """One SSE frame for one change-log row."""
    return _frame(str(event.type), _encoder.encode(event_out(event)), seq=event.seq)


def resync_frame(resync: ResyncOut) -> bytes:
    # A lagged stream's frame carries no id: the last event's id already is its last seq.
    seq = None if resync.reason is ResyncReason.LAGGED else resync.last_seq
    return _frame(RESYNC_EVENT, _encoder.encode(resync), seq=seq)


def _frame(event_type: str, data: bytes, *, seq: int | None = None) -> bytes:
    head = b"" if seq is None else b"id: %d\n" % seq
    # A line break inside data would end the field early: SSE carries multi-line data as
    # one ``data:`` line per line (the payload is passed through raw and could hold one).
    lines = b"".join(b"data: " + line + b"\n" for line in data.splitlines() or [b""])
    return head + b"event: " + event_type.encode() + b"\n" + lines + b"\n"


class EventStream:
    """What one SSE connection sends: replay after ``since`` (if given), then the live tail."""

    def __init__(
        self,
        *,
        feed: ChangeFeed,
        log: ChangeLog,
        project_id: ProjectId | None,
        since: int | None,
        heartbeat: float = DEFAULT_HEARTBEAT,
        batch: int = REPLAY_BATCH,
        subscriber_buffer: int | None = None,
    ) -> None:
        self._feed = feed
        self._log = log
        self._project_id = project_id
        self._since = since
        self._heartbeat = heartbeat
        self._batch = batch
        self._buffer = subscriber_buffer
        self.last_seq = 0
        """The seq of the last event this stream sent (its high-water mark)."""
        self.head = 0
        """The feed's seq when the subscription was taken: later seqs arrive live."""

    def subscribe(self) -> Subscription:
        """Take the live subscription. Must happen before ``run`` reads the replay."""
        # Without ``since`` the stream is live-only: it starts at the feed's cursor, the
        # last seq the feed had published, so a resync names a seq to replay from.
        self.head = self._feed.cursor
        self.last_seq = self._since if self._since is not None else self.head
        return self._feed.subscribe(self._project_id, buffer=self._buffer)

    async def run(self, sub: Subscription, emit: Emit) -> None:
        await emit(CONNECTED)
        if self._since is not None:
            await self._resync_if_discontinuous(emit)
            await self._replay(emit)
        while True:
            event: ChangeEvent | None = None
            try:
                with trio.move_on_after(self._heartbeat):
                    event = await sub.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                break
            if event is None:
                await emit(PING)
                continue
            # Send whatever else is already waiting in the same write: one write per event
            # cannot keep up with a busy daemon, and the subscriber would fall behind.
            frames = []
            for ready in (event, *sub.receive_ready(self._batch)):
                if ready.seq > self.last_seq:  # the replay already sent the rest
                    frames.append(event_frame(ready))
                    self.last_seq = ready.seq
            if frames:
                await emit(b"".join(frames))
        if sub.lagged:
            await emit(resync_frame(ResyncOut(last_seq=self.last_seq)))

    async def _resync_if_discontinuous(self, emit: Emit) -> None:
        """Before the replay: when the log cannot continue after ``last_seq``, say so and
        move ``last_seq`` to where it can."""
        since = self.last_seq
        if since == 0:
            return  # from the start: whatever the log still holds is what was asked for
        # The log's own head, not only the feed's: a client may have replayed rows the
        # feed has not published yet.
        head = max(self.head, await self._log.max_change_seq())
        first = await self._log.changes_after(0, limit=1)
        oldest = first[0].seq if first else 0
        resume_after = oldest - 1 if oldest else head  # the seq before the oldest kept
        if since > head:
            reason, resume_after = ResyncReason.AHEAD, 0
        elif since < resume_after:
            reason = ResyncReason.EXPIRED
        else:
            return
        resync = ResyncOut(last_seq=resume_after, reason=reason, oldest_seq=oldest, head_seq=head)
        await emit(resync_frame(resync))
        self.last_seq = resume_after

    async def _replay(self, emit: Emit) -> None:
        while True:
            page = await self._log.changes_after(
                self.last_seq, limit=self._batch, project_id=self._project_id
            )
            frames = []
            for event in page:
                if event.seq > self.last_seq:
                    frames.append(event_frame(event))
                    self.last_seq = event.seq
            if frames:
                await emit(b"".join(frames))
            if len(page) < self._batch:
                return


class SSEResponse(Response):
    """An ASGI response that runs an ``EventStream`` until it ends, the client leaves or
    the daemon drains."""

    media_type = "text/event-stream"

    def __init__(self, stream: EventStream, drain: DrainSignal) -> None:
        # Response.__init__ would add ``content-length: 0``; a stream has none.
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        self._stream = stream
        self._drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self._stream.subscribe() as sub:
            head = (_HEAD_SEQ, b"%d" % self._stream.head)
            await send(
                {"type": "http.response.start", "status": 200, "headers": [*self.raw_headers, head]}
            )

            async def emit(chunk: bytes) -> None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

            async with trio.open_nursery() as nursery:

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    nursery.cancel_scope.cancel()

                async def watch_drain() -> None:
                    await self._drain.wait()
                    nursery.cancel_scope.cancel()

                async def produce() -> None:
                    try:
                        await self._stream.run(sub, emit)
                    except OSError:
                        log.debug("event stream: the client went away")
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch_disconnect)
                nursery.start_soon(watch_drain)
                nursery.start_soon(produce)
        with trio.move_on_after(1, shield=True):
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                log.debug("event stream: the client went away before the end")


__all__ = [
    "DEFAULT_HEARTBEAT",
    "DrainSignal",
    "EventStream",
    "SSEResponse",
    "event_frame",
    "event_out",
    "resync_frame",
]
