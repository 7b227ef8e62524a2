"""Reaper sweep benchmark (not a test): ``python bench/reaper_bench.py [--sessions N]
[--reps R] [--tmux N]``.

Builds N running sessions (default 10,000) in a ``MemoryStore`` behind the real
``LifecycleManager``, every pane scripted alive, and measures in the same run:

(a) a bare loop awaiting ``ScriptedRuntime.probe(handle)`` once per session, sequentially;
(b) one full ``Reaper.sweep()``: list the running sessions, probe each under the concurrency
    limit and its own timeout, and report every reading to the lifecycle manager. The first
    sweep after boot also loads every session's actor ("cold"); later sweeps find them
    cached ("warm").

It prints each duration (median of ``--reps``, interleaved) and the ratio to (a).
Target: a 10,000-session sweep under 1 s.

``--tmux N`` does the same over N real tmux sessions (``sleep``) on a private socket in a
temporary directory, through ``adapters.tmux.TmuxRuntime``; only that server is killed at
the end. Sessions are seeded straight into the store's tables (the store's own
``create_session`` copies every table per write, which is quadratic at this size); every
other step goes through the engine's API.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.memory import MemoryStore, Script, ScriptedRuntime
from orchestrator.clock import SystemClock
from orchestrator.domain.model import (
    Activity,
    ActivityState,
    Lifecycle,
    SessionMetadata,
    SessionRecord,
    SessionState,
)
from orchestrator.domain.records import Project
from orchestrator.lifecycle.manager import LifecycleManager
from orchestrator.ports import Runtime, RuntimeHandle
from orchestrator.reaper import Reaper

TARGET_SECONDS = 1.0


def seed(
    store: MemoryStore, count: int, *, runtime_name: str, handle: Callable[[str], str]
) -> list[RuntimeHandle]:
    """``count`` working, alive sessions of project ``bench`` with handles on ``runtime_name``."""
    now = datetime.now(UTC)
    tables = store._t  # bulk setup, see the module docstring
    tables.projects["bench"] = Project(id="bench", path="/repos/bench", registered_at=now)
    handles: list[RuntimeHandle] = []
    for num in range(1, count + 1):
        session_id = f"bench-{num}"
        handle_id = handle(session_id)
        tables.sessions[session_id] = SessionRecord(
            id=session_id,
            project_id="bench",
            num=num,
            lifecycle=Lifecycle(
                state=SessionState.WORKING,
                is_alive=True,
                activity=Activity(state=ActivityState.ACTIVE, last_activity_at=now),
            ),
            metadata=SessionMetadata(
                branch=f"orchestrator/{session_id}",
                workspace_path=f"/work/{session_id}",
                runtime_handle_id=handle_id,
                runtime_name=runtime_name,
            ),
            created_at=now,
            updated_at=now,
        )
        handles.append(RuntimeHandle(id=handle_id, runtime_name=runtime_name))
    return handles


async def timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await action()
    return time.perf_counter() - start, result


async def bare_loop(runtime: Runtime, handles: Sequence[RuntimeHandle]) -> int:
    for handle in handles:
        await runtime.probe(handle)
    return len(handles)


def line(label: str, seconds: float, baseline: float) -> str:
    ratio = seconds / baseline if baseline > 0 else float("inf")
    return f"  {label:<34} {seconds * 1000:10.1f} ms   {ratio:8.2f}x bare loop"


async def measure(
    runtime: Runtime,
    handles: list[RuntimeHandle],
    store: MemoryStore,
    *,
    reps: int,
    concurrency: int,
    probe_timeout: float,
) -> dict[str, list[float]]:
    clock = SystemClock()
    figures: dict[str, list[float]] = {"bare": [], "cold": [], "warm": []}
    for _ in range(reps):
        async with trio.open_nursery() as nursery:
            manager = LifecycleManager(store, clock=clock)
            await nursery.start(manager.run)
            reaper = Reaper(
                manager,
                {runtime.name: runtime},
                clock,
                concurrency=concurrency,
                probe_timeout=probe_timeout,
            )
            bare, probed = await timed(lambda: bare_loop(runtime, handles))
            cold, report = await timed(reaper.sweep)
            warm, again = await timed(reaper.sweep)
            for sweep in (report, again):
                alive = len(sweep.observed) - len(sweep.failed)
                assert probed == len(handles) == alive, (probed, alive, sweep.failed[:5])
                assert not sweep.apply_errors
                assert not sweep.skipped
            assert store.commits == 0, "an alive reading of a working session writes nothing"
            figures["bare"].append(bare)
            figures["cold"].append(cold)
            figures["warm"].append(warm)
            nursery.cancel_scope.cancel()
    return figures


def report(title: str, figures: dict[str, list[float]], *, target: bool) -> None:
    bare = statistics.median(figures["bare"])
    cold = statistics.median(figures["cold"])
    warm = statistics.median(figures["warm"])
    print(title)
    print(f"  {'bare loop: runtime.probe() each':<34} {bare * 1000:10.1f} ms")
    print(line("Reaper.sweep(), cold (first)", cold, bare))
    print(line("Reaper.sweep(), warm", warm, bare))
    if target:
        verdict = "PASS" if max(cold, warm) < TARGET_SECONDS else "MISS"
        print(f"  target: sweep < {TARGET_SECONDS:.0f} s -> {verdict}")


async def scripted(sessions: int, reps: int, concurrency: int) -> None:
    runtime = ScriptedRuntime()
    store = MemoryStore()
    handles = seed(store, sessions, runtime_name=runtime.name, handle=lambda s: f"{s}#1")
    for handle in handles:
        runtime.script[handle.id] = Script.ALIVE
    figures = await measure(
        runtime, handles, store, reps=reps, concurrency=concurrency, probe_timeout=5.0
    )
    report(
        f"{sessions:,} sessions, scripted runtime, concurrency {concurrency}, median of {reps}:",
        figures,
        target=True,
    )


async def tmux(panes: int, reps: int, concurrency: int) -> None:
    from adapters.tmux import TmuxRuntime, TmuxServer
    from orchestrator.ports import RuntimeSpec

    with tempfile.TemporaryDirectory(prefix="reaper-bench-") as tmp:
        server = TmuxServer(Path(tmp) / "tmux.sock")
        runtime = TmuxRuntime(server)
        try:
            handles = []
            for num in range(1, panes + 1):
                spec = RuntimeSpec(
                    session_id=f"bench-{num}",
                    workspace_path=tmp,
                    launch_command=("sleep", "3600"),
                )
                handles.append(await runtime.create(spec))
            store = MemoryStore()
            by_session = {h.id: h.id for h in handles}
            seed(store, panes, runtime_name=runtime.name, handle=lambda s: by_session[s])
            figures = await measure(
                runtime, handles, store, reps=reps, concurrency=concurrency, probe_timeout=5.0
            )
            report(
                f"{panes} real tmux panes, concurrency {concurrency}, median of {reps}:",
                figures,
                target=False,
            )
        finally:
            await server.kill_server()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--tmux", type=int, default=0, metavar="N", help="also sweep N real tmux panes"
    )
    args = parser.parse_args(argv)
    trio.run(scripted, args.sessions, args.reps, args.concurrency)
    if args.tmux:
        trio.run(tmux, args.tmux, max(1, min(args.reps, 3)), args.concurrency)


if __name__ == "__main__":
    main()
