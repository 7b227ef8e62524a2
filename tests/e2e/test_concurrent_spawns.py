"""Many clients spawning sessions on one repository at once, through the real daemon (real
git worktrees, real tmux): every spawn succeeds, every branch left belongs to a session,
and killing them all leaves the repository with its main worktree only."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from orchestrator.api import API_PREFIX
from tests.e2e.harness import make_repo, running_daemon, write_config
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

SPAWNS = 200
CLIENTS = 16
SLEEPER = 'agents:\n  sleeper:\n    command: ["sleep", "600"]\n'


def _git_lines(repo: Path, *args: str) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line]


def test_concurrent_spawns_on_one_repository_never_fail_or_leave_branches(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    data = tmp_path / "data"
    with running_daemon(data, config=write_config(data, extra=SLEEPER)) as daemon:
        response = daemon.post("/projects", {"id": "app", "path": str(repo)})
        assert response.status_code == 201, response.text
        headers = {"Authorization": f"Bearer {daemon.run.token}"}

        def spawn(_: int) -> tuple[int, dict[str, object]]:
            with httpx.Client(
                base_url=daemon.base, headers=headers, timeout=120, trust_env=False
            ) as http:
                answer = http.post(
                    f"{API_PREFIX}/sessions", json={"projectId": "app", "agent": "sleeper"}
                )
            return answer.status_code, answer.json()

        with ThreadPoolExecutor(CLIENTS) as pool:
            spawned = list(pool.map(spawn, range(SPAWNS)))
        failures = [(status, body) for status, body in spawned if status != 201]
        assert failures == [], failures[:3]

        sessions = [body for _, body in spawned]
        session_branches = {str(s["metadata"]["branch"]) for s in sessions}  # type: ignore[index]
        assert len(session_branches) == SPAWNS
        assert set(_git_lines(repo, "branch", "--format=%(refname:short)")) == {
            "main",
            *session_branches,
        }

        def kill(session_id: str) -> int:
            with httpx.Client(
                base_url=daemon.base, headers=headers, timeout=120, trust_env=False
            ) as http:
                return http.post(f"{API_PREFIX}/sessions/{session_id}/kill", json={}).status_code

        with ThreadPoolExecutor(CLIENTS) as pool:
            killed = list(pool.map(kill, [str(s["id"]) for s in sessions]))
        assert set(killed) == {200}, killed
        worktrees = _git_lines(repo, "worktree", "list", "--porcelain")
        assert [w for w in worktrees if w.startswith("worktree ")] == [f"worktree {repo}"]
