"""Dashboard benchmark (not a test): ``python bench/dashboard_bench.py [--sessions N]
[--changes N] [--reps N] [--quick]``.

On a temp file database (WAL, synchronous=NORMAL) seeded with ``--sessions`` (1,000)
sessions over 4 projects: a third with an open PR and two to four checks (some failing,
with CI trackers from real reactions), some waiting for input, some idle, some killed.

(a) Server-side board render: the work of ``GET /ui/frag/board`` for all projects (the
    bulk SQLite reads, the cards and zones, the Jinja render of every card), p50/p99 over
    ``--reps`` renders. Same-run baselines: the same board read through the per-session
    port reader (``StoreBoardReads``: what the board would cost on the store's own
    methods), and ``LifecycleManager.list()`` (what ``GET /api/v1/sessions`` reads, with no
    checks or trackers). Target: p99 < 100 ms.
(b) In a real browser (Debian's chromium through Playwright): the daemon's composition (the
    SQLite store, lifecycle manager, change feed, the app with the dashboard, hypercorn's
    trio worker on 127.0.0.1:0; no tmux, outbox dispatcher or reaper) runs in a child
    process over the seeded database. Chromium opens the signed-in board of every session;
    this process posts ``--changes`` (200) activity reports, paced 100 ms apart, each
    moving one card between Working and Needs you. Per change:

    - commit: the child wraps ``store.on_commit`` (called right after COMMIT) and stamps
      the wall clock with the change log's max seq (read on its own connection); a change's
      commit is the first whose max seq reached its event's seq;
    - card in the DOM: a MutationObserver in the page stamps ``performance.timeOrigin +
      performance.now()`` when the card's new fragment lands in its new column;
    - SSE: a subscriber thread here follows ``GET /api/v1/events`` and stamps each frame as
      it parses it.

    All three are wall-clock stamps on one machine, so they subtract. Printed: commit → card
    p50/p99 (target p99 < 250 ms) beside commit → SSE p50/p99, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final, cast

import httpx
import msgspec
import trio
from api_bench import NoSessions  # a sibling script: benchmarks run as `python bench/<name>.py`
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework

from adapters.http import ApiServices, TokenAuthority, create_app
from adapters.http.dashboard import DashboardServices
from adapters.http.dashboard.reads import StoreBoardReads
from adapters.http.dashboard.security import BrowserAuth
from adapters.http.dashboard.sqlite_reads import open_sqlite_board_reads
from adapters.http.dashboard.templating import CARD_HTML, render
from adapters.http.dashboard.views import build_board, build_card
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from orchestrator.api import API_PREFIX
from orchestrator.changefeed import ChangeFeed
from orchestrator.clock import SystemClock
from orchestrator.domain.model import (
    ActivitySignal,
    ActivityState,
    CheckStatus,
    CIState,
    PRCheck,
    PRObservation,
    SessionId,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.domain.records import Project
from orchestrator.lifecycle.manager import LifecycleManager

PROJECTS: Final = 4
MOVERS: Final = 50
"""Sessions without a PR that the browser phase moves between Working and Needs you."""
_MAX_SEQ: Final = "SELECT seq FROM sqlite_sequence WHERE name = 'change_log'"


# --- seeding ---------------------------------------------------------------------------------


async def seed(store: SqliteStore, manager: LifecycleManager, count: int) -> list[SessionId]:
    """``count`` sessions; returns the ids of the movers (live, no PR, working)."""
    clock = SystemClock()
    now = clock.now()
    for p in range(PROJECTS):
        await store.upsert_project(Project(id=f"p{p}", path=f"/repos/p{p}", registered_at=now))
    ids = [
        (await store.create_session(f"p{n % PROJECTS}", now=now, issue_id=str(n))).id
        for n in range(count)
    ]

    async def shape(n: int, sid: SessionId) -> None:
        prompt = f"Task {n}: make the thing faster\nwith details"
        await manager.on_spawn_completed(
            sid, SpawnOutcome(branch=f"b/{sid}", runtime_handle_id=sid, prompt=prompt)
        )

        async def report(state: ActivityState) -> None:
            signal = ActivitySignal(state=state, timestamp=clock.now())
            await manager.apply_activity_signal(sid, signal)

        await report(ActivityState.ACTIVE)
        if n % 3 == 0:
            checks = tuple(
                PRCheck(
                    name=f"check-{k}",
                    commit=f"c{n}",
                    status=CheckStatus.FAILED if k == 0 and n % 2 else CheckStatus.PASSED,
                    url=f"https://ci.example/{n}/{k}",
                    log_tail="E assert 1 == 2\n" * 20,
                )
                for k in range(2 + n % 3)
            )
            ci = CIState.FAILING if n % 2 else CIState.PASSING
            url = f"https://github.com/acme/p/pull/{n}"
            await manager.apply_pr_observation(
                sid, PRObservation(url=url, number=n, ci=ci, checks=checks)
            )
        elif n % 7 == 1:
            await report(ActivityState.WAITING_INPUT)
        elif n % 7 == 2:
            await report(ActivityState.IDLE)
        elif n % 11 == 4:
            await manager.on_kill_requested(sid, TerminationReason.MANUALLY_KILLED)

    async with trio.open_nursery() as nursery:
        for n, sid in enumerate(ids):
            nursery.start_soon(shape, n, sid)
    movers = [sid for n, sid in enumerate(ids) if n % 3 and n % 7 not in (1, 2) and n % 11 != 4]
    return movers[:MOVERS]


@asynccontextmanager
async def engine(path: Path) -> AsyncIterator[tuple[SqliteStore, LifecycleManager]]:
    async with open_sqlite_store(path) as store, trio.open_nursery() as nursery:
        manager = LifecycleManager(store, clock=SystemClock())
        await nursery.start(manager.run)
        yield store, manager
        nursery.cancel_scope.cancel()


# --- (a) server-side render ------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _board_html(facts: list[Any], now: Any) -> str:
    board = build_board(build_card(f) for f in facts)
    return render("_board.html", board=board, now=now, project="", projects=[], agents=())


async def render_phase(
    path: Path, sessions: int, reps: int
) -> tuple[list[SessionId], dict[str, list[float]]]:
    async with engine(path) as (store, manager):
        movers = await seed(store, manager, sessions)
        timings: dict[str, list[float]] = {
            "cold": [],
            "warm": [],
            "per-session": [],
            "api list": [],
        }
        port_reads = StoreBoardReads(store)
        async with open_sqlite_board_reads(path) as bulk:
            now = SystemClock().now()
            html_bytes = 0
            for rep in range(reps):  # interleaved, so drift hits every variant alike
                CARD_HTML.clear()
                start = time.perf_counter()
                html_bytes = len(_board_html(await bulk.card_facts(None), now))
                timings["cold"].append(time.perf_counter() - start)
                start = time.perf_counter()
                _board_html(await bulk.card_facts(None), now)
                timings["warm"].append(time.perf_counter() - start)
                if rep % 5 == 0:  # the slow baselines, less often
                    CARD_HTML.clear()
                    start = time.perf_counter()
                    _board_html(await port_reads.card_facts(None), now)
                    timings["per-session"].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    await manager.list()
                    timings["api list"].append(time.perf_counter() - start)
        print(
            f"(a) board render, {sessions} sessions, {reps} reps, "
            f"{html_bytes / 1024:.0f} KiB of HTML (load average {os.getloadavg()[0]:.1f})"
        )
        labels = {
            "cold": "bulk, cold",
            "warm": "bulk, warm",
            "per-session": "per-session",
            "api list": "api list",
        }
        for name, values in timings.items():
            print(
                f"    {labels[name]:<12} p50 {_pct(values, 0.5) * 1000:7.1f} ms   "
                f"p99 {_pct(values, 0.99) * 1000:7.1f} ms   (n={len(values)})"
            )
        ratio = statistics.median(timings["per-session"]) / statistics.median(timings["cold"])
        verdict = "ok" if _pct(timings["cold"], 0.99) < 0.100 else "OVER"
        print(f"    per-session / bulk cold: {ratio:.1f}x;  target cold p99 < 100 ms: {verdict}")
        print("    (cold: every card rendered; warm: cards unchanged since the last render)")
        return movers, timings


# --- (b) the child server --------------------------------------------------------------------


def _reply(message: object) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def server_child(path: str) -> None:
    """The app with the dashboard on 127.0.0.1:0 over ``path``; replies its address, token
    and a login path; on stdin EOF stops and replies the commits ``[[wall ns, max seq]]``."""
    async with engine(Path(path)) as (store, manager), open_sqlite_board_reads(path) as reads:
        clock = SystemClock()
        feed = ChangeFeed(store)
        seq_reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        commits: list[tuple[int, int]] = []

        def on_commit() -> None:
            stamp = time.time_ns()
            feed.notify()
            commits.append((stamp, int(seq_reader.execute(_MAX_SEQ).fetchone()[0])))

        store.on_commit = on_commit
        auth = TokenAuthority.generate()
        services = ApiServices(
            store=store,
            lifecycle=manager,
            sessions=NoSessions(),
            changefeed=feed,
            auth=auth,
            clock=clock,
        )
        browser = BrowserAuth(auth.token, clock)
        dashboard = DashboardServices(reads=reads, store=store, browser=browser, agents=("bench",))
        config = HypercornConfig()
        config.bind = ["127.0.0.1:0"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(feed.run)
            app = cast("ASGIFramework", create_app(services, dashboard))
            binds: list[str] = await nursery.start(
                partial(serve, app, config, shutdown_trigger=shutdown.wait)
            )
            token, _ = browser.issue_login_token()
            _reply({"url": binds[0], "token": auth.token, "login": f"/login?token={token}"})
            stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
            while await stdin.receive_some():
                pass
            feed.close()
            shutdown.set()
        seq_reader.close()
        _reply({"commits": commits})


# --- (b) the browser phase -------------------------------------------------------------------

_OBSERVER = """
window.__seen = [];
new MutationObserver((records) => {
  const stamp = performance.timeOrigin + performance.now();
  for (const record of records) for (const node of record.addedNodes) {
    if (node.nodeType === 1 && node.classList.contains("card")) {
      window.__seen.push([node.dataset.session, node.dataset.zone, stamp]);
    }
  }
}).observe(document.getElementById("board"), {childList: true, subtree: true});
"""


class _Subscriber(threading.Thread):
    """Follows the event stream; ``frames`` holds (seq, type, session, wall ns at parse)."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.frames: list[tuple[int, str, str, int]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with (
            httpx.Client(trust_env=False, timeout=httpx.Timeout(5, read=None)) as client,
            client.stream("GET", f"{self.url}{API_PREFIX}/events", headers=headers) as response,
        ):
            self.ready.set()
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line and not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                    continue
                if "data" in fields:
                    data = msgspec.json.decode(fields["data"])
                    stamp = time.time_ns()
                    self.frames.append((data["seq"], data["type"], data["sessionId"], stamp))
                fields = {}


