"""Engine benchmark (not a test): ``python bench/engine_bench.py [--seconds S] [--reps N]``.

In one run, on the same schema and a file database (WAL, synchronous=NORMAL):

(a) raw ``sqlite3`` from one thread, one transaction per session update, writing what the
    engine writes for the same signal: the changed session columns (the CDC trigger adds
    the change_log row), and on every entry into ``idle`` the reaction tracker and the
    ``agent-idle`` outbox row; on leaving ``idle`` the tracker delete;
(b) the engine: ``LifecycleManager.apply_activity_signal`` over the SQLite store, from P
    concurrent producers (each owning a disjoint share of 1,000 sessions, alternating
    ``active``/``idle`` so every signal is a real transition, awaiting its durable ack);

and prints signals/s, the ratio b/a (median over reps of each rep's engine run over that
rep's baseline), and p50/p99 apply latency. Then, in a fresh process,
RSS with 10,000 sessions that have each received one message.
Targets (DESIGN §8): ratio ≥ 1.7 at 128 producers, p99 < 15 ms, 10k sessions < 100 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import trio

from adapters.sqlite.migrate import migrate
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from adapters.sqlite.tables import encode_ts
from adapters.sqlite.writer import make_engine
from orchestrator.clock import SystemClock
from orchestrator.domain.model import ActivitySignal, ActivityState, ReactionKey, SpawnOutcome
from orchestrator.domain.reactions import DEFAULT_REACTIONS
from orchestrator.domain.records import Project
from orchestrator.lifecycle.manager import EngineLimits, LifecycleManager
from orchestrator.metrics import CountingLifecycle, Metrics

SESSIONS = 1000
PROJECTS = 10
PRODUCERS = (16, 128, 1000)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _fresh_db(directory: Path, name: str) -> Path:
    path = directory / name
    engine = make_engine(path)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return path


async def _seed(store: SqliteStore, count: int) -> list[str]:
    now = datetime.now(UTC)
    for p in range(PROJECTS):
        await store.upsert_project(Project(id=f"p{p}", path=f"/repos/p{p}", registered_at=now))
    ids = []
    for n in range(count):
        record = await store.create_session(f"p{n % PROJECTS}", now=now)
        ids.append(record.id)
    return ids


# --- (a) raw sqlite3 baseline ------------------------------------------------------------

_UPDATE = (
    "UPDATE sessions SET session_state=?, activity_state=?, activity_last_at=?, "
    "activity_source=?, updated_at=? WHERE id=?"
)
_UPSERT_TRACKER = (
    "INSERT INTO reaction_trackers (session_id, key, reaction, attempts, first_at, escalated, seen)"
    " VALUES (?, 'entry', 'agent-idle', 1, ?, 0, '[]')"
    " ON CONFLICT (session_id, key) DO UPDATE SET reaction=excluded.reaction,"
    " attempts=excluded.attempts, first_at=excluded.first_at, escalated=0, seen='[]'"
)
_DELETE_TRACKER = "DELETE FROM reaction_trackers WHERE session_id=? AND key='entry'"
_INSERT_OUTBOX = (
    "INSERT OR IGNORE INTO outbox (dedup_key, session_id, project_id, action, reaction,"
    " event_type, priority, message, attempts, last_error, created_at)"
    " VALUES (?, ?, ?, 'send-to-agent', 'agent-idle', 'reaction.agent-idle', 'info', ?, 0, '', ?)"
)


def run_baseline(path: Path, ids: list[str], seconds: float) -> tuple[float, list[float]]:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "busy_timeout=5000",
    ):
        conn.execute(f"PRAGMA {pragma}")
    idle_message = DEFAULT_REACTIONS[ReactionKey.AGENT_IDLE].message
    cur = conn.cursor()
    latencies: list[float] = []
    done = 0
    flip = [False] * len(ids)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for i, sid in enumerate(ids):
            started = time.perf_counter()
            now = encode_ts(datetime.now(UTC))
            idle = flip[i] = not flip[i]
            state, activity = ("idle", "idle") if idle else ("working", "active")
            cur.execute("BEGIN IMMEDIATE")
            cur.execute(_UPDATE, (state, activity, now, "hook", now, sid))
            if idle:
                cur.execute(_UPSERT_TRACKER, (sid, now))
                project = sid.rsplit("-", 1)[0]
                cur.execute(
                    _INSERT_OUTBOX,
                    (f"{sid}/entry/agent-idle/{now}", sid, project, idle_message, now),
                )
            else:
                cur.execute(_DELETE_TRACKER, (sid,))
            cur.execute("COMMIT")
            latencies.append(time.perf_counter() - started)
            done += 1
            if time.perf_counter() >= deadline:
                break
    conn.close()
    return done / seconds, latencies


# --- (b) the engine ----------------------------------------------------------------------


async def run_engine(
    path: Path, producers: int, seconds: float, *, metrics: bool = False
) -> tuple[float, list[float], int]:
    async with open_sqlite_store(path, synchronous="NORMAL") as store:
        ids = [s.id for s in await store.list_sessions()]
        clock = SystemClock()
        manager = LifecycleManager(store, clock=clock, limits=EngineLimits(mailbox_size=4096))
        # With metrics, as the daemon wires them: batches observed, signals counted.
        signals: LifecycleManager | CountingLifecycle = manager
        if metrics:
            registry = Metrics()
            store.writer.observe_batch = registry.observe_batch
            signals = CountingLifecycle(manager, registry)
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            for sid in ids:  # what a completed spawn leaves: alive, with a handle
                await manager.on_spawn_completed(
                    sid, SpawnOutcome(runtime_handle_id=sid, runtime_name="tmux")
                )
            # As the daemon does once booted (imported here: the daemon's HTTP stack would
            # inflate the RSS figure, which is about sessions).
            from orchestrator.daemon import tune_gc

            tune_gc()
            latencies: list[float] = []
            counts = [0] * producers
            warm_until = time.perf_counter() + 0.5
            stop_at = warm_until + seconds

            async def produce(index: int) -> None:
                mine = ids[index::producers] if producers <= len(ids) else [ids[index % len(ids)]]
                idle = dict.fromkeys(mine, False)
                while True:
                    for sid in mine:
                        idle[sid] = not idle[sid]  # every signal is a real transition
                        state = ActivityState.IDLE if idle[sid] else ActivityState.ACTIVE
                        started = time.perf_counter()
                        if started >= stop_at:
                            return
                        await signals.apply_activity_signal(
                            sid, ActivitySignal(state=state, timestamp=clock.now())
                        )
                        ended = time.perf_counter()
                        if started >= warm_until:
                            latencies.append(ended - started)
                            counts[index] += 1

            async with trio.open_nursery() as producers_nursery:
                for index in range(producers):
                    producers_nursery.start_soon(produce, index)
            nursery.cancel_scope.cancel()
        changes = await store.max_change_seq()
    return sum(counts) / seconds, latencies, changes


def _settle() -> None:
    """Flush the previous run's dirty pages first, so their writeback does not stall the
    next run's commits."""
    os.sync()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


