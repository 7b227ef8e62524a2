"""Store write-path benchmark (not a test): ``python bench/store_bench.py [--quick]``.

Measures, in one run and on the same schema (migrations/0001_init.sql, CDC triggers on):

(a) raw ``sqlite3``: one ``BEGIN IMMEDIATE … COMMIT`` per session-state UPDATE, the
    ``sessions_cdc_update`` trigger writing one change_log row each;
(b) ``SqliteStore.commit`` through the group-commit writer with 1, 10, 100 and 1,000
    concurrent writers, each awaiting its durable ack before the next unit — the same
    UPDATE (state + activity, changed columns only) and one CDC row per unit;

and prints rows/s for each and the ratio b/a (target: ≥ 2.0 at 100 writers). Every
configuration runs ``--reps`` times, interleaved, on a fresh database of 1,000 sessions;
the median is reported. Each run is checked: change_log rows == committed units.

``--variants`` adds the measurements behind two design choices: the batch run in a worker
thread (``inline=False``) instead of inline on the trio thread, and a session UPDATE
executed through SQLAlchemy's ``Connection.execute`` instead of the driver cursor.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import sqlalchemy as sa
import trio

from adapters.sqlite import tables as t
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from adapters.sqlite.tables import encode_ts
from adapters.sqlite.writer import make_engine
from orchestrator.domain.model import (
    Activity,
    ActivityState,
    SessionRecord,
    SessionState,
)
from orchestrator.domain.records import CommitUnit, Project

SESSIONS = 1000
PROJECTS = 10
WRITERS = (1, 10, 100, 1000)
CHANGED = frozenset({"state", "activity"})
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


async def _seed(store: SqliteStore) -> list[SessionRecord]:
    for p in range(PROJECTS):
        await store.upsert_project(Project(id=f"p{p}", path=f"/src/p{p}", registered_at=T0))

    async def create(project: str) -> None:
        await store.create_session(project, now=T0)

    async with trio.open_nursery() as nursery:
        for i in range(SESSIONS):
            nursery.start_soon(create, f"p{i % PROJECTS}")
    return await store.list_sessions()


def _seed_db(path: Path) -> list[str]:
    async def run() -> list[str]:
        async with open_sqlite_store(path) as store:
            return [r.id for r in await _seed(store)]

    return trio.run(run)


def _change_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM change_log WHERE event_type = 'session_updated'"
        ).fetchone()
    conn.close()
    return int(n)


# --- (a) raw sqlite3, one transaction per update ---------------------------------------------------

_RAW_UPDATE = (
    "UPDATE sessions SET session_state = ?, activity_state = ?, activity_last_at = ?, "
    "activity_source = ?, updated_at = ? WHERE id = ?"
)


def run_raw(path: Path, ids: list[str], duration: float) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        "busy_timeout=5000",
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
    ):
        conn.execute(f"PRAGMA {pragma}")
    cur = conn.cursor()
    flip = dict.fromkeys(ids, False)
    n = 0
    count = len(ids)
    deadline = time.perf_counter() + duration
    start = time.perf_counter()
    while True:
        sid = ids[n % count]
        working = flip[sid] = not flip[sid]
        stamp = encode_ts(_now())
        cur.execute("BEGIN IMMEDIATE")
        cur.execute(
            _RAW_UPDATE,
            (
                "working" if working else "idle",
                "active" if working else "idle",
                stamp,
                "none",
                stamp,
                sid,
            ),
        )
        cur.execute("COMMIT")
        n += 1
        if n % 256 == 0 and time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - start
    conn.close()
    if _change_rows(path) != n:
        raise AssertionError("raw: change_log rows != updates")
    return n / elapsed


# --- (b) the store's group-commit path ----------------------------------------------------------------


def _next(record: SessionRecord) -> SessionRecord:
    working = record.lifecycle.state is not SessionState.WORKING
    now = _now()
    return msgspec.structs.replace(
        record,
        lifecycle=msgspec.structs.replace(
            record.lifecycle,
            state=SessionState.WORKING if working else SessionState.IDLE,
            activity=Activity(
                state=ActivityState.ACTIVE if working else ActivityState.IDLE, last_activity_at=now
            ),
        ),
        updated_at=now,
    )


def run_store(
    path: Path, writers: int, duration: float, *, inline: bool = True
) -> tuple[float, float]:
    """rows/s and mean batch size."""

    async def run() -> tuple[float, float]:
        async with open_sqlite_store(path, inline=inline) as store:
            records = await store.list_sessions()
            shares = (
                [records[k::writers] for k in range(writers)] if writers <= len(records) else []
            )
            if not shares:
                raise ValueError("more writers than sessions")
            done = 0
            stop = False

            async def writer(share: list[SessionRecord]) -> None:
                nonlocal done
                i = 0
                while not stop:
                    rec = share[i % len(share)] = _next(share[i % len(share)])
                    await store.commit(
                        CommitUnit(
                            session_id=rec.id, at=rec.updated_at, session=rec, changed=CHANGED
                        )
                    )
                    done += 1
                    i += 1

            async with trio.open_nursery() as nursery:
                for share in shares:
                    nursery.start_soon(writer, share)
                await trio.sleep(0.3)  # warm-up
                base, batches0, ops0 = done, store.writer.batches, store.writer.ops
                start = time.perf_counter()
                await trio.sleep(duration)
                measured = done - base
                elapsed = time.perf_counter() - start
                batches, ops = store.writer.batches - batches0, store.writer.ops - ops0
                stop = True
            total = done
        if _change_rows(path) != total:
            raise AssertionError("store: change_log rows != committed units")
        return measured / elapsed, ops / max(batches, 1)

    return trio.run(run)


# --- variant: the statement path (driver cursor vs SQLAlchemy Connection.execute) ---------------------


def run_statement_paths(path: Path, ids: list[str], rows: int = 20_000) -> dict[str, float]:
    """µs per unit for one 256-unit transaction shape: SAVEPOINT + changed-column UPDATE +
    RELEASE, executed via the driver cursor or via SQLAlchemy Core ``Connection.execute``."""
    engine = make_engine(path)
    stmt = (
        sa.update(t.sessions)
        .where(t.sessions.c.id == sa.bindparam("b_id"))
        .values(
            session_state=sa.bindparam("s"),
            activity_state=sa.bindparam("a"),
            activity_last_at=sa.bindparam("at"),
            activity_source=sa.bindparam("src"),
            updated_at=sa.bindparam("u"),
        )
    )
    sql = str(stmt.compile(dialect=engine.dialect))
    results: dict[str, float] = {}
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        cur = raw.cursor()

        def params(i: int) -> tuple[str, str, str, str, str, str]:
            stamp = encode_ts(_now())
            s = ("working", "active") if i % 2 else ("idle", "idle")
            return (s[0], s[1], stamp, "none", stamp, ids[i % len(ids)])

        def driver(i: int) -> None:
            cur.execute("SAVEPOINT unit")
            cur.execute(sql, params(i))
            cur.execute("RELEASE unit")

        def core(i: int) -> None:
            p = params(i)
            cur.execute("SAVEPOINT unit")
            conn.execute(
                stmt, {"s": p[0], "a": p[1], "at": p[2], "src": p[3], "u": p[4], "b_id": p[5]}
            )
            cur.execute("RELEASE unit")

        for name, fn in (("driver cursor", driver), ("SQLAlchemy Core execute", core)):
            start = time.perf_counter()
            for first in range(0, rows, 256):
                with conn.begin():
                    for i in range(first, min(first + 256, rows)):
                        fn(i)
            results[name] = (time.perf_counter() - start) / rows * 1e6
    engine.dispose()
    return results


# --- main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    parser.add_argument("--reps", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument("--quick", action="store_true", help="1 rep of 1 s")
    parser.add_argument("--variants", action="store_true", help="also measure the design choices")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.reps = 1.0, 1

    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.db"
        ids = _seed_db(template)
        payload = template.read_bytes()
        runs = 0

        def fresh() -> Path:
            nonlocal runs
            runs += 1
            path = Path(tmp) / f"run{runs}.db"
            path.write_bytes(payload)
            return path

        def raw() -> tuple[float, float]:
            return run_raw(fresh(), ids, args.duration), 1.0

        def store(writers: int, *, inline: bool = True) -> Callable[[], tuple[float, float]]:
            return lambda: run_store(fresh(), writers, args.duration, inline=inline)

        configs: list[tuple[str, Callable[[], tuple[float, float]]]] = [
            ("(a) raw sqlite3, 1 txn/update", raw),
            *((f"(b) store, {p:>4} writers", store(p)) for p in WRITERS),
        ]
        if args.variants:
            configs += [
                (f"    store, {p:>4} writers, to_thread", store(p, inline=False)) for p in (10, 100)
            ]

        results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in configs}
        for _ in range(args.reps):
            for name, fn in configs:
                results[name].append(fn())

        base = statistics.median(r for r, _ in results[configs[0][0]])
        print(
            f"sqlite {sqlite3.sqlite_version}, synchronous=NORMAL, {SESSIONS} sessions, "
            f"{args.reps} x {args.duration:.1f}s per configuration (median)"
        )
        print(f"{'configuration':<40} {'rows/s':>10} {'b/a':>6} {'batch':>7}")
        for name, _ in configs:
            rate = statistics.median(r for r, _ in results[name])
            batch = statistics.median(b for _, b in results[name])
            print(f"{name:<40} {rate:>10,.0f} {rate / base:>6.2f} {batch:>7.1f}")
        ratio_100 = statistics.median(r for r, _ in results["(b) store,  100 writers"]) / base
        verdict = "meets" if ratio_100 >= 2.0 else "MISSES"
        print(f"ratio b/a at 100 writers = {ratio_100:.2f} ({verdict} the >= 2.0 target)")

        if args.variants:
            print("\nstatement path, µs per unit (SAVEPOINT + UPDATE + RELEASE, 256 per txn):")
            for name, us in run_statement_paths(fresh(), ids).items():
                print(f"  {name:<28} {us:6.1f}")


if __name__ == "__main__":
    main()
