"""``doctor``: checks the machine, the config, the daemon and its database, one line each
with the fix for what fails; exit 1 when anything fails.

The local checks are ``orchestrator.doctor``'s. The database is checked by the daemon when
it runs (``GET /database/check``: it reads beside its own writer), else offline by the
same child process ``restore-backup`` uses (the CLI never opens SQLite itself).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import msgspec

from orchestrator.api import API_PREFIX, DATABASE_CHECK_PATH, DatabaseCheckOut
from orchestrator.cli.backup import offline
from orchestrator.cli.client import Presence, base_url, look_for_daemon
from orchestrator.cli.console import echo_json, say
from orchestrator.cli.options import ConfigOption, JsonFlag, environment, resolve_data_dir
from orchestrator.config import Config, load_config
from orchestrator.doctor import Check, disk_check, github_token_check, local_checks, tool_check
from orchestrator.domain.errors import ConfigError

__all__ = ["daemon_check", "doctor", "format_check"]


def format_check(check: Check) -> str:
    mark = "ok  " if check.ok else "FAIL"
    fix = f" (fix: {check.fix})" if not check.ok and check.fix else ""
    return f"{mark} {check.name}: {check.detail}{fix}"


def daemon_check(presence: Presence) -> Check:
    if presence.health is None:
        return Check(
            name="daemon",
            ok=False,
            detail=presence.why_not_running().split(";")[0],
            fix="orchestrator start",
        )
    run = presence.run
    where = f"{run.address} (pid {run.pid})" if run is not None else ""
    status = presence.health.status
    if status != "ok":
        return Check(
            name="daemon",
            ok=False,
            detail=f"{where} answers but is {status}",
            fix="see `orchestrator status` and the daemon log",
        )
    return Check(
        name="daemon", ok=True, detail=f"{where} healthy, version {presence.health.version}"
    )


def _database_check(presence: Presence, data_dir: Path) -> Check:
    fix = "orchestrator restore-backup <newest file in the backups dir> (daemon stopped)"
    run = presence.run
    if presence.health is not None and run is not None:
        try:
            response = httpx.get(
                base_url(run.address) + API_PREFIX + DATABASE_CHECK_PATH,
                headers={"authorization": f"Bearer {run.token}"},
                timeout=60,
                trust_env=False,
            )
            answer = msgspec.json.decode(response.content, type=DatabaseCheckOut)
        except (httpx.HTTPError, msgspec.MsgspecError) as error:
            return Check(name="database", ok=False, detail=f"the daemon did not say: {error}")
        if answer.ok:
            return Check(name="database", ok=True, detail="quick_check ok (by the daemon)")
        return Check(name="database", ok=False, detail=answer.problem, fix=fix)
    done = offline("quick-check", "--data-dir", str(data_dir))
    if done.returncode == 0:
        return Check(name="database", ok=True, detail="quick_check ok")
    problem = done.stderr.strip().removeprefix("error: ") or "the check failed"
    return Check(name="database", ok=False, detail=problem, fix=fix)


def _config(config_file: Path | None) -> tuple[Config | None, Check]:
    try:
        config = load_config(config_file, env=environment())
    except ConfigError as error:
        return None, Check(
            name="config", ok=False, detail=str(error), fix="orchestrator config check"
        )
    where = str(config.config_path) if config.config_loaded else "no config file: defaults"
    return config, Check(name="config", ok=True, detail=f"valid ({where})")


def doctor(*, config_file: ConfigOption = None, as_json: JsonFlag = False) -> None:
    """Check tmux, git, the agents, the GitHub token, disk, config, daemon and database;
    one line each, with a fix for what fails. Exit 1 when anything fails."""
    data_dir = resolve_data_dir(None)
    config, config_check = _config(config_file)
    checks = [config_check]
    if config is not None:
        checks += local_checks(config)
    else:
        checks += [
            tool_check("tmux", ["tmux", "-V"], "install tmux (e.g. apt install tmux)"),
            tool_check("git", ["git", "--version"], "install git (e.g. apt install git)"),
            disk_check(data_dir),
        ]
    checks.append(github_token_check(os.environ))
    presence = look_for_daemon(data_dir)
    checks.append(daemon_check(presence))
    checks.append(_database_check(presence, data_dir))
    if as_json:
        echo_json(checks)
    else:
        for check in checks:
            say(format_check(check))
    if not all(check.ok for check in checks):
        raise SystemExit(1)
