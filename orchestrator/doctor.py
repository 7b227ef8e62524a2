"""``orchestrator doctor``'s local checks: each one line, and when it fails, the fix.

The checks that need the daemon (its health, its database check, the hook tokens) are
asked over HTTP by ``orchestrator.cli.doctor``; these need only the machine and the config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

import msgspec

from orchestrator.config import Config

MIN_FREE_BYTES: Final = 512 * 1024 * 1024
"""Below this the database, its WAL and the backups may run out of room within a day."""

BUILTIN_EXECUTABLES: Final = {
    "claude-code": "claude",
    "codex": "codex",
    "aider": "aider",
    "opencode": "opencode",
}
"""The command each built-in agent harness starts (as its project names its CLI)."""

GITHUB_TOKEN_VARS: Final = ("GITHUB_TOKEN", "GH_TOKEN")

Run = Callable[[Sequence[str]], tuple[int, str]]


class Check(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """Exit code and the first line of output (127 when the program is missing)."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv of known tools, no shell
            list(argv), capture_output=True, text=True, timeout=10, check=False
        )
    except FileNotFoundError:
        return 127, ""
    except subprocess.TimeoutExpired:
        return 124, "timed out"
    text = (done.stdout or done.stderr).strip()
    return done.returncode, text.splitlines()[0] if text else ""


def tool_check(name: str, argv: Sequence[str], fix: str, run: Run = run_command) -> Check:
    code, line = run(argv)
    if code == 127:
        return Check(name=name, ok=False, detail=f"{argv[0]} is not on PATH", fix=fix)
    if code != 0:
        return Check(name=name, ok=False, detail=f"`{' '.join(argv)}` failed: {line}", fix=fix)
    return Check(name=name, ok=True, detail=line)


def agent_checks(config: Config, path: str | None = None) -> list[Check]:
    """Each configured agent's executable, and the default agent's, found on PATH."""
    wanted: dict[str, str] = {name: agent.command[0] for name, agent in config.agents.items()}
    if config.default_agent not in wanted and config.default_agent in BUILTIN_EXECUTABLES:
        wanted[config.default_agent] = BUILTIN_EXECUTABLES[config.default_agent]
    checks = []
    for name, executable in sorted(wanted.items()):
        found = shutil.which(executable, path=path)
        checks.append(
            Check(name=f"agent {name}", ok=True, detail=f"{executable} is {found}")
            if found
            else Check(
                name=f"agent {name}",
                ok=False,
                detail=f"{executable} is not on PATH",
                fix=f"install {executable}, or set agents.{name}.command in {config.config_path}",
            )
        )
    return checks


def github_token_check(env: Mapping[str, str]) -> Check:
    for var in GITHUB_TOKEN_VARS:
        if env.get(var, "").strip():
            return Check(name="github token", ok=True, detail=f"found in ${var}")
    return Check(
        name="github token",
        ok=False,
        detail="no GitHub token in $GITHUB_TOKEN or $GH_TOKEN",
        fix="export GITHUB_TOKEN=<a token with repo scope> before starting the daemon",
    )


def disk_check(data_dir: Path, minimum: int = MIN_FREE_BYTES) -> Check:
    where = data_dir if data_dir.exists() else data_dir.parent
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    detail = f"{free // (1024 * 1024)} MiB free in {where}"
    if free < minimum:
        return Check(
            name="free disk",
            ok=False,
            detail=detail,
            fix="free some space (old backups in the backups dir are a start)",
        )
    return Check(name="free disk", ok=True, detail=detail)


def stale_worktree_checks(config: Config, run: Run = run_command) -> list[Check]:
    """Per project: worktrees git lists as prunable (their directories are gone)."""
    checks = []
    for project in config.projects.values():
        code, _ = run(["git", "-C", str(project.path), "rev-parse", "--git-dir"])
        if code != 0:
            continue
        prunable = _prunable(project.path)
        name = f"worktrees of {project.id}"
        if prunable:
            checks.append(
                Check(
                    name=name,
                    ok=False,
                    detail=f"{len(prunable)} stale: {', '.join(prunable)}",
                    fix="orchestrator cleanup (or git worktree prune)",
                )
            )
        else:
            checks.append(Check(name=name, ok=True, detail="no stale worktrees"))
    return checks


def _prunable(repo: Path) -> list[str]:
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", "-C", str(repo), "worktree", "list", "--porcelain"],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    stale, current = [], ""
    for line in done.stdout.splitlines():
        if line.startswith("worktree "):
            current = line.removeprefix("worktree ")
        elif line.startswith("prunable"):
            stale.append(current)
    return stale


def local_checks(config: Config, env: Mapping[str, str] | None = None) -> list[Check]:
    """Everything that needs neither the daemon nor its database."""
    environ = os.environ if env is None else env
    return [
        tool_check("tmux", ["tmux", "-V"], "install tmux (e.g. apt install tmux)"),
        tool_check("git", ["git", "--version"], "install git (e.g. apt install git)"),
        *agent_checks(config, environ.get("PATH")),
        disk_check(config.data_dir),
        *stale_worktree_checks(config),
    ]


__all__ = [
    "BUILTIN_EXECUTABLES",
    "MIN_FREE_BYTES",
    "Check",
    "agent_checks",
    "disk_check",
    "github_token_check",
    "local_checks",
    "run_command",
    "stale_worktree_checks",
    "tool_check",
]
