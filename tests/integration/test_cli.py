"""The CLI against a stand-in daemon: a stdlib HTTP server on 127.0.0.1 answering canned
JSON in the real wire format, found through a run-file. Usage errors, exit codes and the
``config`` commands go through typer's CliRunner; ``start``/``stop`` drive a tiny fake
daemon process. (The real daemon end to end is in tests/e2e.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest
from typer.testing import CliRunner, Result

from orchestrator import cli
from orchestrator.api import (
    HEAD_SEQ_HEADER,
    ErrorBody,
    ErrorCode,
    ErrorDetail,
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
from orchestrator.cli import daemon_control
from orchestrator.cli import events as cli_events
from orchestrator.config import Config
from orchestrator.domain.model import (
    AgentHarness,
    CIState,
    Lifecycle,
    PRFacts,
    Priority,
    SessionKind,
    SessionMetadata,
    SessionState,
    SessionStatus,
    TerminationReason,
)
from orchestrator.domain.records import Notification, Project
from orchestrator.runfile import read_run_file, write_run_file

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token"
NOW = datetime.now(UTC).replace(microsecond=0)

SESSION = SessionOut(
    id="app-1",
    project_id="app",
    num=1,
    issue_id="#7",
    kind=SessionKind.WORKER,
    status=SessionStatus.CI_FAILED,
    lifecycle=Lifecycle(
        state=SessionState.WORKING, is_alive=True, harness=AgentHarness.CLAUDE_CODE
    ),
    metadata=SessionMetadata(branch="feat/login", workspace_path="/work/app-1"),
    pr=PRFacts(exists=True, url="https://github.com/me/app/pull/12", number=12, ci=CIState.FAILING),
    created_at=NOW - timedelta(hours=1),
    updated_at=NOW - timedelta(minutes=2),
)
IDLE_SESSION = msgspec.structs.replace(
    SESSION,
    id="app-2",
    num=2,
    status=SessionStatus.IDLE,
    metadata=SessionMetadata(branch="fix/[brackets]"),
    pr=PRFacts(),
)
PROJECT = Project(id="app", path="/src/app", display_name="App", registered_at=NOW)


def error_body(code: ErrorCode, message: str) -> ErrorBody:
    return ErrorBody(error=ErrorDetail(code=code, message=message))


def event(
    seq: int, *, created_at: datetime | None = None, kind: str = "session_updated"
) -> EventOut:
    return EventOut(
        seq=seq,
        project_id="app",
        session_id="app-1",
        type=kind,
        payload=msgspec.Raw(b'{"id":"app-1","state":"working"}'),
        created_at=created_at or NOW - timedelta(seconds=30),
    )


def frame(ev: EventOut) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (ev.seq, ev.type.encode(), msgspec.json.encode(ev))


# --- the stand-in daemon -----------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Stream:
    """One SSE connection's answer: frames, then close (or hold open until released)."""

    frames: list[bytes]
    hold: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeDaemon:
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    routes: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    streams: list[Stream] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def reply(self, method: str, path: str, value: object = None, status: int = 200) -> None:
        body = b"" if value is None else msgspec.json.encode(value)
        self.routes[method, "/api/v1" + path if path != "/healthz" else path] = (status, body)

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == "/api/v1" + path]


