"""HTTP API benchmark (not a test): ``python bench/api_bench.py [--seconds S] [--reps N] [--quick]``.

In one run, on temp file databases (WAL, synchronous=NORMAL) each seeded with 500 sessions
marked spawned (alive, with a handle), and every signal a real transition (each session
alternates ``idle``/``active``; one state dict per run follows every session):

(a) HTTP: the daemon's composition (SQLite store, lifecycle manager, change feed, the
    Starlette app served by hypercorn's trio worker on 127.0.0.1:0; no tmux, outbox
    dispatcher or reaper, which is why it is composed here and not ``orchestrator start``:
    that needs tmux and git worktrees to spawn 500 sessions, and has no commit hook) in a
    child process; C = 16 and 64 workers in this process, each an ``httpx.AsyncClient``
    holding one keep-alive connection and a disjoint share of the sessions, all opened
    before the clock starts, post ``POST /api/v1/sessions/{id}/activity`` with the daemon
    token flat out. Signals/s and p50/p99 request latency after a 0.5 s warm-up; each
    process's CPU (share of a core, and µs per request), the server loop's lag (how late a
    task woken by a 1 ms timer runs: a pass of the run queue), and the writer's mean batch
    (ops per transaction). Same-run baseline for the HTTP stack: ``GET /healthz`` at 16.
(b) In-process: the same composition without HTTP, C trio tasks calling
    ``LifecycleManager.apply_activity_signal`` on the same kind of work; signals/s and the
    ratio a/b (what the HTTP layer costs).
(c) Commit → SSE delivery: one subscriber in a third process follows ``GET /api/v1/events``
    over loopback (httpx streaming) while this process posts activity over HTTP at a paced
    200/s, a paced 1,000/s (8 workers) and flat out (16 workers). Latency = the time the
    subscriber has parsed a frame (its data JSON decoded) minus the time the commit that
    wrote the event was acknowledged.

    Commit time, without touching product code: the server wraps ``store.on_commit``, which
    the group-commit writer calls on the trio thread right after COMMIT, as it wakes the
    batch's callers. In the SSE phases the wrapper records
    ``time.monotonic_ns()`` and the change log's max seq (``sqlite_sequence``, read through
    its own read-only connection); an event's commit time is that of the first commit whose
    max seq reached the event's seq. The subscriber stamps ``time.monotonic_ns()`` too:
    CLOCK_MONOTONIC is one system-wide clock on Linux, so stamps from the two processes
    subtract. Also shown, as a cross-check that needs no hook: the client's wall clock
    minus the event's ``createdAt`` (the engine's clock read before it queues the write, so
    it also counts the writer queue and the commit: an upper bound). To split the latency,
    the server also wraps its ASGI app's ``send`` on the event stream and stamps each frame
    as the stream hands it to hypercorn (the server's share); the subscriber counts the
    frames per socket read (1.00 = one frame per send).

    Why separate processes: hooks, the CLI and UIs read the stream from other processes.
    In one process the subscriber's parsing and the load generator would share the
    server's trio loop and GIL, and the figures would measure that contention instead.

(d) Listing: a server child seeded with 1,000 sessions, half of them with a failing PR
    (posted over HTTP first); one client asks ``GET /api/v1/sessions?limit=1000`` (every
    session with its PR facts and derived status, one page) back to back. p50/p99 request
    latency after the warm-up; target p99 < 50 ms.

(e) Adoption: the boot reconcile (``SessionManager.reconcile`` with the configured reaper
    concurrency and probe timeout) of ``--adoption-sessions`` (1,000) live sessions, each
    a ``sleep`` pane on a private tmux socket, by a fresh engine over the seeded store (a
    restart). Same-run baseline: the same reconcile probing each session with its own tmux
    call (what it did before it read all panes with one). Needs tmux; skipped without it.

Targets (docs/design.md, "Performance"): SSE p99 < 10 ms, listing p99 < 50 ms; the
reference (Go) engine polls its change log every 100 ms, so its p99 ≈ 100 ms. Medians over ``--reps`` for rates; latency percentiles pool
every rep's samples. Consistency checks: each phase's change log grows by at least one row
per acknowledged post; the subscriber gets every seq of each SSE phase exactly once, in
order (a subscriber the server drops for lagging reconnects with ``Last-Event-ID``; the
drops are counted, and the replayed events count with their full latency). ``--profile``
adds the server's cProfile (cumulative, product functions) during the flat-out HTTP phase
at the highest concurrency (first rep).
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import io
import itertools
import json
import logging
import os
import pstats
import shutil
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

import httpx
import msgspec
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework
from starlette.types import Message, Receive, Scope, Send

from adapters.http import ApiServices, TokenAuthority, create_app
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from adapters.tmux import TmuxRuntime, TmuxServer
from orchestrator.api import API_PREFIX, RESYNC_EVENT
from orchestrator.changefeed import ChangeFeed
from orchestrator.cleanup import CleanupReport, Reclaimed
from orchestrator.clock import SystemClock
from orchestrator.config import ReaperConfig
from orchestrator.domain.errors import ConflictError
from orchestrator.domain.model import (
    ActivitySignal,
    ActivityState,
    SessionId,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.domain.records import Project
from orchestrator.lifecycle.manager import LifecycleManager, SessionView
from orchestrator.ports import Runtime, RuntimeHandle, RuntimeProbe, RuntimeSpec
from orchestrator.sessions import SessionManager, SpawnRequest

SESSIONS = 500
ADOPTION_SESSIONS = 1000
PROJECTS = 10
CONCURRENCY = (16, 64)
SSE_LOADS = (200, 1000, None)  # signals/s; None: flat out
SSE_PACED_WORKERS = 8
SSE_FLAT_WORKERS = 16
WARMUP = 0.5
REFERENCE_P99_MS = 100.0
TARGET_P99_MS = 10.0
LISTING_SESSIONS = 1000
LISTING_TARGET_P99_MS = 50.0
_MAX_SEQ = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'change_log'), 0)"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Post = Callable[[SessionId, ActivityState], Awaitable[None]]
OpenPoster = Callable[[], AbstractAsyncContextManager[Post]]


# --- the composition (server child and in-process runs) -------------------------------------


@dataclass
class _Stack:
    store: SqliteStore
    manager: LifecycleManager
    feed: ChangeFeed
    clock: SystemClock
    ids: list[SessionId]


@asynccontextmanager
async def _running(path: Path, sessions: int) -> AsyncIterator[_Stack]:
    """Store, engine and change feed running on ``path``, seeded with spawned sessions."""
    async with open_sqlite_store(path, synchronous="NORMAL") as store:
        clock = SystemClock()
        manager = LifecycleManager(store, clock=clock)
        feed = ChangeFeed(store)
        store.on_commit = feed.notify
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            await nursery.start(feed.run)
            ids = await _seed(store, manager, clock, sessions)
            try:
                yield _Stack(store, manager, feed, clock, ids)
            finally:
                feed.close()
                nursery.cancel_scope.cancel()


async def _seed(
    store: SqliteStore, manager: LifecycleManager, clock: SystemClock, count: int
) -> list[SessionId]:
    now = clock.now()
    for p in range(PROJECTS):
        await store.upsert_project(Project(id=f"p{p}", path=f"/repos/p{p}", registered_at=now))
    ids: list[SessionId] = []

    async def create(project: str) -> None:
        ids.append((await store.create_session(project, now=now)).id)

    async def spawned(sid: SessionId) -> None:  # what a completed spawn leaves
        await manager.on_spawn_completed(
            sid, SpawnOutcome(runtime_handle_id=sid, runtime_name="tmux")
        )

    async with trio.open_nursery() as nursery:
        for n in range(count):
            nursery.start_soon(create, f"p{n % PROJECTS}")
    async with trio.open_nursery() as nursery:
        for sid in ids:
            nursery.start_soon(spawned, sid)
    return sorted(ids)


class NoSessions:
    """The API's session commands, unused here (activity and events only)."""

    async def spawn(self, request: SpawnRequest, /) -> SessionView:
        raise ConflictError("spawn: not in the benchmark")

    async def kill(self, session_id: SessionId, reason: TerminationReason, /) -> bool:
        raise ConflictError("kill: not in the benchmark")

    async def restore(
        self, session_id: SessionId, /, *, agent: str | None = None, fresh: bool = False
    ) -> SessionView:
        raise ConflictError("restore: not in the benchmark")

    async def send(self, session_id: SessionId, message: str, /) -> object:
        raise ConflictError("send: not in the benchmark")

    async def cleanup(
        self, *, session_id: SessionId | None = None, dry_run: bool = False
    ) -> CleanupReport:
        raise ConflictError("cleanup: not in the benchmark")

    async def remove(self, session_id: SessionId, /) -> Reclaimed:
        raise ConflictError("rm: not in the benchmark")

    async def check_project_path(self, path: str, /) -> None:
        raise ConflictError("project add: not in the benchmark")


