"""Soak benchmark (not a test): ``python bench/soak_bench.py [--quick] [--days D]``.

Months of a busy daemon in minutes, through the real SQLite store and the real engine
(``LifecycleManager`` deciding every turn, ``OutboxDispatcher`` delivering), on a clock
that jumps ``--tick`` of simulated time per step:

- a steady population of live sessions, each flipping active/idle every tick (one
  change-log row per flip; an idle entry queues an ``agent-idle`` nudge), opening a PR
  after a while and observing it every few ticks on a new commit (three checks, failing
  ones nudge the agent; review comments sometimes), until the PR is approved and merged and
  the session ends (``pr-merged``: a notification), or, for one in four, until a human
  kills it mid-review (its checks and comments left behind); either way a fresh session
  replaces it;
- every outbox row delivered (to a null messenger and notifier) as it becomes due;
- the human reading notifications a simulated day after they arrive, resolving some and
  never reading one in ten;
- the janitor (``apply_retention``) at its cadence with the default ``RetentionPolicy``.

Every ``--report`` simulated days it prints the rows per table, the database and WAL file
sizes and the data size (pages in use). The retention horizon is the longest a row can
outlive its reason to be kept (the longest retention age, plus the day before a read and
a session's lifetime); past it every table is bounded, so the last lines compare the
sizes at the end with those at the horizon: a ratio near 1.0 is a flat database. Two
things still grow past it, slowly and by design: session and PR rows (never deleted: a
listing shows them) and notifications nobody reads (bounded by a row cap, not an age).
The WAL file keeps the largest size it reached (SQLite reuses it, never shrinks it).

``--quick`` is a smaller world (~20 s); the default run takes about 2-3 minutes on two
cores and writes about a million change-log rows.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio

from adapters.memory import ManualClock
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from orchestrator.domain.model import (
    ActivitySignal,
    ActivityState,
    CheckStatus,
    CIState,
    Mergeability,
    NotificationEvent,
    PRCheck,
    PRComment,
    PRObservation,
    ReviewDecision,
    SessionId,
    SpawnOutcome,
    TerminationReason,
)
from orchestrator.domain.records import Project
from orchestrator.domain.retention import RetentionPolicy, RetentionReport
from orchestrator.lifecycle.manager import EngineLimits, LifecycleManager
from orchestrator.outbox import OutboxDispatcher

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PROJECTS = 8
CHECKS = ("build", "lint", "test")
TABLES = ("change_log", "outbox", "notifications", "pr_checks", "pr_comment", "reaction_trackers")
READ_AFTER = timedelta(days=1)
ABANDONED = 0.25  # sessions killed before their PR merges
NEVER_READ_ONE_IN = 10
RESOLVE_ONE_IN = 3


@dataclass(frozen=True, slots=True)
class Shape:
    sessions: int  # live at any time
    tick: timedelta
    days: float
    lifetime_ticks: tuple[int, int]  # a session's life, uniformly in this range
    pr_after_ticks: int
    observe_every: int  # ticks between PR observations


DEFAULT = Shape(
    sessions=150,
    tick=timedelta(minutes=20),
    days=64,
    lifetime_ticks=(72, 216),
    pr_after_ticks=12,
    observe_every=3,
)
QUICK = Shape(
    sessions=40,
    tick=timedelta(hours=1),
    days=40,
    lifetime_ticks=(24, 72),
    pr_after_ticks=4,
    observe_every=2,
)


class NullMessenger:
    async def send(self, session_id: SessionId, message: str, *, resend: bool = False) -> None:
        return None


class NullNotifier:
    async def notify(self, event: NotificationEvent) -> None:
        return None


@dataclass
class Life:
    """One simulated session: where it is in its life."""

    session_id: SessionId
    project: str
    ends_at: int  # the tick it merges and ends, or is killed
    abandoned: bool
    age: int = 0
    idle: bool = False
    commits: int = 0


@dataclass
class Tally:
    spawned: int = 0
    signals: int = 0
    observations: int = 0
    ended: int = 0
    notifications_read: int = 0
    janitor_passes: int = 0
    janitor_seconds: float = 0.0
    trimmed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))


class Soak:
    def __init__(self, shape: Shape, store: SqliteStore, seed: int) -> None:
        self.shape = shape
        self.store = store
        self.clock = ManualClock(T0)
        self.policy = RetentionPolicy()
        self.manager = LifecycleManager(
            store, clock=self.clock, limits=EngineLimits(mailbox_size=4096)
        )
        self.dispatcher = OutboxDispatcher(
            store, messenger=NullMessenger(), notifier=NullNotifier(), clock=self.clock
        )
        self.random = random.Random(seed)
        self.lives: list[Life] = []
        self.tick = 0
        self.tally = Tally()
        self.next_janitor = T0 + self.policy.interval
        # (newest notification id, when seen): read once a day has passed since then.
        self.seen_notifications: list[tuple[int, datetime]] = []
        self.read_upto = 0

    # -- sessions

    async def spawn(self) -> None:
        project = f"p{self.random.randrange(PROJECTS)}"
        record = await self.store.create_session(project, now=self.clock.now())
        await self.manager.on_spawn_completed(
            record.id, SpawnOutcome(runtime_handle_id=record.id, runtime_name="soak")
        )
        low, high = self.shape.lifetime_ticks
        self.lives.append(
            Life(
                record.id,
                project,
                ends_at=self.random.randint(low, high),
                abandoned=self.random.random() < ABANDONED,
            )
        )
        self.tally.spawned += 1

    async def live(self, life: Life) -> None:
        """One tick of one session's life."""
        life.age += 1
        now = self.clock.now()
        life.idle = not life.idle
        state = ActivityState.IDLE if life.idle else ActivityState.ACTIVE
        await self.manager.apply_activity_signal(
            life.session_id, ActivitySignal(state=state, timestamp=now)
        )
        self.tally.signals += 1
        if life.age >= life.ends_at:
            if life.abandoned:
                reason = TerminationReason.MANUALLY_KILLED
            else:
                await self.observe(life, merged=True)
                reason = TerminationReason.PR_MERGED
            await self.manager.on_kill_requested(life.session_id, reason)
            self.tally.ended += 1
        elif life.age >= self.shape.pr_after_ticks and life.age % self.shape.observe_every == 0:
            await self.observe(life, merged=False)

    async def observe(self, life: Life, *, merged: bool) -> None:
        life.commits += 1
        commit = f"{life.session_id}-c{life.commits}"
        failing = not merged and self.random.random() < 0.3
        # Nearly merged: green and approved, the review settled.
        late = not life.abandoned and life.age >= life.ends_at - 3 * self.shape.observe_every
        checks = tuple(
            PRCheck(
                name=name,
                commit=commit,
                status=CheckStatus.FAILED if failing and name == "test" else CheckStatus.PASSED,
                log_tail="FAILED tests/test_app.py::test_it - assert 1 == 2\n" * 20
                if failing and name == "test"
                else "",
            )
            for name in CHECKS
        )
        comments: tuple[PRComment, ...] = ()
        if not late and self.random.random() < 0.2:
            comments = tuple(
                PRComment(id=f"{commit}-{n}", author="reviewer", file="app.py", line=n, body="nit")
                for n in range(self.random.randint(1, 3))
            )
        observation = PRObservation(
            url=f"https://github.com/acme/{life.project}/pull/{life.session_id}",
            number=life.commits,
            merged=merged,
            ci=CIState.FAILING if failing else CIState.PASSING,
            review=ReviewDecision.APPROVED if late or merged else ReviewDecision.REVIEW_REQUIRED,
            mergeability=Mergeability.MERGEABLE if late else Mergeability.UNKNOWN,
            checks=checks,
            comments=comments,
        )
        await self.manager.apply_pr_observation(life.session_id, observation)
        self.tally.observations += 1

    # -- the human and the janitor

    async def read_notifications(self) -> None:
        now = self.clock.now()
        newest = await self.store.list_notifications(limit=1)
        if newest:
            self.seen_notifications.append((newest[0].id, now))
        while self.seen_notifications and self.seen_notifications[0][1] <= now - READ_AFTER:
            upto, _ = self.seen_notifications.pop(0)
            for notification_id in range(self.read_upto + 1, upto + 1):
                if notification_id % NEVER_READ_ONE_IN == 0:
                    continue
                await self.store.mark_notification_read(notification_id, now)
                if notification_id % RESOLVE_ONE_IN == 0:
                    await self.store.resolve_notification(notification_id, now)
                self.tally.notifications_read += 1
            self.read_upto = max(self.read_upto, upto)

    async def janitor(self) -> None:
        """A pass when one is due, then the next an interval later, as the daemon's loop
        sleeps between passes (a tick longer than the interval gets one pass, not several
        at the same instant)."""
        now = self.clock.now()
        if now < self.next_janitor:
            return
        started = time.perf_counter()
        report = await self.store.apply_retention(self.policy, now=now)
        self.tally.janitor_seconds += time.perf_counter() - started
        self.tally.janitor_passes += 1
        self._count(report)
        self.next_janitor = now + self.policy.interval

    def _count(self, report: RetentionReport) -> None:
        trimmed = self.tally.trimmed
        trimmed["change_log"] += report.change_log
        trimmed["outbox"] += report.outbox
        trimmed["notifications"] += report.notifications
        trimmed["pr_checks"] += report.check_runs
        trimmed["pr_comment"] += report.comments
        trimmed["reaction_trackers"] += report.trackers

    # -- the loop

    async def step(self) -> None:
        self.lives = [life for life in self.lives if life.age < life.ends_at]
        while len(self.lives) < self.shape.sessions:
            await self.spawn()
        async with trio.open_nursery() as nursery:
            for life in self.lives:
                nursery.start_soon(self.live, life)
        await self.dispatcher.drain()
        await self.read_notifications()
        await self.janitor()
        self.clock.advance(self.shape.tick)
        self.tick += 1


