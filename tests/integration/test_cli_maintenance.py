"""``orchestrator cleanup``, ``rm`` and ``restore --fresh`` against the stand-in daemon of
test_cli.py: what they send, what they print, and their exit codes (0 done, 1 refused or
unreachable, 2 a usage error)."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.api import (
    CleanupIn,
    CleanupOut,
    ErrorCode,
    PruneOut,
    ReclaimedOut,
    RestoreIn,
)
from tests.integration.test_cli import (
    SESSION,
    FakeDaemon,
    Invoke,
    daemon,
    data_dir,
    env,
    error_body,
    invoke,
    running,
)

__all__ = ["daemon", "data_dir", "env", "invoke", "running"]  # fixtures of test_cli.py

REPORT = CleanupOut(
    dry_run=False,
    sessions=[
        ReclaimedOut(session_id="app-1", pane="app-1", workspace="/wt/app/app-1"),
        ReclaimedOut(
            session_id="app-2",
            pane="app-2",
            kept="/wt/app/app-2",
            reason="workspace /wt/app/app-2: it has uncommitted changes (notes.txt)",
        ),
        ReclaimedOut(session_id="app-3", reason="tmux kill-session app-3 failed: busy"),
    ],
    pruned=[
        PruneOut(
            project_id="app",
            entries=["Removing worktrees/app-9: gitdir file points to non-existent location"],
        ),
        PruneOut(project_id="old", entries=[], error="git worktree prune in /gone failed"),
    ],
)


def sent(daemon: FakeDaemon, method: str, path: str) -> list[bytes]:
    return [seen.body for seen in daemon.requests(method, path)]


def test_cleanup_lists_what_it_removed_and_what_it_kept(
    invoke: Invoke, running: FakeDaemon
) -> None:
    running.reply("POST", "/cleanup", REPORT)
    result = invoke("cleanup")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "remove app-1: pane app-1, worktree /wt/app/app-1",
        "remove app-2: pane app-2",
        "prune app: Removing worktrees/app-9: gitdir file points to non-existent location",
    ]
    assert result.stderr.splitlines() == [
        "keep app-2: worktree /wt/app/app-2: workspace /wt/app/app-2: it has uncommitted "
        "changes (notes.txt)",
        "keep app-3: nothing freed: tmux kill-session app-3 failed: busy",
        "could not prune old: git worktree prune in /gone failed",
    ]
    assert sent(running, "POST", "/cleanup") == [b"{}"]


def test_a_dry_run_of_one_session_says_what_would_go(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply(
        "POST",
        "/cleanup",
        CleanupOut(
            dry_run=True,
            sessions=[ReclaimedOut(session_id="app-1", workspace="/wt/app/app-1")],
            pruned=[PruneOut(project_id="app", entries=[])],
        ),
    )
    result = invoke("cleanup", "--dry-run", "--session", "app-1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "would remove app-1: worktree /wt/app/app-1\n"
    assert result.stderr == ""
    [body] = sent(running, "POST", "/cleanup")
    assert msgspec.json.decode(body, type=CleanupIn) == CleanupIn(dry_run=True, session_id="app-1")


def test_cleanup_with_nothing_to_do_says_so_and_json_is_the_report(
    invoke: Invoke, running: FakeDaemon
) -> None:
    running.reply("POST", "/cleanup", CleanupOut(dry_run=False, sessions=[], pruned=[]))
    result = invoke("cleanup")
    assert (result.exit_code, result.stdout) == (0, "nothing to clean up\n")
    running.reply("POST", "/cleanup", REPORT)
    result = invoke("cleanup", "--json")
    assert result.exit_code == 0, result.stderr
    assert msgspec.json.decode(result.stdout, type=CleanupOut) == REPORT


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [(409, ErrorCode.CONFLICT, 1), (404, ErrorCode.NOT_FOUND, 2), (400, ErrorCode.BAD_REQUEST, 2)],
)
def test_cleanup_refusals_exit_with_the_message(
    invoke: Invoke, running: FakeDaemon, status: int, code: ErrorCode, exit_code: int
) -> None:
    message = "cleanup app-1: the session is live (working); kill it first"
    running.reply("POST", "/cleanup", error_body(code, message), status=status)
    result = invoke("cleanup", "--session", "app-1")
    assert result.exit_code == exit_code
    assert result.stdout == ""
    assert f"error: {message} (HTTP {status})" in result.stderr.replace("\n", " ")


def test_rm_removes_and_says_what_it_freed(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply("DELETE", "/sessions/app-1", ReclaimedOut(session_id="app-1", pane="app-1"))
    result = invoke("rm", "app-1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "removed app-1 (and its pane app-1)\n"
    running.reply("DELETE", "/sessions/app-2", ReclaimedOut(session_id="app-2"))
    result = invoke("rm", "app-2", "--json")
    assert result.exit_code == 0, result.stderr
    assert msgspec.json.decode(result.stdout, type=ReclaimedOut) == ReclaimedOut(session_id="app-2")
    assert sent(running, "DELETE", "/sessions/app-1") == [b""]


def test_rm_of_a_live_session_is_refused_and_a_missing_id_is_a_usage_error(
    invoke: Invoke, running: FakeDaemon
) -> None:
    message = "rm app-1: the session is live (working); kill it first (`orchestrator kill app-1`)"
    running.reply("DELETE", "/sessions/app-1", error_body(ErrorCode.CONFLICT, message), 409)
    result = invoke("rm", "app-1")
    assert result.exit_code == 1
    assert message in result.stderr.replace("\n", " ")
    assert invoke("rm").exit_code == 2  # no id given
    assert invoke("cleanup", "--bogus").exit_code == 2


def test_restore_fresh_asks_for_a_new_conversation(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply("POST", "/sessions/app-1/restore", SESSION)
    assert invoke("restore", "app-1", "--fresh").exit_code == 0
    assert invoke("restore", "app-1").exit_code == 0
    bodies = sent(running, "POST", "/sessions/app-1/restore")
    assert [msgspec.json.decode(b, type=RestoreIn) for b in bodies] == [
        RestoreIn(fresh=True),
        RestoreIn(),
    ]
    assert bodies[1] == b"{}"


def test_without_a_daemon_cleanup_and_rm_are_runtime_errors(invoke: Invoke) -> None:
    for args in (("cleanup",), ("rm", "app-1")):
        result = invoke(*args)
        assert result.exit_code == 1
        assert "no daemon is running" in result.stderr