# --- child processes ------------------------------------------------------------------------


class _Control:
    """Line commands on stdin (EOF ends), read without blocking the trio loop."""

    def __init__(self) -> None:
        self._stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        self._buffer = b""

    async def readline(self) -> str | None:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some()
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode().strip()


def _reply(message: object) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def server_child(path: str, sessions: int) -> None:
    """The API on 127.0.0.1:0 over ``path``. Answers ``stats`` (and ``record``, which starts
    the commit stamps, ``prof-on``, ``prof-off``) on stdin; on EOF stops and replies with the commit log ``[[monotonic ns, max seq]]`` and
    the time each event frame was handed to hypercorn ``[[seq, monotonic ns]]``."""
    async with _running(Path(path), sessions) as stack:
        feed, store = stack.feed, stack.store
        reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        commits: list[tuple[int, int]] = []
        sent: list[tuple[int, int]] = []
        lags: list[float] = []

        recording = False

        def on_commit() -> None:
            if recording:
                stamp = time.monotonic_ns()
                feed.notify()
                commits.append((stamp, int(reader.execute(_MAX_SEQ).fetchone()[0])))
            else:
                feed.notify()

        store.on_commit = on_commit
        auth = TokenAuthority.generate()
        services = ApiServices(
            store=store,
            lifecycle=stack.manager,
            sessions=NoSessions(),
            changefeed=feed,
            auth=auth,
            clock=stack.clock,
            version="bench",
        )
        inner = create_app(services)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            """The app, stamping each event frame as the stream hands it to hypercorn."""
            if scope["type"] != "http" or scope["path"] != f"{API_PREFIX}/events":
                await inner(scope, receive, send)
                return

            async def stamped(message: Message) -> None:
                stamp = time.monotonic_ns()
                lines = message.get("body", b"").split(b"\n")
                sent.extend((int(x[4:]), stamp) for x in lines if x.startswith(b"id: "))
                await send(message)

            await inner(scope, receive, stamped)

        async def probe() -> None:
            """Loop lag: how late a task woken by a 1 ms timer gets to run."""
            while True:
                due = trio.current_time() + 0.001
                await trio.sleep_until(due)
                lags.append(trio.current_time() - due)

        config = HypercornConfig()
        config.bind = ["127.0.0.1:0"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        shutdown = trio.Event()
        profiler = cProfile.Profile()
        async with trio.open_nursery() as http:
            binds: list[str] = await http.start(
                partial(serve, cast("ASGIFramework", app), config, shutdown_trigger=shutdown.wait)
            )
            probing = trio.CancelScope()

            async def run_probe() -> None:
                with probing:
                    await probe()

            http.start_soon(run_probe)
            _reply({"url": binds[0], "token": auth.token, "ids": stack.ids})
            control = _Control()
            while (command := await control.readline()) not in (None, "stop"):
                answer: dict[str, Any] = {}
                if command == "record":
                    recording = True
                elif command == "prof-on":
                    profiler.enable()
                elif command == "prof-off":
                    profiler.disable()
                    text = io.StringIO()
                    stats = pstats.Stats(profiler, stream=text).sort_stats("cumulative")
                    stats.print_stats(r"/(orchestrator|adapters)/|msgspec/structs|http_stream", 25)
                    answer["profile"] = text.getvalue()
                answer |= {
                    "batches": store.writer.batches,
                    "ops": store.writer.ops,
                    "cpu": time.process_time(),
                    "lag_ms": [_pct(lags, 0.5) * 1000, _pct(lags, 0.99) * 1000],
                }
                lags.clear()
                _reply(answer)
            probing.cancel()
            feed.close()  # end the event streams before hypercorn waits on them
            shutdown.set()
        reader.close()
        _reply({"commits": commits, "sent": sent})


class _EventData(msgspec.Struct, rename="camel"):
    seq: int
    created_at: datetime


async def subscriber_child(url: str, token: str) -> None:
    """Follow the event stream as a client should: after a ``resync`` (the server dropped
    it for lagging) reconnect with ``Last-Event-ID`` and replay. Reply ``ready`` once
    connected; on stdin EOF reply the frames ``[[seq, monotonic ns at parse, wall ns at
    parse - createdAt ns, read no.]]`` and the seqs at which it was dropped."""
    frames: list[tuple[int, int, int, int]] = []
    resyncs: list[int] = []
    decoder = msgspec.json.Decoder(_EventData)
    reads = 0

    async def follow_once(client: httpx.AsyncClient, last: int | None) -> bool:
        """One connection; True if it ended with a resync."""
        nonlocal reads
        headers = {"authorization": f"Bearer {token}"}
        if last is not None:
            headers["last-event-id"] = str(last)
        async with client.stream("GET", f"{API_PREFIX}/events", headers=headers) as response:
            if response.status_code != 200:
                raise RuntimeError(f"events: HTTP {response.status_code}")
            buffer = b""
            async for chunk in response.aiter_raw():
                reads += 1
                buffer += chunk
                while (end := buffer.find(b"\n\n")) >= 0:
                    frame, buffer = buffer[:end], buffer[end + 2 :]
                    if frame.startswith(b":"):
                        if frame == b": connected" and last is None:
                            _reply({"ready": True})
                        continue
                    kind, data = b"", b""
                    for line in frame.split(b"\n"):
                        if line.startswith(b"data: "):
                            data += line[6:]
                        elif line.startswith(b"event: "):
                            kind = line[7:]
                    if kind == RESYNC_EVENT.encode():
                        resyncs.append(frames[-1][0] if frames else 0)
                        return True
                    event = decoder.decode(data)
                    mono, wall = time.monotonic_ns(), time.time_ns()
                    created = (event.created_at - _EPOCH) // timedelta(microseconds=1) * 1000
                    frames.append((event.seq, mono, wall - created, reads))
        return False

    async def follow(client: httpx.AsyncClient) -> None:
        last: int | None = None
        while await follow_once(client, last):
            last = frames[-1][0] if frames else 0

    timeout = httpx.Timeout(10.0, read=None)
    async with (
        httpx.AsyncClient(base_url=url, trust_env=False, timeout=timeout) as client,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(follow, client)
        await _Control().readline()
        nursery.cancel_scope.cancel()
    _reply({"frames": frames, "resyncs": resyncs})


_CHILD = """
import sys, trio
sys.path.insert(0, {root!r})
from bench.api_bench import {func}
trio.run({func}, *{args!r})
"""


class _Child:
    """A child process running one of the ``*_child`` functions, spoken to by lines."""

    def __init__(self, func: str, *args: object) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        code = _CHILD.format(root=root, func=func, args=args)
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"child {self.process.args!r} exited: {self.process.wait()}")
        message: dict[str, Any] = json.loads(line)
        return message

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def finish(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.close()
        message = self.read()
        self.process.wait(timeout=30)
        return message


# --- load -----------------------------------------------------------------------------------


@dataclass
class Load:
    posted: int = 0
    """Acknowledged posts, warm-up included."""
    counted: int = 0
    """Acknowledged posts started after the warm-up."""
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    window_ns: tuple[int, int] = (0, 0)
    """The measured window on CLOCK_MONOTONIC."""

    @property
    def rate(self) -> float:
        return self.counted / self.seconds


async def drive(
    open_poster: OpenPoster,
    ids: list[SessionId],
    idle: dict[SessionId, bool],
    *,
    workers: int,
    seconds: float,
    rate: float | None = None,
) -> Load:
    """``workers`` tasks, each owning ``ids[i::workers]``, flipping each session in turn:
    flat out, or paced to ``rate`` signals/s in all (a worker that falls behind resumes
    its schedule from now, without a burst)."""
    if workers > len(ids):
        raise ValueError("more workers than sessions")
    load = Load(seconds=seconds)
    go = trio.Event()
    start = warm_until = stop_at = 0.0

    async def worker(index: int, *, task_status: trio.TaskStatus[None]) -> None:
        mine = ids[index::workers]
        interval = workers / rate if rate else 0.0
        async with open_poster() as post:
            task_status.started()
            await go.wait()
            next_at = start + (index / rate if rate else 0.0)
            while True:
                for sid in mine:
                    if rate:
                        now = trio.current_time()
                        if next_at > now:
                            await trio.sleep_until(next_at)
                        elif now - next_at > interval:
                            next_at = now
                        next_at += interval
                    began = trio.current_time()
                    if began >= stop_at:
                        return
                    idle[sid] = not idle[sid]
                    await post(sid, ActivityState.IDLE if idle[sid] else ActivityState.ACTIVE)
                    load.posted += 1
                    if began >= warm_until:
                        load.latencies.append(trio.current_time() - began)
                        load.counted += 1

    async with trio.open_nursery() as nursery:
        for index in range(workers):  # every client is open before the clock starts
            await nursery.start(worker, index)
        start = trio.current_time()
        warm_until = start + WARMUP
        stop_at = warm_until + seconds
        mono = time.monotonic_ns()
        load.window_ns = (mono + int(WARMUP * 1e9), mono + int((WARMUP + seconds) * 1e9))
        go.set()
    return load


def http_poster(url: str, token: str) -> OpenPoster:
    tls = ssl.create_default_context()  # unused on http://, but each client would build one
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    @asynccontextmanager
    async def open_poster() -> AsyncIterator[Post]:
        async with httpx.AsyncClient(
            base_url=url,
            headers=headers,
            trust_env=False,
            timeout=30,
            limits=limits,
            verify=tls,
        ) as client:

            async def post(sid: SessionId, state: ActivityState) -> None:
                body = msgspec.json.encode({"state": state, "timestamp": datetime.now(UTC)})
                response = await client.post(f"{API_PREFIX}/sessions/{sid}/activity", content=body)
                if response.status_code != 204:
                    raise RuntimeError(f"activity {sid}: HTTP {response.status_code}")

            yield post

    return open_poster


def healthz_poster(url: str) -> OpenPoster:
    """``GET /healthz`` instead of a post: the HTTP stack's floor on the same server."""
    tls = ssl.create_default_context()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    @asynccontextmanager
    async def open_poster() -> AsyncIterator[Post]:
        async with httpx.AsyncClient(
            base_url=url, trust_env=False, timeout=30, limits=limits, verify=tls
        ) as client:

            async def get(sid: SessionId, state: ActivityState) -> None:
                response = await client.get("/healthz")
                if response.status_code != 200:
                    raise RuntimeError(f"healthz: HTTP {response.status_code}")

            yield get

    return open_poster


def engine_poster(stack: _Stack) -> OpenPoster:
    @asynccontextmanager
    async def open_poster() -> AsyncIterator[Post]:
        async def post(sid: SessionId, state: ActivityState) -> None:
            signal = ActivitySignal(state=state, timestamp=stack.clock.now())
            await stack.manager.apply_activity_signal(sid, signal)

        yield post

    return open_poster


# --- phases ---------------------------------------------------------------------------------


@dataclass
class RatePhase:
    load: Load
    server_cpu: float = float("nan")
    """CPU seconds the server used in the phase (warm-up included), like ``client_cpu``."""
    client_cpu: float = float("nan")
    batch: float = float("nan")
    """Mean ops per writer transaction."""
    lag_ms: tuple[float, float] = (float("nan"), float("nan"))
    """The server's loop lag, p50 and p99."""
    profile: str = ""

    @property
    def wall(self) -> float:
        return self.load.seconds + WARMUP

    def us_per(self, cpu: float) -> float:
        return cpu / max(1, self.load.posted) * 1e6


@dataclass
class SsePhase:
    load: Load
    head: tuple[int, int]
    lag_ms: tuple[float, float] = (float("nan"), float("nan"))
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    """Commit to the frame handed to hypercorn (the server's share of the latency)."""
    created_ms: list[float] = field(default_factory=list)
    frames: int = 0
    reads: int = 0
    """Socket reads of the subscriber that carried those frames."""
    drops: int = 0
    """Times the server dropped the subscriber for lagging (it reconnected and replayed)."""


@dataclass
class Rep:
    healthz: RatePhase | None = None
    http: dict[int, RatePhase] = field(default_factory=dict)
    engine: dict[int, RatePhase] = field(default_factory=dict)
    sse: list[SsePhase] = field(default_factory=list)
    profile: str = ""
    listing_ms: list[float] = field(default_factory=list)
    """``GET /sessions`` latencies at ``LISTING_SESSIONS`` sessions, one page."""


def _head(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute(_MAX_SEQ).fetchone()[0])


def _check_rows(what: str, before: int, after: int, posted: int) -> None:
    if after - before < posted:
        raise SystemExit(f"consistency ({what}): {after - before} change rows for {posted} posts")


def _rate_phase(
    server: _Child, run: Callable[[], Awaitable[Load]], *, profiling: bool = False
) -> RatePhase:
    before = server.ask("prof-on" if profiling else "stats")
    cpu = time.process_time()
    load = trio.run(run)
    cpu = time.process_time() - cpu
    after = server.ask("prof-off" if profiling else "stats")
    return RatePhase(
        load,
        server_cpu=after["cpu"] - before["cpu"],
        client_cpu=cpu,
        batch=(after["ops"] - before["ops"]) / max(1, after["batches"] - before["batches"]),
        lag_ms=tuple(after["lag_ms"]),
        profile=after.get("profile", ""),
    )


def run_server_phases(path: Path, sessions: int, seconds: float, *, profile: bool) -> Rep:
    rep = Rep()
    server = _Child("server_child", str(path), sessions)
    try:
        hello = server.read()
        url, token, ids = hello["url"], hello["token"], hello["ids"]
        idle = dict.fromkeys(ids, False)
        poster = http_poster(url, token)
        workers = CONCURRENCY[0]
        scratch = dict(idle)  # healthz changes nothing: keep the real state dict apart
        rep.healthz = _rate_phase(
            server,
            partial(drive, healthz_poster(url), ids, scratch, workers=workers, seconds=seconds),
        )
        for workers in CONCURRENCY:
            head = _head(path)
            profiling = profile and workers == CONCURRENCY[-1]
            run = partial(drive, poster, ids, idle, workers=workers, seconds=seconds)
            phase = rep.http[workers] = _rate_phase(server, run, profiling=profiling)
            _check_rows(f"HTTP, {workers} clients", head, _head(path), phase.load.posted)
            rep.profile = rep.profile or phase.profile
        server.ask("record")  # commit stamps from now on
        subscriber = _Child("subscriber_child", url, token)
        try:
            if not subscriber.read().get("ready"):
                raise SystemExit("subscriber: not connected")
            for rate in SSE_LOADS:
                workers = SSE_PACED_WORKERS if rate else SSE_FLAT_WORKERS
                head = _head(path)
                run = partial(drive, poster, ids, idle, workers=workers, seconds=seconds, rate=rate)
                rated = _rate_phase(server, run)
                load = rated.load
                rep.sse.append(SsePhase(load, (head, _head(path)), lag_ms=rated.lag_ms))
                _check_rows(f"SSE at {rate or 'flat out'}", head, _head(path), load.posted)
            time.sleep(0.5)  # let the last frames arrive
        finally:
            received = subscriber.finish()
    finally:
        logs = server.finish()
    _sse_latencies(rep.sse, received, logs["commits"], dict(logs["sent"]))
    return rep


def _sse_latencies(
    phases: list[SsePhase],
    received: dict[str, Any],
    commits: list[list[int]],
    sent: dict[int, int],
) -> None:
    resyncs: list[int] = received["resyncs"]
    frames: list[list[int]] = received["frames"]
    seqs = [f[0] for f in frames]
    if any(b <= a for a, b in itertools.pairwise(seqs)):
        raise SystemExit("consistency: SSE seqs out of order or repeated")
    commit_seqs = [seq for _, seq in commits]
    for phase in phases:
        low, high = phase.head
        mine = [f for f in frames if low < f[0] <= high]
        if [f[0] for f in mine] != list(range(low + 1, high + 1)):
            raise SystemExit(f"consistency: SSE got {len(mine)} of the seqs {low + 1}..{high}")
        start, stop = phase.load.window_ns
        reads = set()
        for seq, parsed_ns, created_ns, read in mine:
            at = bisect.bisect_left(commit_seqs, seq)
            if at == len(commits):
                raise SystemExit(f"no commit recorded for seq {seq}")
            committed_ns = commits[at][0]
            if start <= committed_ns < stop:
                phase.latencies_ms.append((parsed_ns - committed_ns) / 1e6)
                phase.server_ms.append((sent[seq] - committed_ns) / 1e6)
                phase.created_ms.append(created_ns / 1e6)
                phase.frames += 1
                reads.add(read)
        phase.reads = len(reads)
        phase.drops = sum(1 for seq in resyncs if low <= seq <= high)


async def time_listing(url: str, token: str, ids: list[SessionId], seconds: float) -> list[float]:
    """Give every other session a failing PR, then list every session in one page, back to
    back, for ``seconds`` after the warm-up; the latencies in ms."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, trust_env=False) as client:
        for n, sid in enumerate(ids[::2]):
            pr = {"url": f"https://github.com/o/r/pull/{n + 1}", "number": n + 1, "ci": "failing"}
            response = await client.post(f"{API_PREFIX}/sessions/{sid}/pr", json=pr)
            response.raise_for_status()
        latencies: list[float] = []
        measured_from = time.monotonic() + WARMUP
        while (now := time.monotonic()) < measured_from + seconds:
            started = time.perf_counter()
            response = await client.get(
                f"{API_PREFIX}/sessions", params={"limit": str(LISTING_SESSIONS)}
            )
            elapsed = time.perf_counter() - started
            if response.status_code != 200 or len(msgspec.json.decode(response.content)) != len(
                ids
            ):
                raise SystemExit(f"GET /sessions: HTTP {response.status_code}, not every session")
            if now >= measured_from:
                latencies.append(elapsed * 1000)
    return latencies


def run_listing_phase(path: Path, seconds: float) -> list[float]:
    server = _Child("server_child", str(path), LISTING_SESSIONS)
    try:
        hello = server.read()
        return trio.run(time_listing, hello["url"], hello["token"], hello["ids"], seconds)
    finally:
        server.finish()


def run_engine_phases(path: Path, sessions: int, seconds: float) -> dict[int, RatePhase]:
    async def run() -> dict[int, RatePhase]:
        results: dict[int, RatePhase] = {}
        async with _running(path, sessions) as stack:
            idle = dict.fromkeys(stack.ids, False)
            writer = stack.store.writer
            for workers in CONCURRENCY:
                head = await stack.store.max_change_seq()
                cpu = time.process_time()
                batches, ops = writer.batches, writer.ops
                load = await drive(
                    engine_poster(stack), stack.ids, idle, workers=workers, seconds=seconds
                )
                cpu = time.process_time() - cpu
                await stack.store.flush()
                rows = await stack.store.max_change_seq()
                _check_rows(f"in-process, {workers} tasks", head, rows, load.posted)
                results[workers] = RatePhase(
                    load,
                    server_cpu=cpu,
                    batch=(writer.ops - ops) / max(1, writer.batches - batches),
                )
        return results

    return trio.run(run)


# --- adoption at boot -----------------------------------------------------------------------


class _ProbeEach:
    """The tmux runtime without its read-all: the reconcile probes each session."""

    def __init__(self, runtime: Runtime) -> None:
        self.name = runtime.name
        self._runtime = runtime

    async def create(self, spec: RuntimeSpec) -> RuntimeHandle:
        return await self._runtime.create(spec)

    async def probe(self, handle: RuntimeHandle) -> RuntimeProbe:
        return await self._runtime.probe(handle)

    async def destroy(self, handle: RuntimeHandle) -> None:
        await self._runtime.destroy(handle)


def _unused(*_: object) -> Any:
    raise AssertionError("not used by the reconcile")


async def _seed_live(path: Path, tmux: str, socket: Path, count: int) -> None:
    """``count`` spawned sessions in ``path``, each a ``sleep`` pane on ``socket``."""
    async with open_sqlite_store(path, synchronous="NORMAL") as store:
        clock = SystemClock()
        manager = LifecycleManager(store, clock=clock)
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            await store.upsert_project(
                Project(id="p0", path="/repos/p0", registered_at=clock.now())
            )
            ids = [(await store.create_session("p0", now=clock.now())).id for _ in range(count)]
            for first in range(0, count, 50):  # one tmux call per 50 panes
                argv = [tmux, "-S", str(socket), "-f", os.devnull]
                for n, sid in enumerate(ids[first : first + 50]):
                    argv += [";"] * bool(n) + ["new-session", "-d", "-s", sid, "sleep 3600"]
                await trio.run_process(argv)
            for sid in ids:
                outcome = SpawnOutcome(runtime_handle_id=sid, runtime_name="tmux")
                await manager.on_spawn_completed(sid, outcome)
            nursery.cancel_scope.cancel()


async def _adopt(path: Path, runtime: Runtime) -> tuple[float, int]:
    """Seconds the boot reconcile took over ``runtime``, and how many it adopted."""
    reaper = ReaperConfig()
    async with open_sqlite_store(path, synchronous="NORMAL") as store:
        clock = SystemClock()
        manager = LifecycleManager(store, clock=clock)
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            sessions = SessionManager(
                store,
                manager,
                runtime=runtime,
                workspace=_unused,  # type: ignore[arg-type]
                agents=_unused,
                messenger=_unused,  # type: ignore[arg-type]
                clock=clock,
                hook_environment=_unused,
            )
            started = time.perf_counter()
            report = await sessions.reconcile(
                inventory=None,
                probe_timeout=reaper.probe_timeout.total_seconds(),
                concurrency=reaper.concurrency,
            )
            elapsed = time.perf_counter() - started
            nursery.cancel_scope.cancel()
    return elapsed, len(report.adopted)


def run_adoption(count: int) -> None:
    """Print the adoption line (d)."""
    tmux = shutil.which("tmux")
    if tmux is None:
        print("\nadoption: skipped (no tmux)")
        return
    # Under /tmp: a tmux socket path must stay short.
    socket_dir = Path(tempfile.mkdtemp(prefix="orch-bench-", dir="/tmp"))
    socket = socket_dir / "tmux.sock"
    path = socket_dir / "adoption.db"
    try:
        trio.run(_seed_live, path, tmux, socket, count)
        runtime = TmuxRuntime(TmuxServer(socket))
        each, each_adopted = trio.run(_adopt, path, _ProbeEach(runtime))
        read_all, adopted = trio.run(_adopt, path, runtime)
    finally:
        subprocess.run([tmux, "-S", str(socket), "kill-server"], check=False, capture_output=True)
        shutil.rmtree(socket_dir, ignore_errors=True)
    if adopted != count or each_adopted != count:
        raise SystemExit(f"consistency: adopted {adopted} and {each_adopted} of {count} sessions")
    reaper = ReaperConfig()
    print(
        f"\nadoption at boot, {count:,} live sessions (reaper concurrency {reaper.concurrency}): "
        f"{read_all:.2f} s reading all panes at once; {each:.2f} s probing each; "
        f"{each / read_all:.1f}x"
    )


# --- report ---------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _rate_row(label: str, phases: list[RatePhase], *, client: bool = True) -> float:
    rate = _med([p.load.rate for p in phases])
    lat = [x * 1000 for p in phases for x in p.load.latencies]
    server = f"{_med([p.server_cpu / p.wall for p in phases]):>4.0%} "
    server += f"{_med([p.us_per(p.server_cpu) for p in phases]):>6.0f}"
    lag = f"{_med([p.lag_ms[1] for p in phases]):>7.2f}" if client else f"{'-':>7}"
    cli = (
        f"{_med([p.client_cpu / p.wall for p in phases]):>4.0%} "
        f"{_med([p.us_per(p.client_cpu) for p in phases]):>6.0f}"
        if client
        else f"{'-':>11}"
    )
    print(
        f"{label:<22} | {rate:>7,.0f} {_pct(lat, 0.5):>7.2f} {_pct(lat, 0.99):>7.2f} | "
        f"{server} {lag} | {cli} | {_med([p.batch for p in phases]):>5.1f}"
    )
    return rate


def report(reps: list[Rep], sessions: int, seconds: float) -> None:
    print(
        f"\n{sessions} sessions, {seconds:g} s per phase after a {WARMUP:g} s warm-up, "
        f"median of {len(reps)} rep(s); latency percentiles pool the reps. CPU: share of one "
        "core, and CPU µs per request (warm-up included)"
    )
    print(
        f"{'':<22} | {'sig/s':>7} {'p50 ms':>7} {'p99 ms':>7} | {'server CPU':>11} "
        f"{'lag p99':>7} | {'client CPU':>11} | {'batch':>5}"
    )
    _rate_row(f"GET /healthz, {CONCURRENCY[0]} cli", [r.healthz for r in reps if r.healthz])
    http = {c: _rate_row(f"POST activity, {c} cli", [r.http[c] for r in reps]) for c in CONCURRENCY}
    engine = {
        c: _rate_row(f"in-process, {c} tasks", [r.engine[c] for r in reps], client=False)
        for c in CONCURRENCY
    }
    print(
        "HTTP/in-process: "
        + ", ".join(f"{c} concurrent {http[c] / engine[c]:.2f}" for c in CONCURRENCY)
    )
    listing = [x for r in reps for x in r.listing_ms]
    listing_p99 = _pct(listing, 0.99)
    print(
        f"GET /sessions, {LISTING_SESSIONS:,} sessions in one page, 1 client: "
        f"{len(listing)} requests, p50 {_pct(listing, 0.5):.2f} ms, p99 {listing_p99:.2f} ms; "
        f"target p99 < {LISTING_TARGET_P99_MS:g} ms: "
        f"{'met' if listing_p99 < LISTING_TARGET_P99_MS else 'NOT met'}"
    )
    print(
        "\nCommit -> SSE frame parsed by a subscriber in its own process (loopback); "
        f"reference: {REFERENCE_P99_MS:g} ms poll, p99 ~ {REFERENCE_P99_MS:g} ms"
    )
    print(
        f"{'load':<22} | {'sig/s':>6} {'req p99':>7} | {'events':>6} {'p50':>7} {'p99':>7} "
        f"{'max':>7} | {'srv p99':>7} {'fr/read':>7} {'lag p99':>7} {'drops':>5} | "
        f"{'createdAt':>9} | ref/ours"
    )
    verdicts: list[str] = []
    for i, rate in enumerate(SSE_LOADS):
        phases = [r.sse[i] for r in reps]
        lat = [x for p in phases for x in p.latencies_ms]
        p99 = _pct(lat, 0.99)
        label = (
            f"{rate}/s, {SSE_PACED_WORKERS} clients"
            if rate
            else f"flat out, {SSE_FLAT_WORKERS} clients"
        )
        print(
            f"{label:<22} | {_med([p.load.rate for p in phases]):>6,.0f} "
            f"{_pct([x * 1000 for p in phases for x in p.load.latencies], 0.99):>7.2f} | "
            f"{len(lat):>6} {_pct(lat, 0.5):>7.2f} {p99:>7.2f} {max(lat, default=float('nan')):>7.2f} | "
            f"{_pct([x for p in phases for x in p.server_ms], 0.99):>7.2f} "
            f"{sum(p.frames for p in phases) / max(1, sum(p.reads for p in phases)):>7.2f} "
            f"{_med([p.lag_ms[1] for p in phases]):>7.2f} {sum(p.drops for p in phases):>5} | "
            f"{_pct([x for p in phases for x in p.created_ms], 0.99):>9.2f} | "
            f"{REFERENCE_P99_MS / p99:.1f}x"
        )
        verdicts.append(f"{label}: {'met' if p99 < TARGET_P99_MS else 'NOT met'}")
    print(
        "(ms; srv = commit to the frame handed to hypercorn; fr/read = frames per socket read "
        "of the subscriber; lag = the server loop's lag; drops = resyncs, each followed by a "
        "reconnect and replay; createdAt = client wall clock minus the event's createdAt, p99)"
    )
    print(f"target SSE p99 < {TARGET_P99_MS:g} ms: " + "; ".join(verdicts))
    profile = next((r.profile for r in reps if r.profile), "")
    if profile:
        print(f"\nserver profile, POST activity flat out at {CONCURRENCY[-1]} clients (cProfile):")
        print(profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--quick", action="store_true", help="1 rep of 1 s on 100 sessions")
    parser.add_argument("--profile", action="store_true", help="cProfile the server once")
    parser.add_argument("--adoption-sessions", type=int, default=ADOPTION_SESSIONS)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.reps, args.sessions = 1.0, 1, 100
        args.adoption_sessions = 100

    print(f"load average at start: {_loadavg()} ({os.cpu_count()} CPUs)")
    reps: list[Rep] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for n in range(args.reps):
            rep = run_server_phases(
                directory / f"api{n}.db",
                args.sessions,
                args.seconds,
                profile=args.profile and n == 0,
            )
            rep.engine = run_engine_phases(directory / f"engine{n}.db", args.sessions, args.seconds)
            rep.listing_ms = run_listing_phase(directory / f"listing{n}.db", args.seconds)
            reps.append(rep)
    report(reps, args.sessions, args.seconds)
    run_adoption(args.adoption_sessions)
    print(f"load average at end: {_loadavg()}")


if __name__ == "__main__":
    main()