# --- RSS ---------------------------------------------------------------------------------

_RSS_CHILD = """
import sys, trio
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.engine_bench import rss_child
print(trio.run(rss_child, Path({path!r}), {count}))
"""


async def rss_child(path: Path, count: int) -> str:
    async with open_sqlite_store(path, synchronous="NORMAL") as store:
        ids = await _seed(store, count)
        clock = SystemClock()
        manager = LifecycleManager(store, clock=clock)
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            for sid in ids:
                await manager.apply_activity_signal(
                    sid, ActivitySignal(state=ActivityState.ACTIVE, timestamp=clock.now())
                )
            rss = _vm_rss_mib()
            cached = manager.cached_sessions
            nursery.cancel_scope.cancel()
    return json.dumps({"rss_mib": rss, "sessions": count, "cached": cached})


def _vm_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_rss(directory: Path, count: int) -> dict[str, float]:
    path = _fresh_db(directory, "rss.db")
    root = str(Path(__file__).resolve().parent.parent)
    code = _RSS_CHILD.format(root=root, path=str(path), count=count)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.5)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rss-sessions", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        baseline: list[float] = []
        engine: dict[int, list[tuple[float, list[float]]]] = {p: [] for p in PRODUCERS}
        for rep in range(args.reps):
            # Interleaved: each rep measures the baseline and then every engine setting, so a
            # slow patch of this shared box hits both sides of a rep's ratio.
            base_path = _fresh_db(directory, f"base{rep}.db")
            ids = trio.run(_seed_file, base_path)
            _settle()
            rate, _ = run_baseline(base_path, ids, args.seconds)
            baseline.append(rate)
            for producers in PRODUCERS:
                path = _fresh_db(directory, f"engine{rep}-{producers}.db")
                trio.run(_seed_file, path)
                _settle()
                rate, latencies, changes = trio.run(run_engine, path, producers, args.seconds)
                if changes < rate * args.seconds:
                    raise SystemExit(
                        f"consistency: {changes} change rows for {rate * args.seconds:.0f} signals"
                    )
                engine[producers].append((rate, latencies))
        base = statistics.median(baseline)
        print(
            f"(a) raw sqlite3, one txn per update: {base:,.0f} signals/s "
            f"(median of {args.reps}: {', '.join(f'{r:,.0f}' for r in baseline)})"
        )
        for producers in PRODUCERS:
            runs = engine[producers]
            rate = statistics.median(r for r, _ in runs)
            # The ratio of each rep's engine run to that rep's baseline, then the median.
            ratio = statistics.median(r / b for (r, _), b in zip(runs, baseline, strict=True))
            lat = [x for _, lats in runs for x in lats]
            print(
                f"(b) engine, {producers:>4} producers: {rate:,.0f} signals/s  "
                f"ratio b/a {ratio:.2f}  p50 {_pct(lat, 0.5):.2f} ms  p99 {_pct(lat, 0.99):.2f} ms"
            )
        compare_metrics(directory, args.reps, args.seconds)
        rss = measure_rss(directory, args.rss_sessions)
        print(
            f"RSS with {rss['sessions']:,.0f} sessions after one message each: "
            f"{rss['rss_mib']:.1f} MiB ({rss['cached']:,.0f} cached)"
        )


METRICS_PRODUCERS = 128


def compare_metrics(directory: Path, reps: int, seconds: float) -> None:
    """The engine with metrics off and on, interleaved per rep; the median of each rep's
    on/off ratio (target >= 0.95)."""
    rates: dict[bool, list[float]] = {False: [], True: []}
    for rep in range(reps):
        for metrics in (False, True):
            path = _fresh_db(directory, f"metrics{rep}-{metrics}.db")
            trio.run(_seed_file, path)
            _settle()
            rate, _, _ = trio.run(
                partial(run_engine, metrics=metrics), path, METRICS_PRODUCERS, seconds
            )
            rates[metrics].append(rate)
    ratio = statistics.median(on / off for off, on in zip(rates[False], rates[True], strict=True))
    print(
        f"(c) metrics, {METRICS_PRODUCERS} producers: off {statistics.median(rates[False]):,.0f} "
        f"signals/s, on {statistics.median(rates[True]):,.0f} signals/s  ratio on/off {ratio:.2f}"
    )


async def _seed_file(path: Path) -> list[str]:
    async with open_sqlite_store(path, synchronous="NORMAL") as store:
        return await _seed(store, SESSIONS)


if __name__ == "__main__":
    main()
