"""Prometheus metrics of the daemon.

Two kinds, kept apart so the hot path pays almost nothing:

- counters and histograms are process metrics (they restart at zero with the daemon),
  moved where their cause happens: signals applied, deliveries and their failures (by
  wrapping the ports, not by touching the engine), one observation per group-commit batch
  (never per unit);
- gauges (the reaper's last sweep among them) are read when ``/metrics`` is scraped (``Metrics.refresh`` fills them from an
  async ``GaugeSource`` just before the text is rendered), never kept up to date on writes.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.domain.model import (
    ActivitySignal,
    NotificationEvent,
    PRObservation,
    ProjectId,
    RuntimeFacts,
    SessionId,
    SessionRecord,
    SessionStatus,
)
from orchestrator.domain.zones import Zone
from orchestrator.lifecycle.manager import SessionView
from orchestrator.ports import AgentMessenger, Notifier

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True, slots=True)
class Gauges:
    """What a scrape reads: each a (labels → value) mapping or a value."""

    sessions: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (status, zone)
    outbox_backlog: int = 0
    outbox_oldest_age_seconds: float = 0.0
    change_log_rows: int = 0
    change_log_oldest_seq: int = 0
    database_bytes: int = 0
    wal_bytes: int = 0
    sse_subscribers: int = 0
    reaper_sweeps: int = 0
    reaper_last_sweep_seconds: float = 0.0
    github_remaining: Mapping[str, int] = field(default_factory=dict)  # by resource


GaugeSource = Callable[[], Awaitable[Gauges]]


class _ScrapeCollector(Collector):
    def __init__(self) -> None:
        self.current = Gauges()

    def collect(self) -> Iterator[Metric]:
        g = self.current
        sessions = GaugeMetricFamily(
            "orchestrator_sessions",
            "Sessions by derived status and zone",
            labels=["status", "zone"],
        )
        for (status, zone), count in sorted(g.sessions.items()):
            sessions.add_metric([status, zone], count)
        yield sessions
        yield from (
            GaugeMetricFamily(name, text, value=value)
            for name, text, value in (
                ("orchestrator_outbox_backlog", "Undelivered outbox rows", g.outbox_backlog),
                (
                    "orchestrator_outbox_oldest_undelivered_age_seconds",
                    "Age of the oldest undelivered outbox row",
                    g.outbox_oldest_age_seconds,
                ),
                ("orchestrator_change_log_rows", "Rows in the change log", g.change_log_rows),
                (
                    "orchestrator_change_log_oldest_seq",
                    "Oldest retained change-log seq",
                    g.change_log_oldest_seq,
                ),
                ("orchestrator_database_bytes", "Size of the database file", g.database_bytes),
                ("orchestrator_wal_bytes", "Size of the write-ahead log", g.wal_bytes),
                ("orchestrator_sse_subscribers", "Open event streams", g.sse_subscribers),
                ("orchestrator_reaper_sweeps", "Reaper sweeps since start", g.reaper_sweeps),
                (
                    "orchestrator_reaper_last_sweep_seconds",
                    "Duration of the last reaper sweep",
                    g.reaper_last_sweep_seconds,
                ),
            )
        )
        budget = GaugeMetricFamily(
            "orchestrator_github_budget_remaining",
            "GitHub rate-limit budget left, by resource",
            labels=["resource"],
        )
        for resource, remaining in sorted(g.github_remaining.items()):
            budget.add_metric([resource], remaining)
        yield budget


class Metrics:
    """The daemon's registry: process counters and histograms, and the scrape gauges."""

    def __init__(self, gauges: GaugeSource | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.source = gauges
        """Read at each scrape; settable once the daemon's pieces exist."""
        self._scrape = _ScrapeCollector()
        self.registry.register(self._scrape)
        r = self.registry
        self.signals = Counter(
            "orchestrator_signals_applied", "Signals applied, by kind", ["kind"], registry=r
        )
        self.deliveries = Counter(
            "orchestrator_deliveries",
            "Reactions delivered, by action and notifier",
            ["action", "notifier"],
            registry=r,
        )
        self.delivery_failures = Counter(
            "orchestrator_delivery_failures",
            "Failed delivery attempts, by action and notifier",
            ["action", "notifier"],
            registry=r,
        )
        self.commit_latency = Histogram(
            "orchestrator_commit_latency_seconds",
            "Time to apply and commit one group-commit batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "orchestrator_commit_batch_size",
            "Units per group-commit batch",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )

    def observe_batch(self, units: int, seconds: float) -> None:
        """One group-commit batch (called by the writer once per batch)."""
        self.batch_size.observe(units)
        self.commit_latency.observe(seconds)

    async def render(self) -> bytes:
        """The Prometheus text, gauges read now."""
        if self.source is not None:
            self._scrape.current = await self.source()
        return generate_latest(self.registry)


def session_counts(zoned: Iterable[tuple[SessionStatus, Zone]]) -> dict[tuple[str, str], int]:
    """Sessions by (derived status, zone), from the board's own cards, so the gauge and the
    board agree, the CI brake included (``orchestrator.domain.zones.zone_of``)."""
    counts: dict[tuple[str, str], int] = {}
    for status, zone in zoned:
        key = (status.value, zone.value)
        counts[key] = counts.get(key, 0) + 1
    return counts


class CountingNotifier:
    """A notifier that counts what it delivers and what fails, under its route name."""

    def __init__(self, name: str, inner: Notifier, metrics: Metrics) -> None:
        self._inner = inner
        self._delivered = metrics.deliveries.labels("notify", name)
        self._failed = metrics.delivery_failures.labels("notify", name)

    async def notify(self, event: NotificationEvent) -> None:
        try:
            await self._inner.notify(event)
        except Exception:
            self._failed.inc()
            raise
        self._delivered.inc()


class CountingMessenger:
    """The agent messenger, counted as action ``send-to-agent``, notifier ``agent``."""

    def __init__(self, inner: AgentMessenger, metrics: Metrics) -> None:
        self._inner = inner
        self._delivered = metrics.deliveries.labels("send-to-agent", "agent")
        self._failed = metrics.delivery_failures.labels("send-to-agent", "agent")

    async def send(self, session_id: SessionId, message: str, *, resend: bool = False) -> None:
        try:
            await self._inner.send(session_id, message, resend=resend)
        except Exception:
            self._failed.inc()
            raise
        self._delivered.inc()


class _Lifecycle(Protocol):
    async def exists(self, session_id: SessionId, /) -> bool: ...
    async def get(self, session_id: SessionId, /) -> SessionView: ...
    async def list(self, project_id: ProjectId | None = None, /) -> builtins.list[SessionView]: ...
    async def apply_activity_signal(
        self, session_id: SessionId, signal: ActivitySignal, /
    ) -> None: ...
    async def apply_pr_observation(
        self, session_id: SessionId, observation: PRObservation, /
    ) -> None: ...
    async def claim_pr(
        self, session_id: SessionId, url: str, number: int, /
    ) -> SessionId | None: ...
    async def running_sessions(self) -> builtins.list[SessionRecord]: ...
    async def apply_runtime_observation(
        self, session_id: SessionId, facts: RuntimeFacts
    ) -> None: ...


class CountingLifecycle:
    """The lifecycle manager as the API and the reaper see it, counting each signal
    applied by kind (``activity``, ``pr``, ``runtime``): one counter increment per call."""

    def __init__(self, inner: _Lifecycle, metrics: Metrics) -> None:
        self._inner = inner
        self._activity = metrics.signals.labels("activity")
        self._pr = metrics.signals.labels("pr")
        self._runtime = metrics.signals.labels("runtime")

    async def exists(self, session_id: SessionId, /) -> bool:
        return await self._inner.exists(session_id)

    async def get(self, session_id: SessionId, /) -> SessionView:
        return await self._inner.get(session_id)

    async def list(self, project_id: ProjectId | None = None, /) -> builtins.list[SessionView]:
        return await self._inner.list(project_id)

    async def apply_activity_signal(self, session_id: SessionId, signal: ActivitySignal, /) -> None:
        await self._inner.apply_activity_signal(session_id, signal)
        self._activity.inc()

    async def apply_pr_observation(
        self, session_id: SessionId, observation: PRObservation, /
    ) -> None:
        await self._inner.apply_pr_observation(session_id, observation)
        self._pr.inc()

    async def claim_pr(self, session_id: SessionId, url: str, number: int, /) -> SessionId | None:
        return await self._inner.claim_pr(session_id, url, number)

    async def running_sessions(self) -> builtins.list[SessionRecord]:
        return await self._inner.running_sessions()

    async def apply_runtime_observation(self, session_id: SessionId, facts: RuntimeFacts) -> None:
        await self._inner.apply_runtime_observation(session_id, facts)
        self._runtime.inc()


__all__ = [
    "CONTENT_TYPE",
    "CountingLifecycle",
    "CountingMessenger",
    "CountingNotifier",
    "GaugeSource",
    "Gauges",
    "Metrics",
    "session_counts",
]
