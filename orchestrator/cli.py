"""The ``orchestrator`` command: a thin HTTP client of the daemon, plus ``start``/``stop``.

It never opens the database (nor imports SQLAlchemy or the engine): it finds the daemon
through the run-file ``<data dir>/daemon.json`` (pid, address, bearer token) and talks to
``/api/v1`` with httpx. The data dir is ``$ORCHESTRATOR_DATA_DIR`` (see
``orchestrator.config``).

Exit codes: 0 ok; 1 a runtime error (no daemon, the daemon refused or failed); 2 a usage
error (bad arguments, a bad config file, or the daemon answering 400 to bad input).
Listings print rich tables, or JSON with ``--json`` (``events --json`` prints one event per
line).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Final, NoReturn, TypeVar
from urllib.parse import quote

import httpx
import msgspec
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.api import (
    API_PREFIX,
    RESYNC_EVENT,
    ErrorBody,
    EventOut,
    Health,
    KillIn,
    KillOut,
    ProjectIn,
    RunFile,
    SendIn,
    SessionOut,
    SpawnIn,
)
from orchestrator.config import (
    ENV_DATA_DIR,
    LOG_FILE_NAME,
    Config,
    data_dir_from_env,
    example_config,
    load_config,
)
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import Priority, SessionStatus
from orchestrator.domain.records import Notification, Project
from orchestrator.runfile import RUN_FILE_NAME, read_run_file

__all__ = ["HEAD_SEQ_HEADER", "app", "daemon_argv", "main"]

HEAD_SEQ_HEADER: Final = "X-Orchestrator-Head-Seq"
"""An optional response header of ``GET /api/v1/events``: the newest change-log seq when
the stream opened. ``events`` without ``--follow`` stops once it has printed up to it.
Without it, it stops before the first event created after the command started, or after
``_IDLE_END`` seconds without an event."""

_IDLE_END = 1.5
_START_WAIT: Final = 20.0
_STOP_WAIT: Final = 30.0
_POLL: Final = 0.1
_LOG_TAIL_LINES: Final = 30
_USAGE_STATUSES: Final = frozenset({400, 413, 422})

_T = TypeVar("_T")

app = typer.Typer(
    name="orchestrator",
    help="Supervise AI coding-agent sessions, each in its own worktree, pane and PR.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would include the bearer token
)
project_app = typer.Typer(help="Register and list projects.", no_args_is_help=True)
config_app = typer.Typer(
    help="Check the configuration file or print an example.", no_args_is_help=True
)
app.add_typer(project_app, name="project")
app.add_typer(config_app, name="config")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The config file (default: $ORCHESTRATOR_CONFIG, else orchestrator.yaml in the data dir).",
        dir_okay=False,
    ),
]
SessionArg = Annotated[str, typer.Argument(help="The session id, e.g. my-app-3.")]


# --- output ------------------------------------------------------------------------------


def _out() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _say(message: str, style: str = "") -> None:
    _out().print(Text(message, style=style))


def _note(message: str) -> None:
    _err().print(Text(message, style="yellow"))


def _fail(message: str, code: int = 1) -> NoReturn:
    _err().print(Text("error: ", style="bold red") + Text(message))
    raise typer.Exit(code)


def _echo_json(value: object) -> None:
    typer.echo(msgspec.json.encode(value).decode())


def _ago(when: datetime, now: datetime | None = None) -> str:
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    if seconds < 0:
        return when.astimezone().strftime("%Y-%m-%d %H:%M")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


_STATUS_STYLES: Final = {
    SessionStatus.CI_FAILED: "red",
    SessionStatus.ERRORED: "bold red",
    SessionStatus.STUCK: "bold red",
    SessionStatus.NEEDS_INPUT: "bold yellow",
    SessionStatus.CHANGES_REQUESTED: "yellow",
    SessionStatus.DETECTING: "yellow",
    SessionStatus.APPROVED: "green",
    SessionStatus.MERGEABLE: "green",
    SessionStatus.MERGED: "green",
    SessionStatus.DONE: "green",
    SessionStatus.KILLED: "dim",
    SessionStatus.TERMINATED: "dim",
}
_PRIORITY_STYLES: Final = {Priority.URGENT: "bold red", Priority.ACTION: "yellow"}


def _print_table(table: Table, empty: str) -> None:
    if table.row_count:
        _out().print(table)
    else:
        _say(empty, "dim")


def _table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _pr(session: SessionOut) -> str:
    return f"#{session.pr.number}" if session.pr.exists else "-"


def _agent(session: SessionOut) -> str:
    """The agent the session runs (recorded since migration 0002; else its harness)."""
    return session.metadata.agent or session.lifecycle.harness.value or "-"


def _session_row(session: SessionOut) -> list[Text]:
    return [
        Text(session.id),
        Text(session.status.value, style=_STATUS_STYLES.get(session.status, "")),
        Text(_agent(session)),
        Text(session.metadata.branch or "-"),
        Text(_pr(session)),
        Text(_ago(session.updated_at)),
    ]


def _show_session(session: SessionOut) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    life, meta, pr = session.lifecycle, session.metadata, session.pr
    activity = (
        f"{life.activity.state.value} ({_ago(life.activity.last_activity_at)}, {life.activity.source.value})"
        if life.activity is not None
        else "-"
    )
    rows: list[tuple[str, str | Text]] = [
        ("id", session.id),
        ("project", session.project_id),
        ("status", Text(session.status.value, style=_STATUS_STYLES.get(session.status, ""))),
        (
            "state",
            life.state.value
            + (f" ({life.termination_reason.value})" if life.termination_reason else ""),
        ),
        ("alive", "yes" if life.is_alive else "no"),
        ("activity", activity),
        ("agent", _agent(session)),
        ("issue", session.issue_id or "-"),
        ("kind", session.kind.value),
        ("branch", meta.branch or "-"),
        ("workspace", meta.workspace_path or "-"),
        ("runtime", meta.runtime_handle_id or "-"),
        ("agent session", meta.agent_session_id or "-"),
    ]
    if pr.exists:
        state = (
            "merged" if pr.merged else "closed" if pr.closed else "draft" if pr.draft else "open"
        )
        rows += [
            ("pr", f"#{pr.number} {pr.url} ({state})"),
            ("ci", pr.ci.value),
            ("review", pr.review.value + (" (unresolved comments)" if pr.review_comments else "")),
            ("mergeability", pr.mergeability.value),
        ]
    else:
        rows.append(("pr", "-"))
    rows += [
        (
            "created",
            f"{session.created_at.astimezone():%Y-%m-%d %H:%M:%S} ({_ago(session.created_at)})",
        ),
        (
            "updated",
            f"{session.updated_at.astimezone():%Y-%m-%d %H:%M:%S} ({_ago(session.updated_at)})",
        ),
    ]
    for key, value in rows:
        grid.add_row(Text(key), value if isinstance(value, Text) else Text(value))
    _out().print(grid)


# --- finding and calling the daemon ------------------------------------------------------


def _version() -> str:
    try:
        return metadata.version("orchestrator")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def _pid_alive(pid: int) -> bool:
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


def _base_url(address: str) -> str:
    return f"http://{address}"


def _answers(run: RunFile, timeout: float = 2.0) -> Health | None:
    """``GET /healthz`` at the run-file's address: the health, or None if nobody answers."""
    try:
        response = httpx.get(_base_url(run.address) + "/healthz", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return None
    try:
        return msgspec.json.decode(response.content, type=Health)
    except msgspec.MsgspecError:
        return Health(status=f"HTTP {response.status_code}")


def _no_daemon(data_dir: Path) -> NoReturn:
    _fail(f"no daemon is running for {data_dir}; start one with `orchestrator start`")


def _running(data_dir: Path) -> RunFile | None:
    run = read_run_file(data_dir / RUN_FILE_NAME)
    return run if run is not None and _pid_alive(run.pid) else None


class _Client:
    """Calls the daemon's API with the run-file's bearer token; failures exit the CLI."""

    def __init__(self, http: httpx.Client, run: RunFile, data_dir: Path) -> None:
        self.http = http
        self.run = run
        self.data_dir = data_dir

    def _unreachable(self, error: httpx.HTTPError) -> NoReturn:
        _fail(
            f"the daemon at {self.run.address} (pid {self.run.pid}) did not answer: "
            f"{type(error).__name__}: {error}; see {self.data_dir / LOG_FILE_NAME}"
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: msgspec.Struct | None = None,
        params: Mapping[str, str | int | None] | None = None,
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
        params: Mapping[str, str | int | None] | None = None,
    ) -> _T:
        return _decode(self.request(method, path, body=body, params=params).content, kind)

    @contextmanager
    def stream(
        self, path: str, params: Mapping[str, str | int | None], read_timeout: float | None
    ) -> Iterator[httpx.Response]:
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


def _params(params: Mapping[str, str | int | None] | None) -> dict[str, str | int] | None:
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
    _fail(f"{message} (HTTP {status})", 2 if status in _USAGE_STATUSES else 1)


def _decode(content: bytes, kind: type[_T]) -> _T:
    try:
        return msgspec.json.decode(content, type=kind)
    except msgspec.MsgspecError as error:
        _fail(f"unexpected answer from the daemon: {error}")


@contextmanager
def _connect() -> Iterator[_Client]:
    data_dir = data_dir_from_env()
    run = _running(data_dir)
    if run is None:
        _no_daemon(data_dir)
    headers = {
        "authorization": f"Bearer {run.token}",
        "user-agent": f"orchestrator-cli/{_version()}",
    }
    with httpx.Client(
        base_url=_base_url(run.address),
        headers=headers,
        timeout=httpx.Timeout(30.0, connect=3.0),
        trust_env=False,  # the daemon is local: never through a proxy
    ) as http:
        yield _Client(http, run, data_dir)


def _load(config_file: Path | None) -> Config:
    try:
        return load_config(config_file)
    except ConfigError as error:
        _fail(str(error), 2)


# --- daemon lifecycle --------------------------------------------------------------------


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
        _err().print(Text(f"--- the end of {log} ---\n{tail}\n---", style="dim"))
    _fail(message)


@app.command()
def start(
    *,
    foreground: Annotated[
        bool, typer.Option("--foreground", "-f", help="Run in this process (for service managers).")
    ] = False,
    config_file: ConfigOption = None,
    wait: Annotated[
        float,
        typer.Option("--wait", help="Seconds to wait for the daemon to become healthy.", min=1),
    ] = _START_WAIT,
) -> None:
    """Start the daemon (in the background unless --foreground) and print its address."""
    config = _load(config_file)
    if foreground:
        daemon = importlib.import_module("orchestrator.daemon")  # heavy: only here
        run_daemon: Callable[[Config], int] = daemon.run_daemon
        raise typer.Exit(run_daemon(config))
    running = _running(config.data_dir)
    if running is not None and _answers(running) is not None:
        _fail(
            f"a daemon is already running for {config.data_dir} at "
            f"{_base_url(running.address)} (pid {running.pid})"
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
        if run is not None and run.pid == process.pid and _answers(run) is not None:
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
    _say(
        f"orchestrator is running at {_base_url(run.address)} (pid {run.pid}, data dir {config.data_dir})"
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


@app.command()
def stop(
    *,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the daemon to exit.", min=0)
    ] = _STOP_WAIT,
) -> None:
    """Stop the daemon (SIGTERM: it drains, then exits) and wait for it to exit."""
    data_dir = data_dir_from_env()
    run = _running(data_dir)
    if run is None:
        _say(f"no daemon is running for {data_dir}")
        return
    if _answers(run) is None and not _is_our_daemon(run.pid):
        _fail(
            f"pid {run.pid} from {data_dir / RUN_FILE_NAME} is alive but does not answer at "
            f"{run.address} and does not look like the daemon; not signalling it"
        )
    try:
        os.kill(run.pid, signal.SIGTERM)
    except ProcessLookupError:
        _say(f"no daemon is running for {data_dir}")
        return
    deadline = time.monotonic() + timeout
    while _pid_alive(run.pid):
        if time.monotonic() > deadline:
            _fail(
                f"the daemon (pid {run.pid}) is still running after {timeout:g}s; see "
                f"{data_dir / LOG_FILE_NAME}, or end it at once with `kill -KILL {run.pid}`"
            )
        time.sleep(_POLL)
    _say(f"stopped the daemon (pid {run.pid})")
    left = read_run_file(data_dir / RUN_FILE_NAME)
    if left is not None and left.pid == run.pid:
        _note(
            "it left its run-file behind (it did not shut down cleanly); the next start replaces it"
        )


class _Status(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    running: bool
    data_dir: str
    pid: int | None = None
    address: str = ""
    version: str = ""
    started_at: datetime | None = None
    health: str = ""


@app.command()
def status(*, as_json: JsonFlag = False) -> None:
    """Whether a daemon runs for the data dir, where, and since when."""
    data_dir = data_dir_from_env()
    run = _running(data_dir)
    health = _answers(run) if run is not None else None
    if run is None or health is None:
        if as_json:
            _echo_json(_Status(running=False, data_dir=str(data_dir)))
            raise typer.Exit(1)
        if run is None:
            _no_daemon(data_dir)
        _fail(
            f"the daemon at {run.address} (pid {run.pid}) does not answer; see {data_dir / LOG_FILE_NAME}"
        )
    out = _Status(
        running=True,
        data_dir=str(data_dir),
        pid=run.pid,
        address=run.address,
        version=health.version or run.version,
        started_at=run.started_at,
        health=health.status,
    )
    if as_json:
        _echo_json(out)
        return
    _say(f"running at {_base_url(run.address)} (pid {run.pid}, {health.status})", "green")
    _say(f"data dir  {data_dir}")
    _say(f"started   {run.started_at.astimezone():%Y-%m-%d %H:%M:%S} ({_ago(run.started_at)})")
    if out.version:
        _say(f"version   {out.version}")


# --- projects ----------------------------------------------------------------------------


@project_app.command("add")
def project_add(
    project_id: Annotated[
        str, typer.Argument(metavar="ID", help="A slug: lowercase letters, digits, - and _.")
    ],
    path: Annotated[Path, typer.Argument(help="The git repository.", file_okay=False)],
    *,
    origin: Annotated[str, typer.Option("--origin", help="The repository's origin URL.")] = "",
    name: Annotated[str, typer.Option("--name", help="A display name.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Register (or update) a project: a git repository sessions are spawned from."""
    body = ProjectIn(
        id=project_id,
        path=str(path.expanduser().absolute()),
        repo_origin_url=origin,
        display_name=name,
    )
    with _connect() as client:
        project = client.call("POST", "/projects", Project, body=body)
    if as_json:
        _echo_json(project)
    else:
        _say(f"registered project {project.id} at {project.path}")


@project_app.command("ls")
def project_ls(*, as_json: JsonFlag = False) -> None:
    """List the registered projects."""
    with _connect() as client:
        projects = client.call("GET", "/projects", list[Project])
    if as_json:
        _echo_json(projects)
        return
    table = _table("ID", "PATH", "NAME", "ORIGIN", "REGISTERED")
    for project in projects:
        table.add_row(
            Text(project.id),
            Text(project.path),
            Text(project.display_name or "-"),
            Text(project.repo_origin_url or "-"),
            Text(_ago(project.registered_at)),
        )
    _print_table(table, "no projects registered; add one with `orchestrator project add`")


# --- sessions ----------------------------------------------------------------------------


def _session_path(session_id: str, action: str = "") -> str:
    return f"/sessions/{quote(session_id, safe='')}" + (f"/{action}" if action else "")


def _default_agent() -> str:
    try:
        return load_config().default_agent
    except ConfigError as error:
        _fail(f"{error} (or pass --agent)", 2)


def _read_text(source: Path) -> str:
    try:
        return sys.stdin.read() if str(source) == "-" else source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(
            f"cannot read {source}: {error}", param_hint="--prompt-file"
        ) from None


@app.command()
def spawn(
    project: Annotated[str, typer.Argument(help="The project id.")],
    *,
    agent: Annotated[
        str | None,
        typer.Option("--agent", "-a", help="The agent (default: defaultAgent from the config)."),
    ] = None,
    issue: Annotated[
        str, typer.Option("--issue", "-i", help="The issue the session works on.")
    ] = "",
    branch: Annotated[
        str, typer.Option("--branch", "-b", help="The branch (default: derived).")
    ] = "",
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="The task for the agent.")
    ] = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option(
            "--prompt-file", help="Read the task from a file ('-': stdin).", dir_okay=False
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a session: a worktree, a pane and an agent working on a task."""
    if prompt is not None and prompt_file is not None:
        raise typer.BadParameter("give --prompt or --prompt-file, not both", param_hint="--prompt")
    text = _read_text(prompt_file) if prompt_file is not None else prompt or ""
    body = SpawnIn(
        project_id=project,
        agent=agent or _default_agent(),
        issue_id=issue,
        branch=branch,
        prompt=text,
    )
    with _connect() as client:
        session = client.call("POST", "/sessions", SessionOut, body=body)
    if as_json:
        _echo_json(session)
        return
    where = f" on branch {session.metadata.branch}" if session.metadata.branch else ""
    _say(f"spawned {session.id} ({session.status.value}){where}")


@app.command("ls")
def list_sessions(
    *,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project's sessions.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List sessions with their status, branch and PR."""
    with _connect() as client:
        sessions = client.call("GET", "/sessions", list[SessionOut], params={"project": project})
    if as_json:
        _echo_json(sessions)
        return
    table = _table("ID", "STATUS", "AGENT", "BRANCH", "PR", "UPDATED")
    for session in sessions:
        table.add_row(*_session_row(session))
    _print_table(table, "no sessions")


@app.command()
def show(session_id: SessionArg, *, as_json: JsonFlag = False) -> None:
    """Show one session: its state, where it lives and its PR."""
    with _connect() as client:
        session = client.call("GET", _session_path(session_id), SessionOut)
    if as_json:
        _echo_json(session)
    else:
        _show_session(session)


@app.command()
def kill(session_id: SessionArg, *, as_json: JsonFlag = False) -> None:
    """End a session: stop its agent and pane, and free its worktree if it is clean."""
    with _connect() as client:
        result = client.call("POST", _session_path(session_id, "kill"), KillOut, body=KillIn())
    if as_json:
        _echo_json(result)
        return
    _say(f"killed {result.session.id}")
    if not result.freed:
        _note(result.detail or "its worktree was kept")


class _RestoreIn(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """The body of ``POST /sessions/{id}/restore`` (adapters/http ``RestoreIn``)."""

    agent: str | None = None


@app.command()
def restore(
    session_id: SessionArg,
    *,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent", "-a", help="The agent to relaunch, if the session did not record it."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Bring a terminated session back in its worktree, resuming the agent's conversation."""
    with _connect() as client:
        session = client.call(
            "POST", _session_path(session_id, "restore"), SessionOut, body=_RestoreIn(agent=agent)
        )
    if as_json:
        _echo_json(session)
    else:
        _say(f"restored {session.id} ({session.status.value})")


@app.command()
def send(
    session_id: SessionArg,
    message: Annotated[str, typer.Argument(help="What to tell the agent ('-': read stdin).")],
) -> None:
    """Send a message to a session's agent."""
    text = sys.stdin.read() if message == "-" else message
    if not text.strip():
        raise typer.BadParameter("the message is empty", param_hint="MESSAGE")
    with _connect() as client:
        client.request("POST", _session_path(session_id, "send"), body=SendIn(message=text))
    _say(f"sent to {session_id}")


# --- events and notifications ------------------------------------------------------------


def _sse(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) for each Server-Sent Event; comments (keep-alives) are skipped."""
    event, data = "", list[str]()
    for line in lines:
        if not line:
            if data or event:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value


def _event_line(event: EventOut) -> Text:
    where = event.project_id + (f"/{event.session_id}" if event.session_id else "")
    line = Text(f"{event.seq:>7}  ", style="dim")
    line += Text(f"{event.created_at.astimezone():%H:%M:%S}  ")
    line += Text(f"{event.type:<22} ", style="bold")
    line += Text(f"{where}  ")
    line += Text(bytes(event.payload).decode("utf-8", "replace"), style="dim")
    return line


def _head(response: httpx.Response) -> int | None:
    value = response.headers.get(HEAD_SEQ_HEADER, "")
    return int(value) if value.strip().isdigit() else None


class _Resync(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The data of the final ``resync`` frame (adapters/http/sse.py ``ResyncOut``)."""

    last_seq: int = 0


def _stream_events(
    client: _Client,
    *,
    since: int | None,
    follow: bool,
    project: str | None,
    emit: Callable[[EventOut], None],
) -> None:
    """Print events after ``since`` (None: only new ones). Without ``follow`` it stops at
    the head: the ``HEAD_SEQ_HEADER`` seq if the daemon sends it, else before the first
    event created after the command started, else after ``_IDLE_END`` quiet seconds."""
    started = datetime.now(UTC)
    head: int | None = None
    while True:  # one pass per connection; a resync reconnects after the last seq seen
        resync: _Resync | None = None
        params: dict[str, str | int | None] = {"since": since, "project": project}
        try:
            with client.stream("/events", params, None if follow else _IDLE_END) as response:
                if head is None and not follow:
                    head = _head(response)
                if head is not None and (since or 0) >= head:
                    return
                for kind, data in _sse(response.iter_lines()):
                    if kind == RESYNC_EVENT:
                        resync = _decode(data.encode() or b"{}", _Resync)
                        break
                    event = _decode(data.encode(), EventOut)
                    if not follow and head is None and event.created_at > started:
                        return  # live from here on: what was there is printed
                    since = max(since or 0, event.seq)
                    emit(event)
                    if head is not None and since >= head:
                        return
        except httpx.ReadTimeout:
            return  # no --follow and quiet: caught up
        if resync is None:
            if follow:
                _note("the daemon ended the event stream (is it stopping?)")
            return
        since = max(since or 0, resync.last_seq)


@app.command()
def events(
    *,
    since: Annotated[
        int | None,
        typer.Option(
            "--since",
            help="Start after this event seq (default: from the start; with --follow, only new events).",
            min=0,
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming new events.")
    ] = False,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project's events.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the change stream, one line per event (--json: one JSON object per line)."""
    console = _out()

    def emit(event: EventOut) -> None:
        if as_json:
            typer.echo(msgspec.json.encode(event).decode())
        else:
            console.print(_event_line(event), no_wrap=True, overflow="ellipsis")

    if since is None and not follow:
        since = 0
    with _connect() as client:
        try:
            _stream_events(client, since=since, follow=follow, project=project, emit=emit)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


@app.command()
def notifications(
    *,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project's.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="At most this many, newest first.", min=1)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List what the daemon told the humans (pages, nudges that fell back, merges)."""
    with _connect() as client:
        items = client.call(
            "GET", "/notifications", list[Notification], params={"project": project, "limit": limit}
        )
    if as_json:
        _echo_json(items)
        return
    table = _table("ID", "WHEN", "PRIORITY", "SESSION", "TYPE", "MESSAGE")
    for item in items:
        table.add_row(
            Text(str(item.id)),
            Text(_ago(item.created_at)),
            Text(item.priority.value, style=_PRIORITY_STYLES.get(item.priority, "")),
            Text(item.session_id or item.project_id),
            Text(item.type),
            Text(item.message),
        )
    _print_table(table, "no notifications")


# --- config ------------------------------------------------------------------------------


@config_app.command("check")
def config_check(*, config_file: ConfigOption = None) -> None:
    """Validate the config file and say where it is."""
    config = _load(config_file)
    if config.config_loaded:
        _say(f"{config.config_path}: ok", "green")
    else:
        _say(f"no config file at {config.config_path}; every default applies")
    _say(f"data dir  {config.data_dir}")
    _say(f"address   {config.address}")
    agents = ", ".join(sorted(config.agents)) or "none"
    _say(
        f"projects  {len(config.projects)}; custom agents: {agents}; default agent {config.default_agent}"
    )


@config_app.command("example")
def config_example() -> None:
    """Print a commented example config file (every section, with the defaults)."""
    typer.echo(example_config(), nl=False)


def _print_version(value: bool) -> None:  # noqa: FBT001 (a typer option callback)
    if value:
        typer.echo(_version())
        raise typer.Exit(0)


@app.callback()
def _root(
    *,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Supervise AI coding-agent sessions, each in its own worktree, pane and PR.

    The data dir is $ORCHESTRATOR_DATA_DIR (default ~/.local/share/orchestrator).
    """


def main(argv: Sequence[str] | None = None) -> None:
    """The ``orchestrator`` console script (and ``python main.py``, ``python -m orchestrator``)."""
    app(args=None if argv is None else list(argv), prog_name="orchestrator")
