"""``/metrics`` of the real daemon, parsed by prometheus_client's own text parser: every
named metric is there, behind the daemon token, and moves when its cause happens; and the
separate loopback port of ``metrics.address`` serves it without a token."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Daemon, make_repo, running_daemon, wait_for, write_config
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

NAMED = {
    "orchestrator_sessions",
    "orchestrator_signals_applied",
    "orchestrator_deliveries",
    "orchestrator_delivery_failures",
    "orchestrator_commit_latency_seconds",
    "orchestrator_commit_batch_size",
    "orchestrator_outbox_backlog",
    "orchestrator_outbox_oldest_undelivered_age_seconds",
    "orchestrator_change_log_rows",
    "orchestrator_change_log_oldest_seq",
    "orchestrator_database_bytes",
    "orchestrator_wal_bytes",
    "orchestrator_sse_subscribers",
    "orchestrator_reaper_sweeps",
    "orchestrator_reaper_last_sweep_seconds",
    "orchestrator_github_budget_remaining",
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def scrape(daemon: Daemon) -> str:
    response = daemon.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_metrics_are_there_and_move_with_their_causes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    config = write_config(data_dir, extra=f"metrics:\n  address: 127.0.0.1:{port}\n")
    with running_daemon(data_dir, config=config) as daemon:
        assert httpx.get(f"{daemon.base}/metrics", trust_env=False).status_code == 401
        before = scrape(daemon)
        assert families(before) >= NAMED
        start = samples(before)
        assert start[("orchestrator_change_log_rows", ())] == 0

        repo = make_repo(tmp_path / "repo")
        assert daemon.post("/projects", {"id": "app", "path": str(repo)}).status_code == 201
        spawned = daemon.post("/sessions", {"projectId": "app", "agent": "recorder"})
        assert spawned.status_code == 201, spawned.text
        sid = spawned.json()["id"]
        hook = {"Authorization": f"Bearer {daemon.session_token(sid)}"}
        answer = daemon.post(f"/sessions/{sid}/activity", {"state": "active"}, headers=hook)
        assert answer.status_code == 204
        runtime = ("orchestrator_signals_applied_total", (("kind", "runtime"),))
        wait_for(lambda: samples(scrape(daemon)).get(runtime, 0) >= 1, what="a probe applied")
        after = samples(scrape(daemon))
        assert after[("orchestrator_signals_applied_total", (("kind", "activity"),))] == 1
        assert after[("orchestrator_reaper_sweeps", ())] >= 1
        assert (
            after[("orchestrator_commit_batch_size_count", ())]
            > start[("orchestrator_commit_batch_size_count", ())]
        )
        assert after[("orchestrator_commit_latency_seconds_count", ())] > 0
        assert after[("orchestrator_change_log_rows", ())] > 0
        assert after[("orchestrator_change_log_oldest_seq", ())] >= 1
        assert after[("orchestrator_database_bytes", ())] > 0
        assert sum(v for (name, _), v in after.items() if name == "orchestrator_sessions") == 1

        failing = {
            "url": "https://github.com/acme/app/pull/7",
            "number": 7,
            "ci": "failing",
            "checks": [{"name": "test", "commit": "c1", "status": "failed", "logTail": "E boom"}],
        }
        assert daemon.post(f"/sessions/{sid}/pr", failing).status_code == 200
        delivered = (
            "orchestrator_deliveries_total",
            (("action", "send-to-agent"), ("notifier", "agent")),
        )
        wait_for(lambda: samples(scrape(daemon)).get(delivered, 0) >= 1, what="a CI nudge")
        assert (
            samples(scrape(daemon))[("orchestrator_signals_applied_total", (("kind", "pr"),))] == 1
        )

        # The board and the gauge share one zone function: a failing CI is Working until
        # the brake trips (every run of the check failed: retries 2 -> 3 runs), then Needs you.
        def zone_count(zone: str) -> float:
            zoned = samples(scrape(daemon))
            return sum(
                v
                for (name, labels), v in zoned.items()
                if name == "orchestrator_sessions" and ("zone", zone) in labels
            )

        assert zone_count("working") == 1
        for commit in ("c2", "c3"):
            check = {"name": "test", "commit": commit, "status": "failed", "logTail": "E boom"}
            rerun = {**failing, "checks": [check]}
            assert daemon.post(f"/sessions/{sid}/pr", rerun).status_code == 200
        wait_for(lambda: zone_count("needs_you") == 1, what="the braked session in Needs you")
        assert zone_count("working") == 0

        with daemon.client.stream("GET", "/api/v1/events") as stream:
            assert stream.status_code == 200
            wait_for(
                lambda: samples(scrape(daemon))[("orchestrator_sse_subscribers", ())] == 1,
                what="one subscriber",
            )

        separate = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False)
        assert separate.status_code == 200
        assert families(separate.text) >= NAMED