def browser_phase(path: Path, movers: list[SessionId], changes: int, pace: float) -> None:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("ORCHESTRATOR_CHROMIUM") or "/usr/bin/chromium"
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    hello = json.loads(child.stdout.readline())
    url, token = hello["url"], hello["token"]
    subscriber = _Subscriber(url, token)
    subscriber.start()
    subscriber.ready.wait(10)
    posted: list[tuple[SessionId, str, int]] = []
    states: dict[SessionId, ActivityState] = {}
    with sync_playwright() as playwright, httpx.Client(base_url=url, trust_env=False) as api:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        start = time.perf_counter()
        page.goto(url + hello["login"])
        page.wait_for_selector("#conn[data-state=live]")
        load = time.perf_counter() - start
        page.evaluate(_OBSERVER)
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(changes):
            sid = movers[i % len(movers)]
            state = (
                ActivityState.WAITING_INPUT
                if states.get(sid) is not ActivityState.WAITING_INPUT
                else ActivityState.ACTIVE
            )
            states[sid] = state
            zone = "needs_you" if state is ActivityState.WAITING_INPUT else "working"
            sent = time.time_ns()
            response = api.post(
                f"{API_PREFIX}/sessions/{sid}/activity",
                json={"state": state.value},
                headers=headers,
            )
            assert response.status_code == 204, response.text
            posted.append((sid, zone, sent))
            time.sleep(pace)
        time.sleep(1.0)
        seen: list[list[Any]] = page.evaluate("window.__seen")
        browser.close()
    subscriber.stop.set()
    child.stdin.close()
    commits = [tuple(c) for c in json.loads(child.stdout.readline())["commits"]]
    child.wait(10)
    _report_browser(posted, seen, subscriber.frames, commits, load, pace)


