"""GitHub observer benchmark (not a test): ``python bench/scm_bench.py [--sessions N]
[--minutes M] [--naive-minutes K] [--quick]``.

N sessions (default 200), each with an open PR, in SQLite behind the real lifecycle
engine, and the fake GitHub (``tests/fakes/github``) served on loopback: real sockets, the
real provider, rate budget and ETag store. Time is trio's ``MockClock`` at the real rate
but skipping idle stretches, so an hour of polling takes seconds while the work itself
(requests, commits) counts at its real duration. The fake's rate limits follow that clock.

Measured in the same run, each with a token of its own:

(a) ours: ``SCMObserver`` at its default cadences (listing 30 s, CI guards 15/60/120 s,
    backstop 5 min), delivering to the engine;
(b) naive: every 30 s, for each PR, fetch the PR, its head's check runs and its review
    comments, unconditionally: the shape of a poller that asks per session.

Phases: a warm-up (discovery and first reads, not counted), then M minutes of steady state
(nothing changes), then M minutes in which 10% of the PRs change every minute (a check run
finishes, mostly green, sometimes red, sometimes after a push). The naive poller runs for
the first K minutes of each phase (its count does not depend on what changes).

It prints the requests GitHub charged to its primary rate limit (a 304 is free) per
PR-hour for both in both phases, their ratios, and for ours the time from each change in
the fake to the committed observation that shows it (p50, p99). Targets: steady state at
most 1 charged request per PR-hour, at least 100x fewer than naive, change-to-commit p99
within one settled guard interval plus 2 s. The last three lines are the summary.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
import trio
import trio.testing

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.github.auth import StaticToken
from adapters.github.budget import RateBudget
from adapters.github.client import GitHubClient
from adapters.github.etags import LruETagStore
from adapters.github.provider import GitHubProvider
from adapters.sqlite.store import open_sqlite_store
from orchestrator.clock import TrioClock
from orchestrator.config.schema import GitHubConfig
from orchestrator.daemon import ETAG_CAPACITY
from orchestrator.domain.model import PRObservation, SessionId, SpawnOutcome
from orchestrator.domain.records import Project
from orchestrator.lifecycle.manager import LifecycleManager
from orchestrator.scm import LifecycleSink, ObserverSettings, SCMObserver
from tests.fakes.github import FakeGitHub, serve_on_loopback
from tests.fakes.github.model import PullRequest
from tests.fakes.github.requestlog import LoggedRequest, RequestLog

EPOCH = 1_780_000_000.0
OURS, NAIVE = "ghp_bench_ours_000000000000000000000000", "ghp_bench_naive_00000000000000000000000"
NAIVE_TICK = 30.0
SETTINGS = ObserverSettings.of(GitHubConfig())  # the config file's defaults
TARGET_STEADY = 1.0
TARGET_RATIO = 100.0
TARGET_P99_MS = (SETTINGS.settled_interval + 2) * 1000


def epoch_now() -> float:
    return EPOCH + trio.current_time()


class VirtualEpoch:
    def now(self) -> float:
        return epoch_now()


class Tally(RequestLog):
    """Counts requests per token instead of keeping them (the naive poller makes tens of
    thousands); ``counting`` switches counting on and off."""

    def __init__(self) -> None:
        super().__init__()
        self.counting = False
        self.charged: Counter[str] = Counter()
        self.by_resource: Counter[tuple[str, str]] = Counter()
        self.sent: Counter[str] = Counter()

    def append(self, entry: LoggedRequest) -> None:
        if not self.counting or entry.token is None:
            return
        self.sent[entry.token] += 1
        if entry.charged:
            self.charged[entry.token] += 1
            self.by_resource[(entry.token, entry.resource)] += 1

    def reset(self) -> None:
        self.charged.clear()
        self.by_resource.clear()
        self.sent.clear()


@dataclass
class Changes:
    """Changes made in the fake, by session, waiting for the observation that shows them."""

    pending: dict[SessionId, list[tuple[str, float]]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def made(self, session_id: SessionId, marker: str) -> None:
        self.pending.setdefault(session_id, []).append((marker, trio.current_time()))

    def observed(self, session_id: SessionId, observation: PRObservation) -> None:
        names = {check.name for check in observation.checks}
        waiting = self.pending.get(session_id, [])
        now = trio.current_time()
        for marker, at in [w for w in waiting if w[0] in names]:
            self.latencies_ms.append((now - at) * 1000)
            waiting.remove((marker, at))


class TimingSink:
    def __init__(self, inner: LifecycleSink, changes: Changes) -> None:
        self.inner, self.changes = inner, changes

    async def observe_pr(self, session_id: SessionId, observation: PRObservation) -> None:
        await self.inner.observe_pr(session_id, observation)
        self.changes.observed(session_id, observation)  # durable from here on


async def naive_poller(api: str, prs: Sequence[PullRequest], *, until: float) -> None:
    """Every tick, for each PR: the PR, its head's check runs, its review comments."""
    headers = {"Authorization": f"Bearer {NAIVE}", "User-Agent": "naive-poller"}
    async with httpx.AsyncClient(
        base_url=api, headers=headers, trust_env=False, timeout=300
    ) as github:
        while trio.current_time() < until:
            tick = trio.current_time()
            for pr in prs:
                base = f"/repos/{pr.repo.full_name}"
                for path in (
                    f"{base}/pulls/{pr.number}",
                    f"{base}/commits/{pr.head_sha}/check-runs",
                    f"{base}/pulls/{pr.number}/comments",
                ):
                    for _ in range(2):  # one retry: a keep-alive connection may be closing
                        try:
                            await github.get(path)
                            break
                        except httpx.HTTPError:
                            continue
            await trio.sleep_until(tick + NAIVE_TICK)


