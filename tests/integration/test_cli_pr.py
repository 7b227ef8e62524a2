"""``orchestrator pr claim`` and ``orchestrator pr merge`` against the real HTTP app (the CLI
runs in a worker thread: it is a blocking client of the daemon the test serves)."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
import trio
from typer.testing import CliRunner, Result

from orchestrator import cli
from orchestrator.api import RunFile
from orchestrator.cli.pr import claim_target
from orchestrator.domain.scm import MergeMethod
from orchestrator.pr_actions import PRActions, SCMMerger
from orchestrator.runfile import write_run_file
from tests.engine_harness import Engine
from tests.http_harness import DAEMON_TOKEN, Served, serve_api
from tests.pr_support import PR1, provider_with, ready

P = "/api/v1"


def runner_for(api: Served, data_dir: Path) -> Callable[..., Awaitable[Result]]:
    data_dir.mkdir(parents=True, exist_ok=True)
    address = api.url.removeprefix("http://")
    write_run_file(
        data_dir / "daemon.json",
        RunFile(pid=os.getpid(), address=address, token=DAEMON_TOKEN, started_at=datetime.now(UTC)),
    )
    env = {
        "ORCHESTRATOR_DATA_DIR": str(data_dir),
        "ORCHESTRATOR_CONFIG": None,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }

    async def run(*args: str) -> Result:
        invoke = partial(CliRunner().invoke, cli.app, list(args), env=env)
        return await trio.to_thread.run_sync(invoke)

    return run


async def test_pr_merge_merges_or_exits_1_with_the_reason(tmp_path: Path) -> None:
    provider = provider_with("x1")

    def actions(engine: Engine) -> PRActions:
        merger = SCMMerger(provider, MergeMethod.SQUASH)
        return PRActions(engine.store, engine.manager, merger=merger)

    async with serve_api(pr_actions=actions) as api:
        run = runner_for(api, tmp_path / "data")
        sid = await api.spawn()
        refused = await run("pr", "merge", sid)
        assert refused.exit_code == 1
        assert "not merging: the session has no PR (HTTP 409)" in refused.output
        await api.client.post(f"{P}/sessions/{sid}/pr", json=ready(sha="x1"))
        merged = await run("pr", "merge", sid)
        assert merged.exit_code == 0, merged.output
        assert merged.output.strip() == f"merged {PR1} at x1"
        assert len(provider.merged) == 1
        again = await run("pr", "merge", sid, "--json")
        assert again.exit_code == 1  # GitHub refuses a merged PR
        assert "GitHub refused to merge" in again.output


async def test_pr_claim_by_url_or_number(tmp_path: Path) -> None:
    async with serve_api() as api:
        run = runner_for(api, tmp_path / "data")
        a, b = await api.spawn(), await api.spawn()
        await api.client.post(f"{P}/sessions/{a}/pr", json=ready())
        claimed = await run("pr", "claim", b, PR1)
        assert claimed.exit_code == 0, claimed.output
        assert claimed.output.strip() == f"{b} owns {PR1} (taken from {a})"
        as_json = await run("pr", "claim", b, PR1, "--json")
        assert json.loads(as_json.output)["previousSession"] == ""
        # A number needs the project's repository: this project has none.
        by_number = await run("pr", "claim", b, "#7")
        assert by_number.exit_code == 1
        assert "claim the PR by its URL" in by_number.output
        unknown = await run("pr", "claim", "ghost-9", PR1)
        assert unknown.exit_code != 0
        assert "ghost-9" in unknown.output


@pytest.mark.parametrize("bad", ["0", "#0", "github.com/acme/app/pull/1", "-3"])
def test_a_claim_target_that_is_neither_a_number_nor_a_url_is_a_usage_error(bad: str) -> None:
    result = CliRunner().invoke(cli.app, ["pr", "claim", "app-1", bad])
    assert result.exit_code == 2


def test_a_claim_target_is_a_number_or_a_url() -> None:
    assert claim_target("42").number == 42
    assert claim_target("#42").number == 42
    assert claim_target(PR1).url == PR1
