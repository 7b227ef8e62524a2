"""Start-up as a new user meets it, with the real daemon: an address already in use is one
line naming it and how to choose another (foreground and background, no traceback), and
``status`` and ``ls`` agree once the daemon died or hangs behind its run-file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest

from tests.e2e.harness import REPO_ROOT, daemon_env, kill_tmux, running_daemon, write_config


def orchestrator(
    *args: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def in_use(port: int, config: Path) -> str:
    return (
        f"error: cannot listen on 127.0.0.1:{port}: the address is already in use; choose "
        f"another with `orchestrator start --address 127.0.0.1:PORT`, "
        f"ORCHESTRATOR_ADDR=127.0.0.1:PORT or `address: 127.0.0.1:PORT` in {config} "
        f"(port 0 picks a free one)"
    )


def test_an_address_in_use_is_one_line_in_the_foreground(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_config(data)
    try:
        with taken_port() as port:
            env = daemon_env(data, address=f"127.0.0.1:{port}")
            result = orchestrator("start", "--foreground", "--config", str(config), env=env)
    finally:
        kill_tmux(data)
    assert result.returncode == 1, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "OSError" not in output
    errors = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("error:") or " ERROR " in line or " CRITICAL " in line
    ]
    assert errors == [in_use(port, config)]
    assert result.stderr.splitlines()[-1] == in_use(port, config)
    assert not (data / "daemon.json").exists()


def test_an_address_in_use_is_one_line_from_a_background_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_config(data)
    try:
        with taken_port() as port:
            result = orchestrator(
                "start",
                "--config",
                str(config),
                "--address",
                f"127.0.0.1:{port}",
                env=daemon_env(data),
            )
    finally:
        kill_tmux(data)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [in_use(port, config)]
    assert "Traceback" not in (data / "daemon.log").read_text()  # nor in the log


def test_start_address_flag_is_where_the_daemon_listens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_config(data)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = daemon_env(data, address="127.0.0.1:1")  # the flag wins over the environment
    try:
        started = orchestrator(
            "start", "--config", str(config), "--address", f"127.0.0.1:{port}", env=env
        )
        assert started.returncode == 0, started.stderr
        assert f"running at http://127.0.0.1:{port} " in started.stdout
    finally:
        stopped = orchestrator("stop", env=env)
        kill_tmux(data)
    assert stopped.returncode == 0, stopped.stderr


def _both_say(data: Path, env: Mapping[str, str], words: str) -> None:
    status, listing = orchestrator("status", env=env), orchestrator("ls", env=env)
    for result in (status, listing):
        assert result.returncode == 1, result.stdout + result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: no daemon is running for {data}: ")
        assert words in line
    assert status.stderr == listing.stderr
    as_json = orchestrator("status", "--json", env=env)
    assert as_json.returncode == 1
    reported = msgspec.json.decode(as_json.stdout)
    assert (reported["running"], reported["staleRunFile"]) == (False, True)


def test_status_and_ls_agree_when_the_daemon_died(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_daemon(data) as daemon:
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(30)
        daemon.client.close()  # the harness closes it only when it stops the daemon itself
        assert (data / "daemon.json").exists()  # left behind: stale
        env = daemon_env(data)
        _both_say(
            data, env, f"the run-file is stale (its daemon, pid {daemon.run.pid}, has exited)"
        )
        stop = orchestrator("stop", env=env)
        assert stop.returncode == 0
        assert "stale" in stop.stdout


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
def test_status_and_ls_agree_when_the_daemon_does_not_answer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_daemon(data) as daemon:
        os.kill(daemon.run.pid, signal.SIGSTOP)
        try:
            words = (
                f"the daemon at {daemon.run.address} (pid {daemon.run.pid}) did not answer, "
                "so the run-file is stale"
            )
            _both_say(data, daemon_env(data), words)
        finally:
            os.kill(daemon.run.pid, signal.SIGCONT)