@dataclass(frozen=True, slots=True)
class Sizes:
    day: float
    rows: dict[str, int]
    db_bytes: int
    wal_bytes: int
    data_bytes: int


def measure(path: Path, day: float) -> Sizes:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = {t: connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608 - fixed names
        pages, free, page_size = (
            connection.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("page_count", "freelist_count", "page_size")
        )
    finally:
        connection.close()
    wal = Path(f"{path}-wal")
    return Sizes(
        day=day,
        rows=rows,
        db_bytes=path.stat().st_size,
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
        data_bytes=(pages - free) * page_size,
    )


def mb(size: int) -> str:
    return f"{size / 1e6:8.1f}"


def print_sizes(sizes: Sizes, elapsed: float) -> None:
    counts = " ".join(f"{sizes.rows[t]:>10,}" for t in TABLES)
    print(
        f"{sizes.day:5.0f} {counts} {mb(sizes.db_bytes)} {mb(sizes.wal_bytes)}"
        f" {mb(sizes.data_bytes)} {elapsed:7.1f}s",
        flush=True,
    )


def horizon_days(policy: RetentionPolicy, shape: Shape) -> float:
    """After this long every row of the run's start has had its chance to go."""
    longest = max(
        policy.change_log_max_age,
        policy.outbox_settled_max_age,
        policy.notification_read_max_age + READ_AFTER,
        policy.terminated_history_max_age + shape.tick * shape.lifetime_ticks[1],
    )
    return longest / timedelta(days=1)


async def soak(path: Path, shape: Shape, report_days: float, seed: int) -> None:
    started = time.perf_counter()
    async with open_sqlite_store(path) as store:
        for p in range(PROJECTS):
            await store.upsert_project(Project(id=f"p{p}", path=f"/src/p{p}", registered_at=T0))
        world = Soak(shape, store, seed)
        horizon = horizon_days(world.policy, shape)
        print(
            f"{shape.sessions} live sessions, a tick of {shape.tick}, {shape.days:g} days; "
            f"janitor every {world.policy.interval}, default retention; "
            f"horizon at day {horizon:.1f}",
            flush=True,
        )
        header = " ".join(f"{t[:10]:>10}" for t in TABLES)
        print(f"{'day':>5} {header} {'db MB':>8} {'wal MB':>8} {'data MB':>8} {'elapsed':>8}")
        at_horizon: Sizes | None = None
        next_report = 0.0
        ticks_per_day = timedelta(days=1) / shape.tick
        async with trio.open_nursery() as nursery:
            await nursery.start(world.manager.run)
            total_ticks = int(shape.days * ticks_per_day)
            for _ in range(total_ticks + 1):
                day = world.tick / ticks_per_day
                if day >= next_report:
                    await store.flush()
                    sizes = measure(path, day)
                    print_sizes(sizes, time.perf_counter() - started)
                    if at_horizon is None and day >= horizon:
                        at_horizon = sizes
                    next_report += report_days
                await world.step()
            nursery.cancel_scope.cancel()
        await store.flush()
        final = measure(path, world.tick / ticks_per_day)
    print_sizes(final, time.perf_counter() - started)
    t = world.tally
    print(
        f"spawned {t.spawned:,} sessions, ended {t.ended:,}; {t.signals:,} activity signals, "
        f"{t.observations:,} PR observations, {world.dispatcher.delivered:,} outbox rows "
        f"delivered, {t.notifications_read:,} notifications read"
    )
    print(
        f"janitor: {t.janitor_passes:,} passes, {t.janitor_seconds:.1f}s in all, trimmed "
        + ", ".join(f"{name} {count:,}" for name, count in t.trimmed.items())
    )
    if at_horizon is None:
        print(f"the run ended before the horizon (day {horizon:.1f}): pass more --days")
        return
    print(
        f"database at the horizon (day {at_horizon.day:.0f}) {at_horizon.db_bytes / 1e6:.1f} MB, "
        f"at the end (day {final.day:.0f}) {final.db_bytes / 1e6:.1f} MB: "
        f"ratio {final.db_bytes / at_horizon.db_bytes:.2f}"
    )
    print(
        f"data (pages in use) at the horizon {at_horizon.data_bytes / 1e6:.1f} MB, at the end "
        f"{final.data_bytes / 1e6:.1f} MB: ratio {final.data_bytes / at_horizon.data_bytes:.2f}; "
        f"WAL {at_horizon.wal_bytes / 1e6:.1f} -> {final.wal_bytes / 1e6:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller world, ~20 s")
    parser.add_argument("--days", type=float, help="simulated days (default: the shape's)")
    parser.add_argument("--report", type=float, default=4.0, help="simulated days per line")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the database here and keep it")
    args = parser.parse_args()
    shape = QUICK if args.quick else DEFAULT
    if args.days is not None:
        shape = Shape(**{**{f: getattr(shape, f) for f in shape.__slots__}, "days": args.days})
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "soak.db"
        if path.exists():
            raise SystemExit(f"{path} exists: the soak starts from an empty database")
        trio.run(soak, path, shape, args.report, args.seed)


if __name__ == "__main__":
    main()
