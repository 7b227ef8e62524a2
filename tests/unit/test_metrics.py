"""The metrics registry on its own: counting wrappers count failures as well as deliveries,
batches are observed once each, scrape gauges come from the source at render time, and the
GitHub budget becomes a gauge per resource."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.http.metrics import github_remaining
from orchestrator.domain.errors import TransientError
from orchestrator.domain.model import NotificationEvent, Priority
from orchestrator.domain.scm import RateBudgetSnapshot, RateResourceState
from orchestrator.metrics import CountingNotifier, Gauges, Metrics


def values(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


class Flaky:
    def __init__(self) -> None:
        self.fail = True

    async def notify(self, event: NotificationEvent) -> None:
        if self.fail:
            raise TransientError("down")


EVENT = NotificationEvent(
    type="reaction.ci-failed",
    priority=Priority.URGENT,
    session_id="a-1",
    project_id="a",
    message="m",
)


async def test_a_counting_notifier_counts_failures_and_deliveries() -> None:
    metrics = Metrics()
    inner = Flaky()
    notifier = CountingNotifier("team-slack", inner, metrics)
    with pytest.raises(TransientError):
        await notifier.notify(EVENT)
    inner.fail = False
    await notifier.notify(EVENT)
    await notifier.notify(EVENT)
    found = values(await metrics.render())
    labels = (("action", "notify"), ("notifier", "team-slack"))
    assert found[("orchestrator_delivery_failures_total", labels)] == 1
    assert found[("orchestrator_deliveries_total", labels)] == 2


async def test_batches_and_scrape_gauges() -> None:
    reads = 0

    async def source() -> Gauges:
        nonlocal reads
        reads += 1
        return Gauges(sessions={("working", "working"): 3}, outbox_backlog=reads)

    metrics = Metrics(source)
    metrics.observe_batch(40, 0.003)
    metrics.observe_batch(2, 0.001)
    first = values(await metrics.render())
    assert first[("orchestrator_commit_batch_size_count", ())] == 2
    assert first[("orchestrator_commit_batch_size_sum", ())] == 42
    assert first[("orchestrator_sessions", (("status", "working"), ("zone", "working")))] == 3
    assert first[("orchestrator_outbox_backlog", ())] == 1
    assert values(await metrics.render())[("orchestrator_outbox_backlog", ())] == 2


def test_github_budget_gauges_by_resource() -> None:
    snapshot = RateBudgetSnapshot(
        resources=(
            RateResourceState(resource="core", limit=5000, remaining=4200),
            RateResourceState(resource="graphql"),
        )
    )
    assert github_remaining(snapshot) == {"core": 4200}


async def test_the_sample_grafana_dashboard_queries_only_exported_metrics() -> None:
    root = Path(__file__).parents[2]
    dashboard = json.loads((root / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {
        re.sub(r"_(bucket|sum|count|total)$", "", name)
        for expr in exprs
        for name in re.findall(r"orchestrator_[a-z_]+", expr)
    }
    exported = {
        family.name
        for family in text_string_to_metric_families((await Metrics().render()).decode())
    }
    assert used
    assert used <= exported
