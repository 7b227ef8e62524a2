"""The real daemon watching a fake GitHub served on loopback, with a custom agent that
records what it is told: a session's PR found by its branch, a failing Actions check
answered with its name, link and cleaned log tail, a re-run on the same commit answered
with nothing, the CI brake, review comments sent once each, a conflict, and the merge
that ends the session. Nothing but the config points the daemon at the fake; its token
comes from ``GITHUB_TOKEN`` as a user's would.

The test drives the fake from its own trio loop (which also serves it) and talks to the
daemon over HTTP; blocking steps (starting and stopping the daemon, the CLI) run in
worker threads so the fake keeps answering meanwhile."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio

from orchestrator.api import API_PREFIX, HEAD_SEQ_HEADER, ScmStatusOut
from orchestrator.domain.scm import ObserverState
from tests.e2e.harness import (
    REPO_ROOT,
    Daemon,
    daemon_env,
    kill_tmux,
    make_repo,
    start_daemon,
    write_config,
)
from tests.fakes.github import FakeGitHub, LoopbackUrls, serve_on_loopback
from tests.fakes.github.model import Account, PullRequest, Repo
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

TOKEN = "ghp_e2e_observer_000000000000000000000"
TICK = 2.0  # scm.github.poll.repo below
SLACK = 3.0  # a round's own work and the daemon's answer, on a loaded machine
SCM_CONFIG = """
projects:
  app:
    path: {repo}
    repoOriginUrl: https://github.com/acme/app.git
scm:
  github:
    apiUrl: {api}
    host: github.com
    poll: {{repo: 2s, pending: 1s, settled: 1s, draft: 2s, maxAge: 3s}}
    reviewInterval: 1s
    kickDebounce: 1s