async def change_some(
    fake: FakeGitHub, prs: dict[SessionId, PullRequest], changes: Changes, n: int
) -> None:
    """Over the next minute, at random moments, ``n`` PRs change: a new check run finishes
    on the head (mostly green, one in ten red), or the agent pushes and the new head's
    check finishes."""
    world = fake.world
    start = trio.current_time()
    moments = sorted(random.uniform(0, 60) for _ in range(n))
    for session_id, moment in zip(random.sample(sorted(prs), n), moments, strict=True):
        await trio.sleep_until(start + moment)
        pr = prs[session_id]
        marker = f"check-{random.randrange(10**12)}"
        roll = random.random()
        if roll < 0.1:
            world.push(pr)
        conclusion = "failure" if 0.1 <= roll < 0.2 else "success"
        world.add_check_run(pr, marker, conclusion=conclusion)
        changes.made(session_id, marker)


def per_pr_hour(count: int, prs: int, minutes: float) -> float:
    return count / prs / (minutes / 60)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(sessions: int, minutes: float, naive_minutes: float, warmup: float) -> None:
    random.seed(7)
    fake = FakeGitHub(VirtualEpoch())
    tally = Tally()
    fake.log = fake.gateway.log = tally
    world = fake.world
    for token, login in ((OURS, "daemon"), (NAIVE, "naive")):
        world.add_user(login, token=token)
        for resource in ("core", "graphql"):
            world.rate_limits.set_limit(login, resource, 10_000_000)  # neither may run dry
    author = world.add_user("agent")
    repo = world.create_repo("acme/app")
    changes = Changes()
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            open_sqlite_store(Path(tmp) / "bench.db") as store,
            serve_on_loopback(fake) as urls,
            trio.open_nursery() as nursery,
        ):
            clock = TrioClock(origin=datetime.fromtimestamp(epoch_now(), UTC))
            manager = LifecycleManager(store, clock=clock)
            await nursery.start(manager.run)
            await store.upsert_project(
                Project(
                    id="app",
                    path=tmp,
                    repo_origin_url="https://github.com/acme/app.git",
                    registered_at=clock.now(),
                )
            )
            prs: dict[SessionId, PullRequest] = {}
            for _ in range(sessions):
                record = await store.create_session("app", now=clock.now())
                branch = f"orchestrator/{record.id}"
                await manager.on_spawn_completed(
                    record.id,
                    SpawnOutcome(branch=branch, runtime_handle_id="-", runtime_name="none"),
                )
                pr = world.open_pr(repo, head_ref=branch, author=author)
                world.add_check_run(pr, "test", conclusion="success")
                prs[record.id] = pr
            budget = RateBudget(clock=epoch_now)
            client = GitHubClient(
                StaticToken(OURS), budget, api_url=urls.api, timeout=httpx.Timeout(300)
            )
            observer = SCMObserver(
                GitHubProvider(client),
                TimingSink(LifecycleSink(manager), changes),
                store,
                LruETagStore(ETAG_CAPACITY),
                clock,
                SETTINGS,
            )
            await nursery.start(observer.run)
            await trio.sleep(warmup * 60)
            found = observer.status()
            print(
                f"scm_bench: {sessions} PRs on the fake GitHub over loopback; "
                f"after {warmup:g} min {found.prs} tracked, {found.observations} delivered"
            )

            results: dict[str, tuple[int, int, Counter[tuple[str, str]]]] = {}
            for phase in ("steady", "changing"):
                tally.reset()
                tally.counting = True
                start = trio.current_time()
                nursery.start_soon(
                    partial(
                        naive_poller, urls.api, list(prs.values()), until=start + naive_minutes * 60
                    )
                )
                naive_charged = -1
                for minute in range(int(minutes)):
                    if phase == "changing":
                        await change_some(fake, prs, changes, max(1, sessions // 10))
                    await trio.sleep_until(start + (minute + 1) * 60)
                    if minute + 1 == int(naive_minutes):
                        naive_charged = tally.charged[NAIVE]
                tally.counting = False
                if naive_charged < 0:
                    naive_charged = tally.charged[NAIVE]
                results[phase] = (tally.charged[OURS], naive_charged, Counter(tally.by_resource))
            await trio.sleep(SETTINGS.settled_interval + 5)  # the last changes land
            await client.aclose()
            nursery.cancel_scope.cancel()

    print(f"{'phase':<22}{'ours':>12}{'naive':>12}{'ratio':>10}   (charged requests per PR-hour)")
    ratios: dict[str, float] = {}
    ours_per: dict[str, float] = {}
    for phase, label in (("steady", "steady"), ("changing", "10% changing/min")):
        ours, naive, by_resource = results[phase]
        ours_rate = per_pr_hour(ours, sessions, minutes)
        naive_rate = per_pr_hour(naive, sessions, naive_minutes)
        ratios[phase] = naive_rate / ours_rate if ours_rate else float("inf")
        ours_per[phase] = ours_rate
        split = ", ".join(
            f"{resource} {count}"
            for (token, resource), count in sorted(by_resource.items())
            if token == OURS
        )
        print(
            f"{label:<22}{ours_rate:>12.2f}{naive_rate:>12.1f}{ratios[phase]:>9.0f}x"
            f"   ours: {ours} in {minutes:g} min ({split}); naive: {naive} in {naive_minutes:g} min"
        )
    lat = changes.latencies_ms
    superseded = sum(len(w) for w in changes.pending.values())  # a push hid them first
    p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
    print(
        f"change-to-commit over {len(lat)} changes ({superseded} superseded by a push before seen): "
        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms (target <= {TARGET_P99_MS:.0f} ms)"
    )
    verdicts = [
        ("steady <= 1 per PR-hour", ours_per["steady"] <= TARGET_STEADY),
        (">= 100x fewer than naive", ratios["steady"] >= TARGET_RATIO),
        ("p99 within a guard interval + 2 s", p99 <= TARGET_P99_MS),
    ]
    print("targets: " + "; ".join(f"{what}: {'met' if ok else 'MISSED'}" for what, ok in verdicts))
    print(f"charged requests per PR-hour (steady, ours): {ours_per['steady']:.2f}")
    print(f"fewer requests than naive: {ratios['steady']:.0f}x")
    print(f"change-to-commit p99 ms: {p99:.0f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=60, help="virtual minutes per phase")
    parser.add_argument(
        "--naive-minutes", type=float, default=10, help="virtual minutes of naive polling"
    )
    parser.add_argument("--warmup", type=float, default=10, help="virtual minutes, not counted")
    parser.add_argument("--quick", action="store_true", help="50 sessions, 20-minute phases")
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.minutes, args.naive_minutes = 50, 20, 5
    # Real time while anything runs; a jump to the next deadline once all is idle for 1 ms
    # (a request in flight on loopback never is: its server side is always runnable).
    clock = trio.testing.MockClock(rate=1.0, autojump_threshold=0.001)
    trio.run(run, args.sessions, args.minutes, args.naive_minutes, args.warmup, clock=clock)


if __name__ == "__main__":
    main()