def make_handler(daemon: FakeDaemon) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.handle_any()

        def do_POST(self) -> None:
            self.handle_any()

        def do_DELETE(self) -> None:
            self.handle_any()

        def handle_any(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            seen = Seen(
                method=self.command,
                path=url.path,
                query=parse_qs(url.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            daemon.seen.append(seen)
            if url.path == "/api/v1/events" and daemon.streams:
                self.stream(daemon.streams.pop(0))
                return
            status, body = daemon.routes.get(
                (self.command, url.path),
                (404, msgspec.json.encode(error_body(ErrorCode.NOT_FOUND, "no route"))),
            )
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def stream(self, stream: Stream) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            for name, value in stream.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(b": connected\n\n")
            for chunk in stream.frames:
                self.wfile.write(chunk)
            self.wfile.flush()
            if stream.hold:
                daemon.release.wait(10)

    return Handler


@pytest.fixture
def daemon() -> Iterator[FakeDaemon]:
    fake = FakeDaemon()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def env(data_dir: Path) -> dict[str, str | None]:
    return {
        "ORCHESTRATOR_DATA_DIR": str(data_dir),
        "ORCHESTRATOR_CONFIG": None,
        "ORCHESTRATOR_ADDR": None,
        "XDG_DATA_HOME": None,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }


@pytest.fixture
def running(daemon: FakeDaemon, data_dir: Path) -> FakeDaemon:
    """A run-file that points at the stand-in daemon (our own pid is alive)."""
    write_run_file(
        data_dir / "daemon.json",
        RunFile(pid=os.getpid(), address=f"127.0.0.1:{daemon.port}", token=TOKEN, started_at=NOW),
    )
    daemon.reply("GET", "/healthz", Health(version="9.9"))
    return daemon


Invoke = Callable[..., Result]


@pytest.fixture
def invoke(env: Mapping[str, str | None]) -> Invoke:
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli.app, list(args), env=env, input=input)

    return run


# --- the command itself ------------------------------------------------------------------


def test_importing_the_cli_does_not_load_the_database_layer() -> None:
    code = (
        "import sys, orchestrator.cli\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'adapters'} "
        "or m in {'orchestrator.daemon', 'orchestrator.lifecycle', 'sqlite3'})\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


@pytest.mark.parametrize(
    "args",
    [
        ["bogus"],
        ["spawn"],
        ["show"],
        ["send", "app-1"],
        ["events", "--since", "-1"],
        ["events", "--since", "x"],
        ["notifications", "--limit", "0"],
        ["ls", "--nope"],
        ["project", "add", "app"],
        ["start", "--wait", "0"],
    ],
)
def test_usage_errors_exit_2(invoke: Invoke, args: list[str]) -> None:
    assert invoke(*args).exit_code == 2


def test_no_arguments_prints_help(invoke: Invoke) -> None:
    result = invoke()
    assert "spawn" in result.stdout
    assert "events" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["ls"],
        ["show", "app-1"],
        ["status"],
        ["events"],
        ["project", "ls"],
        ["notifications"],
        ["kill", "app-1"],
        ["spawn", "app", "--agent", "x"],
    ],
)
def test_no_daemon_gives_a_clear_message_and_exit_1(
    invoke: Invoke, data_dir: Path, args: list[str]
) -> None:
    result = invoke(*args)
    assert result.exit_code == 1
    assert f"no daemon is running for {data_dir}; start one with `orchestrator start`" in (
        result.stderr.replace("\n", " ")
    )


def test_a_stale_run_file_counts_as_no_daemon(invoke: Invoke, data_dir: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_run_file(
        data_dir / "daemon.json",
        RunFile(pid=dead.pid, address="127.0.0.1:1", token=TOKEN, started_at=NOW),
    )
    result = invoke("ls")
    assert result.exit_code == 1
    assert "no daemon is running" in result.stderr
    assert invoke("stop").exit_code == 0


def test_a_daemon_that_does_not_answer_is_a_runtime_error(invoke: Invoke, data_dir: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound, then closed: nothing listens
    write_run_file(
        data_dir / "daemon.json",
        RunFile(pid=os.getpid(), address=f"127.0.0.1:{port}", token=TOKEN, started_at=NOW),
    )
    result = invoke("ls")
    assert result.exit_code == 1
    assert f"the daemon at 127.0.0.1:{port} (pid {os.getpid()}) did not answer" in result.stderr


# --- config ------------------------------------------------------------------------------


def test_config_check_without_a_file(invoke: Invoke, data_dir: Path) -> None:
    result = invoke("config", "check")
    assert result.exit_code == 0
    assert f"no config file at {data_dir / 'orchestrator.yaml'}; every default applies" in (
        result.stdout
    )


def test_config_check_accepts_the_example(invoke: Invoke, data_dir: Path) -> None:
    example = invoke("config", "example")
    assert example.exit_code == 0
    (data_dir / "orchestrator.yaml").write_text(example.stdout)
    result = invoke("config", "check")
    assert result.exit_code == 0, result.stdout
    assert f"{data_dir / 'orchestrator.yaml'}: ok" in result.stdout
    assert "custom agents: my-agent" in result.stdout


def test_config_check_names_the_bad_key_and_exits_2(invoke: Invoke, tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("reaper:\n  tick: 5 seconds\n")
    result = invoke("config", "check", "--config", str(file))
    assert result.exit_code == 2
    assert f'{file}: reaper.tick: "5 seconds" is not a duration' in result.stderr


def test_start_foreground_with_a_bad_config_exits_2(invoke: Invoke, data_dir: Path) -> None:
    (data_dir / "orchestrator.yaml").write_text("address: 0.0.0.0:8731\n")
    result = invoke("start", "--foreground")
    assert result.exit_code == 2
    assert "address: " in result.stderr
    assert "not a loopback address" in result.stderr


def test_start_foreground_runs_the_daemon_in_process(
    invoke: Invoke, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Config] = []

    def run_daemon(config: Config) -> int:
        started.append(config)
        return 3

    fake = types.ModuleType("orchestrator.daemon")
    fake.run_daemon = run_daemon  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "orchestrator.daemon", fake)
    (data_dir / "orchestrator.yaml").write_text("reaper: {tick: 1m}\n")
    result = invoke("start", "--foreground")
    assert result.exit_code == 3
    assert [c.data_dir for c in started] == [data_dir]
    assert started[0].reaper.tick == timedelta(minutes=1)


# --- listings ----------------------------------------------------------------------------


def test_ls_prints_a_table_and_sends_the_token(invoke: Invoke, running: FakeDaemon) -> None:
    # Two minutes before now, not before import: a full run reaches this test minutes later.
    session = msgspec.structs.replace(SESSION, updated_at=datetime.now(UTC) - timedelta(minutes=2))
    running.reply("GET", "/sessions", [session, IDLE_SESSION])
    result = invoke("ls")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "STATUS" in line)
    assert header.split() == ["ID", "STATUS", "AGENT", "BRANCH", "PR", "UPDATED"]
    row = next(line for line in lines if line.lstrip().startswith("app-1"))
    assert row.split()[:5] == ["app-1", "ci_failed", "claude-code", "feat/login", "#12"]
    assert "2m ago" in row
    assert "fix/[brackets]" in result.stdout  # not read as rich markup
    (request,) = running.requests("GET", "/sessions")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.query == {"includeTerminated": ["false"]}  # hidden unless --all


def test_ls_json_is_the_wire_format(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply("GET", "/sessions", [SESSION])
    result = invoke("ls", "--json", "--project", "app")
    assert result.exit_code == 0, result.stderr
    assert msgspec.json.decode(result.stdout, type=list[SessionOut]) == [SESSION]
    assert running.requests("GET", "/sessions")[0].query == {
        "project": ["app"],
        "includeTerminated": ["false"],
    }


@pytest.mark.parametrize(
    ("args", "query"),
    [
        (["--all"], {}),
        (["-a", "-p", "app"], {"project": ["app"]}),
        (["--status", "killed"], {"status": ["killed"]}),
        (["-s", "working", "-s", "ci_failed", "-s", "working"], {"status": ["ci_failed,working"]}),
        (["--status", "idle", "--all"], {"status": ["idle"]}),
    ],
)
def test_ls_all_and_status_become_the_list_query(
    invoke: Invoke, running: FakeDaemon, args: list[str], query: dict[str, list[str]]
) -> None:
    running.reply("GET", "/sessions", [])
    result = invoke("ls", *args)
    assert result.exit_code == 0, result.stderr
    assert running.requests("GET", "/sessions")[0].query == query


def test_ls_refuses_an_unknown_status_before_asking(invoke: Invoke, running: FakeDaemon) -> None:
    result = invoke("ls", "--status", "sleepy")
    assert result.exit_code == 2
    assert "sleepy" in result.stderr
    assert not running.requests("GET", "/sessions")


def test_show(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply("GET", "/sessions/app-1", SESSION)
    result = invoke("show", "app-1")
    assert result.exit_code == 0, result.stderr
    for text in (
        "app-1",
        "ci_failed",
        "feat/login",
        "https://github.com/me/app/pull/12",
        "failing",
    ):
        assert text in result.stdout
    as_json = invoke("show", "app-1", "--json")
    assert msgspec.json.decode(as_json.stdout, type=SessionOut) == SESSION


def test_an_unknown_session_is_a_usage_error(invoke: Invoke, running: FakeDaemon) -> None:
    result = invoke("show", "nope-9")
    assert result.exit_code == 2
    assert "no route (HTTP 404)" in result.stderr


def test_session_ids_are_escaped_in_paths(invoke: Invoke, running: FakeDaemon) -> None:
    invoke("show", "a/b")
    assert running.seen[-1].path == "/api/v1/sessions/a%2Fb"


def test_status(invoke: Invoke, running: FakeDaemon) -> None:
    result = invoke("status")
    assert result.exit_code == 0, result.stderr
    assert f"running at http://127.0.0.1:{running.port} (pid {os.getpid()}, ok)" in result.stdout
    as_json = msgspec.json.decode(invoke("status", "--json").stdout)
    assert as_json["running"] is True
    assert as_json["pid"] == os.getpid()
    assert as_json["version"] == "9.9"


def test_status_json_without_a_daemon(invoke: Invoke, data_dir: Path) -> None:
    result = invoke("status", "--json")
    assert result.exit_code == 1
    assert msgspec.json.decode(result.stdout) == {
        "running": False,
        "dataDir": str(data_dir),
        "pid": None,
        "address": "",
        "version": "",
        "startedAt": None,
        "health": "",
        "staleRunFile": False,
    }


def test_projects(invoke: Invoke, running: FakeDaemon, tmp_path: Path) -> None:
    running.reply("POST", "/projects", PROJECT, status=201)
    running.reply("GET", "/projects", [PROJECT])
    repo = tmp_path / "repo"
    result = invoke("project", "add", "app", str(repo), "--name", "App", "--origin", "git@x:me/app")
    assert result.exit_code == 0, result.stderr
    assert "registered project app at /src/app" in result.stdout
    (request,) = running.requests("POST", "/projects")
    assert msgspec.json.decode(request.body, type=ProjectIn) == ProjectIn(
        id="app", path=str(repo), display_name="App", repo_origin_url="git@x:me/app"
    )
    listing = invoke("project", "ls")
    assert "/src/app" in listing.stdout
    assert msgspec.json.decode(invoke("project", "ls", "--json").stdout, type=list[Project]) == [
        PROJECT
    ]


def test_notifications(invoke: Invoke, running: FakeDaemon) -> None:
    note = Notification(
        id=4,
        session_id="app-1",
        project_id="app",
        type="reaction.agent-stuck",
        priority=Priority.URGENT,
        message="Agent is stuck and needs attention.",
        created_at=NOW,
    )
    running.reply("GET", "/notifications", [note])
    result = invoke("notifications", "--project", "app", "--limit", "5")
    assert result.exit_code == 0, result.stderr
    assert "Agent is stuck and needs attention." in result.stdout
    assert running.requests("GET", "/notifications")[0].query == {
        "project": ["app"],
        "limit": ["5"],
    }
    as_json = invoke("notifications", "--json")
    assert msgspec.json.decode(as_json.stdout, type=list[Notification]) == [note]


# --- commands ----------------------------------------------------------------------------


def test_spawn_sends_the_request_and_prints_the_session(
    invoke: Invoke, running: FakeDaemon
) -> None:
    running.reply("POST", "/sessions", SESSION, status=201)
    result = invoke("spawn", "app", "--issue", "#7", "--branch", "feat/login", "--prompt", "Fix it")
    assert result.exit_code == 0, result.stderr
    assert "spawned app-1 (ci_failed) on branch feat/login" in result.stdout
    (request,) = running.requests("POST", "/sessions")
    assert request.headers["content-type"] == "application/json"
    assert msgspec.json.decode(request.body, type=SpawnIn) == SpawnIn(
        project_id="app", agent="claude-code", issue_id="#7", branch="feat/login", prompt="Fix it"
    )
    as_json = invoke("spawn", "app", "--json")
    assert msgspec.json.decode(as_json.stdout, type=SessionOut) == SESSION


def test_spawn_takes_the_default_agent_from_the_config_and_the_prompt_from_a_file(
    invoke: Invoke, running: FakeDaemon, data_dir: Path, tmp_path: Path
) -> None:
    running.reply("POST", "/sessions", SESSION, status=201)
    (data_dir / "orchestrator.yaml").write_text(
        "defaultAgent: mine\nagents: {mine: {command: [mine]}}\n"
    )
    prompt = tmp_path / "task.md"
    prompt.write_text("Do the thing.\n")
    assert invoke("spawn", "app", "--prompt-file", str(prompt)).exit_code == 0
    assert invoke("spawn", "app", "--prompt-file", "-", input="From stdin").exit_code == 0
    bodies = [
        msgspec.json.decode(r.body, type=SpawnIn) for r in running.requests("POST", "/sessions")
    ]
    assert [(b.agent, b.prompt) for b in bodies] == [
        ("mine", "Do the thing.\n"),
        ("mine", "From stdin"),
    ]


def test_spawn_refuses_two_prompts(invoke: Invoke, running: FakeDaemon, tmp_path: Path) -> None:
    prompt = tmp_path / "p.md"
    prompt.write_text("x")
    result = invoke("spawn", "app", "--prompt", "a", "--prompt-file", str(prompt))
    assert result.exit_code == 2
    assert not running.requests("POST", "/sessions")


def test_a_400_is_a_usage_error(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply(
        "POST",
        "/sessions",
        error_body(
            ErrorCode.BAD_REQUEST, "invalid body: Expected `str` matching regex - at `$.projectId`"
        ),
        status=400,
    )
    result = invoke("spawn", "Not A Slug", "--agent", "codex")
    assert result.exit_code == 2
    assert "invalid body: Expected `str` matching regex - at `$.projectId` (HTTP 400)" in (
        result.stderr.replace("\n", " ")
    )


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, msgspec.json.encode(error_body(ErrorCode.INTERNAL, "boom")), "boom (HTTP 500)"),
        (502, b"<html>bad gateway</html>", "<html>bad gateway</html> (HTTP 502)"),
        (409, msgspec.json.encode(error_body(ErrorCode.CONFLICT, "is live")), "is live (HTTP 409)"),
        (
            401,
            msgspec.json.encode(error_body(ErrorCode.UNAUTHORIZED, "bad token")),
            "is the run-file stale?",
        ),
    ],
)
def test_other_failures_are_runtime_errors(
    invoke: Invoke, running: FakeDaemon, status: int, body: bytes, message: str
) -> None:
    running.routes["GET", "/api/v1/sessions"] = (status, body)
    result = invoke("ls")
    assert result.exit_code == 1
    assert message in result.stderr.replace("\n", " ")


def test_an_unexpected_answer_is_a_runtime_error(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply("GET", "/sessions", {"sessions": []})
    result = invoke("ls")
    assert result.exit_code == 1
    assert "unexpected answer from the daemon" in result.stderr


def test_kill_restore_send(invoke: Invoke, running: FakeDaemon) -> None:
    killed = msgspec.structs.replace(
        SESSION,
        status=SessionStatus.KILLED,
        lifecycle=Lifecycle(
            state=SessionState.TERMINATED, termination_reason=TerminationReason.MANUALLY_KILLED
        ),
    )
    running.reply(
        "POST",
        "/sessions/app-1/kill",
        KillOut(session=killed, freed=False, detail="uncommitted work"),
    )
    running.reply("POST", "/sessions/app-1/restore", SESSION)
    running.reply("POST", "/sessions/app-1/send", status=204)

    result = invoke("kill", "app-1")
    assert result.exit_code == 0, result.stderr
    assert "killed app-1" in result.stdout
    assert "uncommitted work" in result.stderr
    assert (
        msgspec.json.decode(running.requests("POST", "/sessions/app-1/kill")[0].body, type=KillIn)
        == KillIn()
    )

    result = invoke("restore", "app-1", "--agent", "mine")
    assert result.exit_code == 0, result.stderr
    assert "restored app-1 (ci_failed)" in result.stdout
    assert running.requests("POST", "/sessions/app-1/restore")[0].body == b'{"agent":"mine"}'

    result = invoke("send", "app-1", "Please rebase.")
    assert result.exit_code == 0, result.stderr
    assert "sent to app-1" in result.stdout
    body = running.requests("POST", "/sessions/app-1/send")[0].body
    assert msgspec.json.decode(body, type=SendIn) == SendIn(message="Please rebase.")
    assert invoke("send", "app-1", "  ").exit_code == 2


# --- events ------------------------------------------------------------------------------


def test_events_since_stops_at_the_head_the_daemon_names(
    invoke: Invoke, running: FakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_events, "IDLE_END", 30.0)  # so only the header can end it quickly
    running.streams.append(
        Stream([frame(event(1)), frame(event(2))], hold=True, headers={HEAD_SEQ_HEADER: "2"})
    )
    began = time.monotonic()
    result = invoke("events", "--since", "0")
    assert time.monotonic() - began < 10
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["1", "2"]
    assert lines[0].split()[2:] == ["app-1", "now", "working"]
    assert lines[1].split()[2:] == ["app-1", "updated"]  # nothing changed since the first
    (request,) = running.requests("GET", "/events")
    assert request.query == {"since": ["0"]}
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "text/event-stream"


def test_events_stop_before_the_first_event_past_the_head(
    invoke: Invoke, running: FakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A project's stream: its last event before the head (5) is 3, and 7 is live.
    monkeypatch.setattr(cli_events, "IDLE_END", 30.0)
    running.streams.append(
        Stream([frame(event(3)), frame(event(7))], hold=True, headers={HEAD_SEQ_HEADER: "5"})
    )
    began = time.monotonic()
    result = invoke("events", "--json", "--project", "app")
    assert time.monotonic() - began < 10
    assert result.exit_code == 0, result.stderr
    assert [msgspec.json.decode(line, type=EventOut) for line in result.stdout.splitlines()] == [
        event(3)
    ]


def test_events_at_the_head_already_end_at_once(
    invoke: Invoke, running: FakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_events, "IDLE_END", 30.0)
    running.streams.append(Stream([], hold=True, headers={HEAD_SEQ_HEADER: "4"}))
    began = time.monotonic()
    result = invoke("events", "--since", "4")
    assert time.monotonic() - began < 5  # the stream is held open for 10 s
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""


def test_events_stop_before_the_first_live_event(
    invoke: Invoke, running: FakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_events, "IDLE_END", 30.0)
    live = event(3, created_at=datetime.now(UTC) + timedelta(minutes=1))
    running.streams.append(Stream([frame(event(1)), frame(event(2)), frame(live)], hold=True))
    result = invoke("events", "--json", "--since", "0", "--project", "app")
    assert result.exit_code == 0, result.stderr
    printed = [msgspec.json.decode(line, type=EventOut) for line in result.stdout.splitlines()]
    assert printed == [event(1), event(2)]
    assert running.requests("GET", "/events")[0].query == {"since": ["0"], "project": ["app"]}


def test_events_end_when_the_stream_goes_quiet(
    invoke: Invoke, running: FakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_events, "IDLE_END", 0.3)
    running.streams.append(Stream([frame(event(5))], hold=True))
    result = invoke("events", "--since", "4")
    assert result.exit_code == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["5"]


def test_events_reconnect_after_a_resync(invoke: Invoke, running: FakeDaemon) -> None:
    running.streams += [
        Stream([frame(event(1)), b'event: resync\ndata: {"lastSeq":1}\n\n']),
        Stream([frame(event(2))]),
    ]
    result = invoke("events", "--json")
    assert result.exit_code == 0, result.stderr
    assert [
        msgspec.json.decode(line, type=EventOut).seq for line in result.stdout.splitlines()
    ] == [1, 2]
    assert [r.query for r in running.requests("GET", "/events")] == [
        {"since": ["0"]},
        {"since": ["1"]},
    ]


def test_events_follow_streams_new_events_until_the_daemon_ends_the_stream(
    invoke: Invoke, running: FakeDaemon
) -> None:
    later = event(8, created_at=datetime.now(UTC) + timedelta(minutes=1))
    running.streams.append(Stream([frame(event(7)), b": ping\n\n", frame(later)]))
    result = invoke("events", "--follow")
    assert result.exit_code == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["7", "8"]
    assert "the daemon ended the event stream" in result.stderr
    assert running.requests("GET", "/events")[0].query == {}  # live only


def test_events_errors(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply("GET", "/events", error_body(ErrorCode.NOT_FOUND, "project 'x' not found"), 404)
    result = invoke("events", "--project", "x")
    assert result.exit_code == 2
    assert "project 'x' not found (HTTP 404)" in result.stderr
    running.reply("GET", "/events", error_body(ErrorCode.INTERNAL, "boom"), 500)
    assert invoke("events").exit_code == 1


# --- start and stop ----------------------------------------------------------------------

FAKE_DAEMON = textwrap.dedent(
    """
    import json, os, signal, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from pathlib import Path

    data = Path(os.environ["ORCHESTRATOR_DATA_DIR"])
    print("fake daemon argv", sys.argv[1:], flush=True)

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"status":"ok","version":"fake"}'
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    run = data / "daemon.json"

    def stop(signum, frame):
        run.unlink()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    tmp = data / ".daemon.tmp"
    tmp.write_text(json.dumps({
        "pid": os.getpid(),
        "address": "127.0.0.1:%d" % server.server_address[1],
        "token": "t",
        "startedAt": "2026-01-01T00:00:00Z",
    }))
    tmp.replace(run)
    server.serve_forever()
    """
)


@pytest.fixture
def reap(data_dir: Path) -> Iterator[None]:
    """Kill a fake daemon a failed test left behind (only the pid its run-file names)."""
    yield
    run = read_run_file(data_dir / "daemon.json")
    if run is not None and run.pid != os.getpid():
        with suppress(ProcessLookupError):
            os.kill(run.pid, signal.SIGKILL)
        with suppress(ChildProcessError):
            os.waitpid(run.pid, 0)


@pytest.mark.usefixtures("reap")
def test_start_runs_the_daemon_in_the_background_and_stop_ends_it(
    invoke: Invoke, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "fake_daemon.py"
    script.write_text(FAKE_DAEMON)
    argvs: list[Path | None] = []

    def argv(config_file: Path | None) -> list[str]:
        argvs.append(config_file)
        return [sys.executable, str(script), "start", "--foreground"]

    monkeypatch.setattr(daemon_control, "daemon_argv", argv)
    result = invoke("start")
    assert result.exit_code == 0, result.stderr
    run = read_run_file(data_dir / "daemon.json")
    assert run is not None
    assert run.pid != os.getpid()
    assert f"orchestrator is running at http://{run.address} (pid {run.pid}" in result.stdout
    assert argvs == [None]
    assert "fake daemon argv ['start', '--foreground']" in (data_dir / "daemon.log").read_text()

    again = invoke("start")
    assert again.exit_code == 1
    assert "a daemon is already running" in again.stderr

    status = invoke("status")
    assert status.exit_code == 0
    assert f"pid {run.pid}" in status.stdout

    stopped = invoke("stop")
    assert stopped.exit_code == 0, stopped.stderr
    assert f"stopped the daemon (pid {run.pid})" in stopped.stdout
    assert not (data_dir / "daemon.json").exists()

    second = invoke("stop")
    assert second.exit_code == 0
    assert f"no daemon is running for {data_dir}" in second.stdout


def test_start_reports_a_daemon_that_dies_with_its_log(
    invoke: Invoke, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash = "import sys; print('boom: cannot bind 127.0.0.1:8731', file=sys.stderr); sys.exit(3)"
    monkeypatch.setattr(
        daemon_control, "daemon_argv", lambda config_file: [sys.executable, "-c", crash]
    )
    (data_dir / "daemon.log").write_text("an older run\n")
    result = invoke("start")
    assert result.exit_code == 1
    assert "the daemon exited with code 3 while starting" in result.stderr
    assert "boom: cannot bind 127.0.0.1:8731" in result.stderr
    assert "an older run" not in result.stderr  # only this start's part of the log


def test_start_gives_up_on_a_daemon_that_never_gets_healthy(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    hang = "import time; print('migrating...', flush=True); time.sleep(60)"
    monkeypatch.setattr(
        daemon_control, "daemon_argv", lambda config_file: [sys.executable, "-c", hang]
    )
    result = invoke("start", "--wait", "1")
    assert result.exit_code == 1
    assert "did not become healthy within 1s" in result.stderr
    assert "migrating..." in result.stderr


def test_start_refuses_when_a_daemon_answers(invoke: Invoke, running: FakeDaemon) -> None:
    result = invoke("start")
    assert result.exit_code == 1
    assert "already running for" in result.stderr
    assert f"(pid {os.getpid()})" in result.stderr


def test_stop_never_signals_a_process_that_is_not_the_daemon(
    invoke: Invoke, data_dir: Path
) -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        write_run_file(
            data_dir / "daemon.json",
            RunFile(pid=stranger.pid, address="127.0.0.1:1", token=TOKEN, started_at=NOW),
        )
        result = invoke("stop")
        assert result.exit_code == 1
        assert "does not look like the daemon; not signalling it" in result.stderr.replace(
            "\n", " "
        )
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_empty_listings_say_so(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply("GET", "/sessions", [])
    running.reply("GET", "/notifications", [])
    assert invoke("ls").stdout.strip() == (
        "no running sessions (`orchestrator ls --all` shows terminated ones too)"
    )
    assert invoke("ls", "--all").stdout.strip() == "no sessions"
    assert invoke("ls", "-s", "killed", "-s", "done").stdout.strip() == (
        "no sessions with status done or killed"
    )
    assert invoke("notifications").stdout.strip() == "no notifications"
    assert invoke("ls", "--json").stdout.strip() == "[]"


# --- hostile text from the daemon ---------------------------------------------------------

# One of each class the sanitiser removes: CSI (colour), OSC (window title), a C1 control,
# a bare C0 control, a carriage return that would forge a line start, a bidi override.
HOSTILE = "ok\x1b[31mRED\x1b]0;pwned\x07\x9b2J\x07\rFAKE\u202eevil"
ESCAPES = ("\x1b", "\x9b", "\x07", "\r", "\u202e")


def assert_clean(text: str) -> None:
    assert not [ch for ch in ESCAPES if ch in text], repr(text)


@pytest.mark.parametrize(
    "command",
    [
        ["ls"],
        ["show", "app-1"],
        ["notifications"],
        ["events", "--since", "0"],
        ["kill", "app-1"],
    ],
)
def test_text_from_the_daemon_reaches_the_terminal_sanitised(
    invoke: Invoke, running: FakeDaemon, command: list[str]
) -> None:
    session = msgspec.structs.replace(
        SESSION,
        issue_id=HOSTILE,
        metadata=SessionMetadata(branch=HOSTILE, workspace_path=HOSTILE, agent=HOSTILE),
    )
    running.reply("GET", "/sessions", [session])
    running.reply("GET", "/sessions/app-1", session)
    note = Notification(
        id=1,
        session_id="app-1",
        project_id="app",
        type=HOSTILE,
        priority=Priority.URGENT,
        message=HOSTILE,
        created_at=NOW,
    )
    running.reply("GET", "/notifications", [note])
    hostile_event = EventOut(
        seq=1,
        project_id="app",
        session_id="app-1",
        type="notification_created",
        payload=msgspec.Raw(msgspec.json.encode({"message": HOSTILE, "priority": "urgent"})),
        created_at=NOW,
    )
    running.streams.append(Stream([frame(hostile_event)], headers={HEAD_SEQ_HEADER: "1"}))
    running.reply("POST", "/sessions/app-1/kill", error_body(ErrorCode.CONFLICT, HOSTILE), 409)
    result = invoke(*command)
    assert_clean(result.stdout)
    assert_clean(result.stderr)
    assert "RED" in result.stdout + result.stderr  # the text itself is shown, only cleaned