"""


@dataclass
class World:
    fake: FakeGitHub
    urls: LoopbackUrls
    repo: Repo
    alice: Account
    bob: Account
    daemon: Daemon
    api: httpx.AsyncClient

    async def session(self, session_id: str) -> dict[str, Any]:
        response = await self.api.get(f"{API_PREFIX}/sessions/{session_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def notifications(self) -> list[str]:
        response = await self.api.get(f"{API_PREFIX}/notifications")
        return [n["type"] for n in response.json()]

    async def escalations(self) -> int:
        return (await self.notifications()).count("reaction.escalated")

    def _checks_recorded(self) -> list[tuple[str, str, str]]:
        found: list[tuple[str, str, str]] = []
        with self.daemon.client.stream(
            "GET", f"{API_PREFIX}/events", params={"since": 0}
        ) as response:
            head = int(response.headers[HEAD_SEQ_HEADER])
            seq, kind = 0, ""
            for line in response.iter_lines():
                if head == 0:
                    break
                if line.startswith("id:"):
                    seq = int(line[3:])
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind == "pr_check_recorded":
                    payload = msgspec.json.decode(line[5:])["payload"]
                    found.append((payload["name"], payload["commit"], payload["status"]))
                elif not line and seq >= head:
                    break
        return found

    async def checks_recorded(self) -> list[tuple[str, str, str]]:
        """Every (check, commit, status) the daemon committed, in order: the change log's
        ``pr_check_recorded`` events, replayed up to the head the stream names."""
        return await trio.to_thread.run_sync(self._checks_recorded)

    async def recorded(self, check: tuple[str, str, str], times: int = 1) -> bool:
        return (await self.checks_recorded()).count(check) >= times


async def eventually(check: Callable[[], Any], *, seconds: float = 30.0, what: str = "") -> float:
    """Poll the (possibly async) ``check`` until it is truthy; how long that took."""
    started = trio.current_time()
    with trio.move_on_after(seconds):
        while True:
            result = check()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return trio.current_time() - started
            await trio.sleep(0.1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what or check}")


@asynccontextmanager
async def github_and_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    fake = FakeGitHub()
    alice = fake.world.add_user("alice", token=TOKEN)
    bob = fake.world.add_user("bob")
    repo = fake.world.create_repo("acme/app")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    data_dir = tmp_path / "data"
    checkout = make_repo(tmp_path / "repo")
    async with serve_on_loopback(fake) as urls:
        config = write_config(data_dir, extra=SCM_CONFIG.format(repo=checkout, api=urls.api))
        daemon = await trio.to_thread.run_sync(lambda: start_daemon(data_dir, config=config))
        try:
            async with httpx.AsyncClient(
                base_url=daemon.base,
                headers={"Authorization": f"Bearer {daemon.run.token}"},
                trust_env=False,
                timeout=10,
            ) as api:
                yield World(fake, urls, repo, alice, bob, daemon, api)
        finally:
            await trio.to_thread.run_sync(daemon.stop)
            kill_tmux(data_dir)


def received(workspace: Path) -> str:
    path = workspace / "received.txt"
    return path.read_text(errors="replace") if path.exists() else ""


async def test_a_sessions_pr_lives_its_life_on_github(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with github_and_daemon(tmp_path, monkeypatch) as w:
        spawned = await w.api.post(
            f"{API_PREFIX}/sessions", json={"projectId": "app", "agent": "recorder"}
        )
        assert spawned.status_code == 201, spawned.text
        sid = spawned.json()["id"]
        branch = spawned.json()["metadata"]["branch"]
        workspace = Path(spawned.json()["metadata"]["workspacePath"])
        await trio.sleep(TICK)  # the daemon has read its sessions

        # The agent's branch gets a PR: found within one tick.
        pr: PullRequest = w.fake.world.open_pr(w.repo, head_ref=branch, author=w.alice)

        async def has_pr() -> bool:
            return bool((await w.session(sid))["pr"]["exists"])

        took = await eventually(has_pr, what="the PR to be found")
        assert took <= TICK + SLACK
        assert (await w.session(sid))["pr"][
            "url"
        ] == f"https://github.com/acme/app/pull/{pr.number}"

        # A failing Actions check: the agent is told which, where, and what the log says.
        run = w.fake.world.add_check_run(pr, "test", conclusion="failure")
        await eventually(lambda: "Process completed with exit code 1." in received(workspace))
        told = received(workspace)
        assert f"Failing check: test ({run.details_url})" in told
        assert "FAILED tests/test_api.py::test_create - AssertionError: expected 200" in told
        assert "\x1b" not in told
        assert "0000Z " not in told  # the runner's timestamps are gone

        # A re-run failing on the same commit sends nothing.
        first_commit = pr.head_sha
        again = w.fake.world.rerun(run)
        await eventually(lambda: w.recorded(("test", first_commit, "queued")), what="the re-run")
        w.fake.world.finish_check(again, "failure")
        failed_again = ("test", first_commit, "failed")
        await eventually(lambda: w.recorded(failed_again, 2), what="the re-run's failure")
        await trio.sleep(2 * TICK)
        assert received(workspace).count("Failing check: test") == 1

        # Failing runs on successive commits: the second commit is nudged, the third
        # (three failed runs in a row) pages a human once, and the fourth is silent.
        for commit in (2, 3, 4):
            sha = w.fake.world.push(pr)
            w.fake.world.add_check_run(pr, "test", conclusion="failure")
            failed = ("test", sha, "failed")
            await eventually(partial(w.recorded, failed), what=f"commit {commit}'s failure")
        await eventually(w.escalations, what="the escalation")
        await trio.sleep(2 * TICK)
        assert received(workspace).count("Failing check: test") == 2
        assert await w.escalations() == 1
        w.fake.world.add_check_run(pr, "test", conclusion="success")
        await eventually(lambda: w.recorded(("test", pr.head_sha, "passed")), what="green")

        # Review comments: one nudge each time, with only the comments not sent before.
        first = w.fake.world.add_review_thread(
            pr, w.bob, path="app.py", line=3, body="Please rename this."
        )
        await eventually(lambda: "Please rename this." in received(workspace))
        assert "@bob on app.py:3:" in received(workspace)
        second = w.fake.world.add_review_thread(
            pr, w.bob, path="db.py", line=9, body="Add an index here."
        )
        await eventually(lambda: "Add an index here." in received(workspace))
        await trio.sleep(2 * TICK)
        assert received(workspace).count("Please rename this.") == 1
        assert received(workspace).count("Add an index here.") == 1

        # The agent resolves them; then the base moves under the PR: a conflict.
        w.fake.world.resolve_thread(first)
        w.fake.world.resolve_thread(second)

        async def no_open_comments() -> bool:
            return not (await w.session(sid))["pr"]["reviewComments"]

        await eventually(no_open_comments, what="the threads to be resolved")
        w.fake.world.set_mergeable(pr, conflicting=True)
        await eventually(lambda: "merge conflicts" in received(workspace), what="a conflict nudge")

        # Merged: the session ends.
        w.fake.world.set_mergeable(pr, conflicting=False)
        w.fake.world.merge(pr, sha=pr.head_sha)

        async def ended() -> bool:
            lifecycle = (await w.session(sid))["lifecycle"]
            return bool(lifecycle["terminationReason"] == "pr_merged")

        await eventually(ended, what="the session to end pr_merged")
        assert (await w.session(sid))["lifecycle"]["state"] == "terminated"

        # The CLI asks the daemon (never GitHub) what it did.
        env = daemon_env(w.daemon.data_dir)
        shown = await trio.to_thread.run_sync(
            lambda: subprocess.run(
                [sys.executable, "-m", "orchestrator", "scm", "status", "--json"],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                check=True,
            )
        )
        status = msgspec.json.decode(shown.stdout, type=ScmStatusOut)
        assert status.state is ObserverState.RUNNING
        assert status.auth.source == "GITHUB_TOKEN"
        assert status.observations >= 10
        assert status.not_modified > 0
        assert TOKEN not in w.daemon.log()
