"""``start``, ``stop`` and ``status``: running the daemon and asking whether it runs.

``start`` launches ``python -m orchestrator start --foreground`` detached in its own session
(its output appended to the daemon log) and returns once the run-file names it and it
answers ``/healthz``; when it dies or never gets healthy, the part of the log this start
wrote is shown, or only the daemon's own ``error: …`` line when it refused cleanly (say, its
address is taken). ``stop`` sends SIGTERM (the daemon drains, then exits) and waits, and
never signals a pid that neither answers nor looks like the daemon.

An address that cannot be listened on (already in use, not on this machine) is one line
naming it and the three ways to choose another, never a traceback, whether the daemon runs
in the foreground (``make run``, a service manager) or was started in the background.
"""

from __future__ import annotations

import errno
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

from orchestrator.api import DaemonStatus
from orchestrator.cli.client import (
    answers,
    base_url,
    look_for_daemon,
    pid_alive,
    run_file_of,
    running,
)
from orchestrator.cli.console import ERROR_PREFIX, echo_json, err, fail, note, say, shown
from orchestrator.cli.options import (
    ConfigOption,
    DataDirOption,
    JsonFlag,
    environment,
    load_or_exit,
    resolve_data_dir,
)
from orchestrator.cli.render import ago
from orchestrator.config import ENV_ADDR, ENV_DATA_DIR, LOG_FILE_NAME, Config
from orchestrator.runfile import RUN_FILE_NAME, read_run_file

START_WAIT: Final = 20.0
STOP_WAIT: Final = 30.0
_POLL: Final = 0.1
_LOG_TAIL_LINES: Final = 30
_BIND_ERRORS: Final = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def daemon_argv(config_file: Path | None) -> list[str]:
    """How ``start`` launches the daemon in the background: this interpreter and this
    ``orchestrator`` (``-P``: an ``orchestrator/`` in the current directory, say another
    checkout, is not imported instead)."""
    argv = [sys.executable, "-P", "-m", "orchestrator", "start", "--foreground"]
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


def _fail_with_log(message: str, log: Path, offset: int, code: int | None = None) -> NoReturn:
    """Exit with ``message`` after this start's part of the log; if the daemon exited
    (``code``) after printing its own ``error: …`` line, that line alone says it all."""
    tail = _log_tail(log, offset)
    refusal = next(
        (line for line in reversed(tail.splitlines()) if line.startswith(ERROR_PREFIX)), None
    )
    if code is not None and refusal is not None:
        fail(refusal.removeprefix(ERROR_PREFIX), code if code in (1, 2) else 1)
    if tail:
        err().print(shown(f"--- the end of {log} ---\n{tail}\n---", "dim"))
    fail(message)


def bind_error(error: BaseException) -> OSError | None:
    """The failure to listen inside ``error`` (trio nests it in exception groups), if any."""
    if isinstance(error, OSError):
        return error if error.errno in _BIND_ERRORS else None
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := bind_error(inner)) is not None:
                return found
    return None


def cannot_listen(config: Config, error: OSError) -> str:
    """One line: the address, why not, and how to choose another."""
    why = (
        "is already in use" if error.errno == errno.EADDRINUSE else f"is refused ({error.strerror})"
    )
    return (
        f"cannot listen on {config.address}: the address {why}; choose another with "
        f"`orchestrator start --address 127.0.0.1:PORT`, {ENV_ADDR}=127.0.0.1:PORT or "
        f"`address: 127.0.0.1:PORT` in {config.config_path} (port 0 picks a free one)"
    )


def _run_in_foreground(config: Config) -> NoReturn:
    daemon = importlib.import_module("orchestrator.daemon")  # heavy: only here
    run_daemon: Callable[[Config], int] = daemon.run_daemon
    try:
        code = run_daemon(config)
    except Exception as error:
        found = bind_error(error)
        if found is None:
            raise
        fail(cannot_listen(config, found))
    raise typer.Exit(code)


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
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            metavar="HOST:PORT",
            help="Where the API listens (default: $ORCHESTRATOR_ADDR, else `address` in the "
            "config file, else 127.0.0.1:8731; port 0 picks a free port).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Start the daemon (in the background unless --foreground) and print its address."""
    config = load_or_exit(config_file, data_dir, address)
    if foreground:
        _run_in_foreground(config)
    already = look_for_daemon(config.data_dir)
    if already.run is not None and already.running:
        fail(
            f"a daemon is already running for {config.data_dir} at "
            f"{base_url(already.run.address)} (pid {already.run.pid})"
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
            env={**environment(address=address), ENV_DATA_DIR: str(config.data_dir)},
        )
    deadline = time.monotonic() + wait
    while True:
        code = process.poll()
        run = read_run_file(config.run_file)
        if run is not None and run.pid == process.pid and answers(run) is not None:
            break
        if code is not None:
            _fail_with_log(f"the daemon exited with code {code} while starting", log, offset, code)
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
    data_dir: DataDirOption = None,
) -> None:
    """Stop the daemon (SIGTERM: it drains, then exits) and wait for it to exit."""
    data_dir = resolve_data_dir(data_dir)
    run = running(data_dir)
    if run is None:
        left = run_file_of(data_dir)
        stale = f" (the run-file is stale: pid {left.pid} has exited)" if left else ""
        say(f"no daemon is running for {data_dir}{stale}")
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
    left = run_file_of(data_dir)
    if left is not None and left.pid == run.pid:
        note(
            "it left its run-file behind (it did not shut down cleanly); the next start replaces it"
        )


def status(*, as_json: JsonFlag = False, data_dir: DataDirOption = None) -> None:
    """Whether a daemon runs for the data dir, where, and since when (exit 1 if none)."""
    data_dir = resolve_data_dir(data_dir)
    presence = look_for_daemon(data_dir)
    run, health = presence.run, presence.health
    if run is None or health is None:
        if as_json:
            echo_json(
                DaemonStatus(
                    running=False,
                    data_dir=str(data_dir),
                    pid=run.pid if run is not None else None,
                    address=run.address if run is not None else "",
                    stale_run_file=presence.stale,
                )
            )
            raise typer.Exit(1)
        fail(presence.why_not_running())
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