def _report_browser(
    posted: list[tuple[SessionId, str, int]],
    seen: list[list[Any]],
    frames: list[tuple[int, str, str, int]],
    commits: list[tuple[int, int]],
    load: float,
    pace: float,
) -> None:
    updates: dict[str, list[tuple[int, str, int]]] = {}
    for seq, kind, sid, stamp in frames:
        if kind == "session_updated":
            updates.setdefault(sid, []).append((seq, kind, stamp))
    dom_ms: list[float] = []
    sse_ms: list[float] = []
    missing = 0
    used: dict[str, int] = {}
    for sid, zone, sent in posted:
        index = used.get(sid, 0)
        used[sid] = index + 1
        frame = updates.get(sid, [])[index] if index < len(updates.get(sid, [])) else None
        if frame is None:
            missing += 1
            continue
        seq, _, sse_stamp = frame
        commit = next((stamp for stamp, top in commits if top >= seq), None)
        landed = next(
            (s[2] for s in seen if s[0] == sid and s[1] == zone and s[2] * 1e6 >= sent), None
        )
        if commit is None or landed is None:
            missing += 1
            continue
        dom_ms.append(landed - commit / 1e6)
        sse_ms.append((sse_stamp - commit) / 1e6)
    print(
        f"(b) browser, {len(posted)} changes paced {pace * 1000:.0f} ms; board load {load * 1000:.0f} ms"
    )
    print(
        f"    commit -> card in DOM  p50 {_pct(dom_ms, 0.5):6.1f} ms   p99 {_pct(dom_ms, 0.99):6.1f} ms   (n={len(dom_ms)})"
    )
    print(
        f"    commit -> SSE frame    p50 {_pct(sse_ms, 0.5):6.1f} ms   p99 {_pct(sse_ms, 0.99):6.1f} ms"
    )
    if dom_ms and sse_ms:
        ratio = statistics.median(dom_ms) / max(statistics.median(sse_ms), 1e-3)
        verdict = "ok" if _pct(dom_ms, 0.99) < 250 else "OVER"
        print(f"    DOM / SSE (p50): {ratio:.1f}x;  target DOM p99 < 250 ms: {verdict}")
    if missing:
        print(f"    {missing} changes were not matched (no event, commit or DOM update)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--pace", type=float, default=0.1)
    parser.add_argument("--quick", action="store_true", help="200 sessions, 40 changes, 10 reps")
    parser.add_argument("--no-browser", action="store_true", help="only the server-side phase")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        trio.run(server_child, args.child)
        return
    if args.quick:
        args.sessions, args.changes, args.reps = 200, 40, 10
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        movers, _ = trio.run(render_phase, path, args.sessions, args.reps)
        if not args.no_browser:
            browser_phase(path, movers, args.changes, args.pace)


if __name__ == "__main__":
    main()
