"""Session-listing benchmark (not a test): ``python bench/listing_bench.py [--reps N]``.

In one run, over one SQLite store holding 1,000 sessions in 10 projects, each with a PR
(a tenth with a second, merged PR; every third with an unresolved review comment):

(a) the per-session path ``GET /api/v1/sessions`` took: ``list_sessions`` and then one
    ``pr_facts_for_session`` query per session;
(b) ``list_session_page`` with ``limit=1000``: the page and its PR facts in two queries;
(c) the same 1,000 sessions walked in pages of 100 by cursor.

Prints the median milliseconds of each and the ratio a/b. All three list the same
sessions with the same PR facts (checked).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio

from adapters.sqlite.store import SqliteStore, open_sqlite_store
from orchestrator.domain.model import CIState, PRComment, PRFacts, PRObservation, SessionRecord
from orchestrator.domain.records import Project

SESSIONS = 1000
PROJECTS = 10
T0 = datetime(2026, 1, 1, tzinfo=UTC)

Listing = list[tuple[SessionRecord, PRFacts]]


async def _seed(store: SqliteStore) -> None:
    for p in range(PROJECTS):
        await store.upsert_project(Project(id=f"p{p}", path=f"/src/p{p}", registered_at=T0))
    for n in range(SESSIONS):
        record = await store.create_session(f"p{n % PROJECTS}", now=T0)
        comments = (PRComment(id="c1", author="ann", body="nit"),) if n % 3 == 0 else ()
        url = f"https://github.com/acme/app/pull/{n + 1}"
        observation = PRObservation(url=url, number=n + 1, ci=CIState.PASSING, comments=comments)
        await store.write_pr_observation(record.id, observation, T0 + timedelta(seconds=n))
        if n % 10 == 0:
            # A second, merged PR of the same session; its number is outside 1..SESSIONS so
            # it never names another session's PR (the store refuses a live owner's PR).
            merged_number = 100_000 + n
            merged_url = f"https://github.com/acme/app/pull/{merged_number}"
            merged = PRObservation(url=merged_url, number=merged_number, merged=True)
            await store.write_pr_observation(record.id, merged, T0 + timedelta(seconds=n + 1))


async def per_session(store: SqliteStore) -> Listing:
    return [(r, await store.pr_facts_for_session(r.id)) for r in await store.list_sessions()]


async def one_page(store: SqliteStore) -> Listing:
    page = await store.list_session_page(limit=SESSIONS)
    return [(item.record, item.pr) for item in page.items]


async def pages_of_100(store: SqliteStore) -> Listing:
    listed: Listing = []
    cursor = None
    while True:
        page = await store.list_session_page(limit=100, cursor=cursor)
        listed += [(item.record, item.pr) for item in page.items]
        if page.next_cursor is None:
            return listed
        cursor = page.next_cursor


async def _time(store: SqliteStore, read: Callable[[SqliteStore], Awaitable[Listing]]) -> float:
    started = time.perf_counter()
    await read(store)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="timed runs of each (median)")
    args = parser.parse_args()
    configs = (
        ("(a) list_sessions + pr_facts_for_session each", per_session),
        ("(b) list_session_page(limit=1000)", one_page),
        ("(c) list_session_page, pages of 100", pages_of_100),
    )

    async def run() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as tmp:
            async with open_sqlite_store(Path(tmp) / "listing.db") as store:
                await _seed(store)
                expected = await per_session(store)
                for name, read in configs:
                    if await read(store) != expected:
                        raise AssertionError(f"{name}: a different listing")
                times: dict[str, list[float]] = {name: [] for name, _ in configs}
                for _ in range(args.reps):
                    for name, read in configs:
                        times[name].append(await _time(store, read))
        return {name: statistics.median(values) for name, values in times.items()}

    medians = trio.run(run)
    print(f"{SESSIONS} sessions with PRs, {args.reps} runs each (median)")
    base = medians[configs[1][0]]
    for name, ms in medians.items():
        print(f"{name:<48} {ms:8.1f} ms")
    ratio = medians[configs[0][0]] / base
    print(f"listing 1,000 sessions: one page {base:.1f} ms, {ratio:.1f}x faster than per-session")


if __name__ == "__main__":
    main()
