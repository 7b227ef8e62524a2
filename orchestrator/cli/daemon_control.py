"""``start``, ``stop`` and ``status``: running the daemon and asking whether it runs.

``start`` launches ``python -m orchestrator start --foreground`` detached in its own session
(its output appended to the daemon log) and returns once the run-file names it and it
answers ``/healthz``; when it dies or never gets healthy, the part of the log this start
wrote is shown. ``stop`` sends SIGTERM (the daemon drains, then exits) and waits, and never
signals a pid that neither answers nor looks like the daemon.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final, NoReturn

import typer
from rich.text import Text

from orchestrator.api import DaemonStatus
from orchestrator.cli.client import answers, base_url, no_daemon, pid_alive, running
from orchestrator.cli.console import echo_json, err, fail, note, say
from orchestrator.cli.options import ConfigOption, JsonFlag, load_or_exit
from orchestrator.cli.render import ago
from orchestrator.config import ENV_DATA_DIR, LOG_FILE_NAME, Config, data_dir_from_env
from orchestrator.runfile import RUN_FILE_NAME, read_run_file

START_WAIT: Final = 20.0
STOP_WAIT: Final = 30.0
_POLL: Final = 0.1
_LOG_TAIL_LINES: Final = 30


def daemon_argv(config_file: Path | None) -> list[str]:
    """How ``start`` launches the daemon in the background."""
    argv = [sys.executable, "-m", "orchestrator", "start", "--foreground"]
    if config_file is not None:
        argv += ["--config", str(config_file.expanduser().absolute())]
    return argv


def _log_tail(log: Path, offset: int) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])


def _fail_with_log(message: str, log: Path, offset: int) -> NoReturn:
    tail = _log_tail(log, offset)
    if tail:
        err().print(Text(f"--- the end of {log} ---\n{tail}\n---", style="dim"))
    fail(message)


def start(
    *,
    foreground: Annotated[
        bool, typer.Option("--foreground", "-f", help="Run in this process (for service managers).")
    ] = False,
    config_file: ConfigOption = None,
    wait: Annotated[
        float,
        typer.Option("--wait", help="Seconds to wait for the daemon to become healthy.", min=1),
    ] = START_WAIT,
) -> None:
    """Start the daemon (in the background unless --foreground) and print its address."""
    config = load_or_exit(config_file)
    if foreground:
        daemon = importlib.import_module("orchestrator.daemon")  # heavy: only here
        run_daemon: Callable[[Config], int] = daemon.run_daemon
        raise typer.Exit(run_daemon(config))
    already = running(config.data_dir)
    if already is not None and answers(already) is not None:
        fail(
            f"a daemon is already running for {config.data_dir} at "
            f"{base_url(already.address)} (pid {already.pid})"
        )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    log = config.log_file
    with log.open("ab") as out:
        offset = out.tell()
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            daemon_argv(config_file),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives this shell and its Ctrl-C
            env={**os.environ, ENV_DATA_DIR: str(config.data_dir)},
        )
    deadline = time.monotonic() + wait
    while True:
        code = process.poll()
        run = read_run_file(config.run_file)
        if run is not None and run.pid == process.pid and answers(run) is not None:
            break
        if code is not None:
            _fail_with_log(f"the daemon exited with code {code} while starting", log, offset)
        if time.monotonic() > deadline:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            _fail_with_log(
                f"the daemon did not become healthy within {wait:g}s (stopped it)", log, offset
            )
        time.sleep(_POLL)
    # Detached on purpose: the daemon outlives this command and is never waited for here.
    process.returncode = 0
    say(
        f"orchestrator is running at {base_url(run.address)} (pid {run.pid}, data dir {config.data_dir})"
    )


def _is_our_daemon(pid: int) -> bool:
    """Guards SIGTERM against a recycled pid when the daemon does not answer."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no procfs: trust the run-file
    except OSError:
        return False
    return b"orchestrator" in cmdline


def stop(
    *,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the daemon to exit.", min=0)
    ] = STOP_WAIT,
) -> None:
    """Stop the daemon (SIGTERM: it drains, then exits) and wait for it to exit."""
    data_dir = data_dir_from_env()
    run = running(data_dir)
    if run is None:
        say(f"no daemon is running for {data_dir}")
        return
    if answers(run) is None and not _is_our_daemon(run.pid):
        fail(
            f"pid {run.pid} from {data_dir / RUN_FILE_NAME} is alive but does not answer at "
            f"{run.address} and does not look like the daemon; not signalling it"
        )
    try:
        os.kill(run.pid, signal.SIGTERM)
    except ProcessLookupError:
        say(f"no daemon is running for {data_dir}")
        return
    deadline = time.monotonic() + timeout
    while pid_alive(run.pid):
        if time.monotonic() > deadline:
            fail(
                f"the daemon (pid {run.pid}) is still running after {timeout:g}s; see "
                f"{data_dir / LOG_FILE_NAME}, or end it at once with `kill -KILL {run.pid}`"
            )
        time.sleep(_POLL)
    say(f"stopped the daemon (pid {run.pid})")
    left = read_run_file(data_dir / RUN_FILE_NAME)
    if left is not None and left.pid == run.pid:
        note(
            "it left its run-file behind (it did not shut down cleanly); the next start replaces it"
        )


def status(*, as_json: JsonFlag = False) -> None:
    """Whether a daemon runs for the data dir, where, and since when."""
    data_dir = data_dir_from_env()
    run = running(data_dir)
    health = answers(run) if run is not None else None
    if run is None or health is None:
        if as_json:
            echo_json(DaemonStatus(running=False, data_dir=str(data_dir)))
            raise typer.Exit(1)
        if run is None:
            no_daemon(data_dir)
        fail(
            f"the daemon at {run.address} (pid {run.pid}) does not answer; see {data_dir / LOG_FILE_NAME}"
        )
    out = DaemonStatus(
        running=True,
        data_dir=str(data_dir),
        pid=run.pid,
        address=run.address,
        version=health.version or run.version,
        started_at=run.started_at,
        health=health.status,
    )
    if as_json:
        echo_json(out)
        return
    say(f"running at {base_url(run.address)} (pid {run.pid}, {health.status})", "green")
    say(f"data dir  {data_dir}")
    say(f"started   {run.started_at.astimezone():%Y-%m-%d %H:%M:%S} ({ago(run.started_at)})")
    if out.version:
        say(f"version   {out.version}")


__all__ = ["START_WAIT", "STOP_WAIT", "daemon_argv", "start", "status", "stop"]
