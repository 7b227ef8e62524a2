"""Finding the daemon and calling its API.

The daemon is found through the run-file ``<data dir>/daemon.json`` (pid, address, bearer
token) and counts as running only while that pid is alive *and* answers ``/healthz``; a
run-file without one is stale (the daemon died without removing it), and every command
says so alike. It is called at ``/api/v1`` with httpx, never through a proxy. Every failure
exits the CLI with a message: 1 when the daemon is missing, unreachable or refuses, 2 when
it answers that the input was bad or names nothing it knows (400, 404, 413, 422): an
unknown project, session or agent is the caller's mistake.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final, NoReturn, TypeVar

import httpx
import msgspec

from orchestrator.api import API_PREFIX, ErrorBody, Health, RunFile
from orchestrator.cli.console import fail
from orchestrator.cli.options import resolve_data_dir
from orchestrator.config import LOG_FILE_NAME
from orchestrator.runfile import RUN_FILE_NAME, read_run_file

_USAGE_STATUSES: Final = frozenset({400, 404, 413, 422})

_T = TypeVar("_T")

Params = Mapping[str, str | int | None]
"""Query parameters; a None value is left out."""


def cli_version() -> str:
    try:
        return metadata.version("orchestrator")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (reaping it first if it is our own exited child)."""
    if pid <= 0:
        return False
    with suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def base_url(address: str) -> str:
    return f"http://{address}"


def answers(run: RunFile, timeout: float = 2.0) -> Health | None:
    """``GET /healthz`` at the run-file's address: the health, or None if nobody answers."""
    try:
        response = httpx.get(base_url(run.address) + "/healthz", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return None
    try:
        return msgspec.json.decode(response.content, type=Health)
    except msgspec.MsgspecError:
        return Health(status=f"HTTP {response.status_code}")


def run_file_of(data_dir: Path) -> RunFile | None:
    """The data dir's run-file, if there is one; exits 1 if it cannot be read."""
    path = data_dir / RUN_FILE_NAME
    try:
        return read_run_file(path)
    except OSError as error:
        fail(f"cannot read the run-file {path}: {error.strerror or error}")


def running(data_dir: Path) -> RunFile | None:
    """The run-file of the data dir's daemon, if its pid is alive."""
    run = run_file_of(data_dir)
    return run if run is not None and pid_alive(run.pid) else None


@dataclass(frozen=True, slots=True)
class Presence:
    """What the data dir says about its daemon: the run-file (if any), whether its pid is
    alive, and its ``/healthz`` answer (None: it did not answer)."""

    data_dir: Path
    run: RunFile | None
    alive: bool
    health: Health | None

    @property
    def running(self) -> bool:
        return self.health is not None

    @property
    def stale(self) -> bool:
        """A run-file is there, but no daemon answers for it."""
        return self.run is not None and self.health is None

    def why_not_running(self) -> str:
        """The one-line message for a daemon that is not running (``running`` is false)."""
        start = "start one with `orchestrator start`"
        run, data_dir = self.run, self.data_dir
        if run is None:
            return f"no daemon is running for {data_dir}; {start}"
        if not self.alive:
            return (
                f"no daemon is running for {data_dir}: the run-file is stale (its daemon, "
                f"pid {run.pid}, has exited); {start}"
            )
        return (
            f"no daemon is running for {data_dir}: the daemon at {run.address} (pid {run.pid}) "
            f"did not answer, so the run-file is stale (if that daemon hangs, see "
            f"{data_dir / LOG_FILE_NAME}); {start}"
        )


def look_for_daemon(data_dir: Path) -> Presence:
    run = run_file_of(data_dir)
    alive = run is not None and pid_alive(run.pid)
    health = answers(run) if run is not None and alive else None
    return Presence(data_dir, run, alive, health)


def find_daemon(data_dir: Path) -> RunFile:
    """The run-file of the daemon that answers for ``data_dir``; else exits 1 saying why."""
    presence = look_for_daemon(data_dir)
    if presence.run is None or not presence.running:
        fail(presence.why_not_running())
    return presence.run


class Client:
    """Calls the daemon's API with the run-file's bearer token; failures exit the CLI."""

    def __init__(self, http: httpx.Client, run: RunFile, data_dir: Path) -> None:
        self.http = http
        self.run = run
        self.data_dir = data_dir

    def _unreachable(self, error: httpx.HTTPError) -> NoReturn:
        fail(
            f"the daemon at {self.run.address} (pid {self.run.pid}) did not answer: "
            f"{type(error).__name__}: {error}; see {self.data_dir / LOG_FILE_NAME}"
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: msgspec.Struct | None = None,
        params: Params | None = None,
    ) -> httpx.Response:
        try:
            response = self.http.request(
                method,
                API_PREFIX + path,
                content=None if body is None else msgspec.json.encode(body),
                headers={"content-type": "application/json"} if body is not None else None,
                params=_params(params),
            )
        except httpx.HTTPError as error:
            self._unreachable(error)
        _check(response)
        return response

    def call(
        self,
        method: str,
        path: str,
        kind: type[_T],
        *,
        body: msgspec.Struct | None = None,
        params: Params | None = None,
    ) -> _T:
        return decode(self.request(method, path, body=body, params=params).content, kind)

    @contextmanager
    def stream(
        self, path: str, params: Params, read_timeout: float | None
    ) -> Iterator[httpx.Response]:
        """A streaming ``GET``; a read timeout (``httpx.ReadTimeout``) is the caller's."""
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            with self.http.stream(
                "GET",
                API_PREFIX + path,
                params=_params(params),
                headers={"accept": "text/event-stream"},
                timeout=timeout,
            ) as response:
                if not response.is_success:
                    response.read()
                    _check(response)
                yield response
        except httpx.ReadTimeout:
            raise
        except httpx.HTTPError as error:
            self._unreachable(error)


def _params(params: Params | None) -> dict[str, str | int] | None:
    return None if params is None else {k: v for k, v in params.items() if v is not None}


def _check(response: httpx.Response) -> None:
    if response.is_success:
        return
    status = response.status_code
    try:
        message = msgspec.json.decode(response.content, type=ErrorBody).error.message
    except msgspec.MsgspecError:
        message = response.text.strip()[:300] or response.reason_phrase
    if status == 401:
        message += " (the daemon refused the run-file's token: is the run-file stale?)"
    fail(f"{message} (HTTP {status})", 2 if status in _USAGE_STATUSES else 1)


def decode(content: bytes, kind: type[_T]) -> _T:
    """``content`` as ``kind``; anything else exits (the daemon answered off the wire format)."""
    try:
        return msgspec.json.decode(content, type=kind)
    except msgspec.MsgspecError as error:
        fail(f"unexpected answer from the daemon: {error}")


@contextmanager
def connect(data_dir: Path | None = None) -> Iterator[Client]:
    """A client of the daemon of ``data_dir`` (default: the environment's); exits if none
    answers."""
    data_dir = resolve_data_dir(data_dir)
    run = find_daemon(data_dir)
    headers = {
        "authorization": f"Bearer {run.token}",
        "user-agent": f"orchestrator-cli/{cli_version()}",
    }
    with httpx.Client(
        base_url=base_url(run.address),
        headers=headers,
        timeout=httpx.Timeout(30.0, connect=3.0),
        trust_env=False,  # the daemon is local: never through a proxy
    ) as http:
        yield Client(http, run, data_dir)


__all__ = [
    "Client",
    "Params",
    "Presence",
    "answers",
    "base_url",
    "cli_version",
    "connect",
    "decode",
    "find_daemon",
    "look_for_daemon",
    "pid_alive",
    "run_file_of",
    "running",
]
