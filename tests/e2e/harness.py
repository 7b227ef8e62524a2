"""Run the real daemon as a subprocess on a temp data dir and a free loopback port, and talk
to it only the way users do: HTTP, the CLI, and the files it leaves in its data dir."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from adapters.http.auth import TokenAuthority
from orchestrator.api import API_PREFIX, RunFile
from orchestrator.daemon import tmux_socket_path
from orchestrator.runfile import HOOK_KEY_NAME, read_hook_key, read_run_file

REPO_ROOT = Path(__file__).resolve().parents[2]

# An agent that records everything typed into its pane, line by line, in its worktree.
RECORDER = ["sh", "-c", "cat > received.txt"]


def wait_for(predicate: Callable[[], bool], *, seconds: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what or predicate}")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "config", "user.name", "Dev")
    (path / "README.md").write_text("hello\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "init")
    return path


def write_config(
    data_dir: Path,
    *,
    drain_timeout: str = "10s",
    extra: str = "",
    agents: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """The daemon's config: the ``recorder`` agent plus ``agents`` (name: argv)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "orchestrator.yaml"
    commands = {"recorder": RECORDER, **(agents or {})}
    # JSON is YAML: an argv with any quoting in it is written as it is.
    listed = "".join(
        f"  {name}:\n    command: {json.dumps(list(argv))}\n" for name, argv in commands.items()
    )
    config.write_text(
        "notifiers:\n  desktop: {enabled: false}\n"
        f"agents:\n{listed}"
        f"shutdown:\n  drainTimeout: {drain_timeout}\n"
        "reaper:\n  tick: 1s\n" + extra
    )
    return config


@dataclass
class Daemon:
    """A daemon subprocess. ``client`` carries the daemon token."""

    data_dir: Path
    process: subprocess.Popen[bytes]
    run: RunFile
    client: httpx.Client = field(repr=False)

    @property
    def base(self) -> str:
        return f"http://{self.run.address}"

    def session_token(self, session_id: str) -> str:
        """The session's hook token, from the hook key the daemon keeps in its data dir."""
        hook_key = read_hook_key(self.data_dir / HOOK_KEY_NAME)
        assert hook_key is not None
        return TokenAuthority(self.run.token, hook_key).session_token(session_id)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, f"{API_PREFIX}{path}", **kwargs)

    def post(self, path: str, body: object, **kwargs: Any) -> httpx.Response:
        return self.api("POST", path, content=msgspec.json.encode(body), **kwargs)

    def log(self) -> str:
        return (self.data_dir / "daemon.log").read_text(errors="replace")

    def kill_9(self) -> None:
        """``kill -9``: no drain, the run-file stays behind."""
        self.process.kill()
        self.process.wait(timeout=30)
        self.client.close()

    def stop(self, *, timeout: float = 30.0) -> int:
        """SIGTERM and wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.client.close()


def daemon_env(data_dir: Path, address: str = "127.0.0.1:0") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(ORCHESTRATOR_DATA_DIR=str(data_dir), ORCHESTRATOR_ADDR=address)
    return env


def start_daemon(data_dir: Path, *, config: Path | None = None, umask: int = -1) -> Daemon:
    """Start ``orchestrator start --foreground`` (under ``umask``, if given) and wait until
    it is healthy."""
    config = config or write_config(data_dir)
    log = (data_dir / "daemon.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "start", "--foreground", "--config", str(config)],
        cwd=REPO_ROOT,
        env=daemon_env(data_dir),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        umask=umask,
    )
    log.close()
    run_file = data_dir / "daemon.json"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"daemon exited with {process.returncode}:\n{_tail(data_dir)}")
        found = read_run_file(run_file)
        return found is not None and found.pid == process.pid

    wait_for(ready, seconds=30, what="the run-file")
    run = read_run_file(run_file)
    assert run is not None
    client = httpx.Client(
        base_url=f"http://{run.address}",
        headers={"Authorization": f"Bearer {run.token}"},
        timeout=10,
        trust_env=False,
    )
    assert client.get("/healthz").status_code == 200
    return Daemon(data_dir, process, run, client)


def _tail(data_dir: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        return "\n".join((data_dir / "daemon.log").read_text().splitlines()[-30:])
    return ""


@contextlib.contextmanager
def running_daemon(data_dir: Path, *, config: Path | None = None) -> Iterator[Daemon]:
    daemon = start_daemon(data_dir, config=config)
    try:
        yield daemon
    finally:
        if daemon.process.poll() is None:
            daemon.stop()
        kill_tmux(data_dir)


def kill_tmux(data_dir: Path) -> None:
    """Agents outlive the daemon on purpose; tests end them."""
    socket = tmux_socket_path(data_dir)
    subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False)


def sse_events(
    daemon: Daemon,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    count: int,
    seconds: float = 10.0,
) -> list[tuple[int, str, dict[str, Any]]]:
    """Read ``count`` events from ``/events``: (seq, type, data)."""
    events: list[tuple[int, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    with daemon.client.stream(
        "GET", f"{API_PREFIX}/events", headers=headers, params=params, timeout=seconds
    ) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(":")
                fields[name] = fields.get(name, "") + value.removeprefix(" ")
                continue
            if "data" in fields:
                events.append(
                    (
                        int(fields.get("id", "0")),
                        fields.get("event", ""),
                        msgspec.json.decode(fields["data"]),
                    )
                )
            fields = {}
            if len(events) >= count:
                break
    return events
