"""The tmux runtime and messenger against a real tmux, on private sockets only.

Every test gets its own socket directory under /tmp (tmux socket paths are limited to
~100 bytes) and kills that server afterwards. A fake "user" server lives under a private
TMUX_TMPDIR, so the real user's default server is never addressed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from adapters.tmux import (
    TmuxMessenger,
    TmuxRuntime,
    TmuxServer,
    validate_session_name,
)
from orchestrator.domain.errors import (
    ConflictError,
    DeliveryError,
    InvalidInputError,
    ProbeError,
    TransientError,
)
from orchestrator.domain.model import ProbeResult
from orchestrator.domain.text import clean_text
from orchestrator.ports import RuntimeHandle, RuntimeProbe, RuntimeSpec
from tests.tools import requires

pytestmark = requires("tmux")

ALIVE = RuntimeProbe(runtime=ProbeResult.ALIVE, process=ProbeResult.ALIVE)


def exited(status: int, output: str = "") -> RuntimeProbe:
    """An open pane whose agent exited with ``status``, having printed ``output``."""
    return RuntimeProbe(
        runtime=ProbeResult.ALIVE, process=ProbeResult.DEAD, exit_status=status, last_output=output
    )


DEAD = RuntimeProbe(runtime=ProbeResult.DEAD, process=ProbeResult.DEAD)

# Behaves like an interactive agent: raw terminal, bracketed paste enabled, records every
# byte it reads until the end of a paste followed by Enter.
RAW_RECORDER = r"""
import os, sys, tty
out = sys.argv[1]
tty.setraw(0)
os.write(1, b"\x1b[?2004h")
open(out + ".ready", "w").close()
data = b""
while not data.endswith(b"\x1b[201~\r"):
    chunk = os.read(0, 65536)
    if not chunk:
        break
    data += chunk
tmp = out + ".tmp"
with open(tmp, "wb") as fh:
    fh.write(data)
os.rename(tmp, out)
"""

WRITE_ARGV = r"""
import json, os, sys
with open("argv.json.tmp", "w") as fh:
    json.dump(sys.argv[1:], fh)
os.rename("argv.json.tmp", "argv.json")
os.read(0, 1)
"""


def _tmux_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"TMUX", "TMUX_PANE"}}


async def tmux(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """A raw tmux call, for looking at servers from the outside."""
    return await trio.run_process(
        ["tmux", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=env or _tmux_env(),
    )


async def wait_until(predicate: Callable[[], bool], *, seconds: float = 5.0) -> None:
    with trio.fail_after(seconds):
        while True:
            if predicate():
                return
            await trio.sleep(0.02)


async def wait_for_probe(runtime: TmuxRuntime, handle: RuntimeHandle, wanted: RuntimeProbe) -> None:
    """Probe until the reading is ``wanted`` (a killed process takes a moment to be reaped)."""
    with trio.fail_after(5):
        while True:
            if await runtime.probe(handle) == wanted:
                return
            await trio.sleep(0.02)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="orch-t-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def server(sock_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TmuxServer]:
    monkeypatch.delenv("TMUX", raising=False)
    srv = TmuxServer(sock_dir / "tmux.sock")
    yield srv
    # Our own test server: always stop it, whoever started it.
    await tmux("-S", str(srv.socket_path), "kill-server")


@pytest.fixture
def runtime(server: TmuxServer) -> TmuxRuntime:
    return TmuxRuntime(server)


@pytest.fixture
def messenger(server: TmuxServer) -> TmuxMessenger:
    return TmuxMessenger(server, ready_timeout=2.0, poll_interval=0.02, submit_delay=0.05)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws.resolve()


def spec(session_id: str, workspace: Path, *argv: str, **env: str) -> RuntimeSpec:
    return RuntimeSpec(
        session_id=session_id, workspace_path=str(workspace), launch_command=argv, env=env
    )


async def session_names(runtime: TmuxRuntime) -> list[str]:
    """The sessions on the runtime's socket, as its inventory (boot reconcile) sees them."""
    handles = await runtime.list_handles()
    assert {h.runtime_name for h in handles} <= {"tmux"}
    return [h.id for h in handles]


async def pane_pid(server: TmuxServer, name: str) -> int:
    socket = str(server.socket_path)
    result = await tmux("-S", socket, "list-panes", "-t", f"={name}:", "-F", "#{pane_pid}")
    return int(result.stdout.split()[0])


# --- what a pane is sent: the one sanitiser (pure) ---------------------------------------
# The messenger types ``clean_text(message)``; its full contract is in tests/unit/test_text.py.


def test_pane_text_keeps_text_newlines_and_tabs() -> None:
    assert clean_text("fix:\n\tthe\ttest ✓ ünïcode") == "fix:\n\tthe\ttest ✓ ünïcode"


def test_pane_text_drops_whole_escapes_and_control_keys() -> None:
    # The paste-ending ESC[201~ goes whole (no stray "[201~"), as do C0/C1 controls.
    dirty = "a\x1b[201~b\x03c\x04d\x07e\x7ff\x00g"
    assert clean_text(dirty) == "abcdefg"


def test_a_carriage_return_never_forges_a_line_break() -> None:
    assert clean_text("one\r\ntwo\rthree") == "one\ntwothree"


@given(st.text())
def test_pane_text_leaves_only_newline_and_tab_controls(text: str) -> None:
    cleaned = clean_text(text)
    assert all(ch in "\n\t" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F) for ch in cleaned)


@pytest.mark.parametrize("bad", ["", "a b", "a:b", "a.b", "../x", "x;y", "é"])
def test_invalid_session_names_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        validate_session_name(bad)


# --- runtime -------------------------------------------------------------------------------


async def test_create_runs_agent_in_workspace_with_its_environment(
    runtime: TmuxRuntime, workspace: Path
) -> None:
    handle = await runtime.create(
        spec(
            "app-1",
            workspace,
            "sh",
            "-c",
            'printf "%s|%s" "$FOO" "$(pwd -P)" > env.txt.tmp; mv env.txt.tmp env.txt; exec cat',
            FOO="bar; baz;",
        )
    )
    assert handle == RuntimeHandle(id="app-1", runtime_name="tmux")
    env_file = workspace / "env.txt"
    await wait_until(env_file.exists)
    assert env_file.read_text() == f"bar; baz;|{workspace}"
    assert await runtime.probe(handle) == ALIVE
    assert await session_names(runtime) == ["app-1"]
    assert await runtime.list_handles() == [handle]


async def test_long_prompt_with_shell_characters_reaches_agent_argv_verbatim(
    runtime: TmuxRuntime, server: TmuxServer, workspace: Path
) -> None:
    # Longer than tmux's 16 KiB command limit, and full of what a shell or tmux would eat.
    prompt = "Fix it; don't `rm -rf` $HOME \\; \"quoted\" #{pane_id} 'x'\n" * 400
    args = [prompt, ";", "ends with;", "-dash", ""]
    await runtime.create(spec("app-2", workspace, sys.executable, "-c", WRITE_ARGV, *args))
    argv_file = workspace / "argv.json"
    await wait_until(argv_file.exists)
    assert json.loads(argv_file.read_text()) == args
    # The launch script removes itself once the agent has started.
    assert list(await trio.Path(server.launch_dir).iterdir()) == []


async def test_probe_reports_pane_open_and_agent_exited(
    runtime: TmuxRuntime, server: TmuxServer, workspace: Path
) -> None:
    handle = await runtime.create(spec("app-3", workspace, "sleep", "300"))
    assert await runtime.probe(handle) == ALIVE
    os.kill(await pane_pid(server, "app-3"), signal.SIGKILL)
    await wait_for_probe(runtime, handle, exited(128 + signal.SIGKILL))  # as a shell says it


async def test_probe_reports_the_exit_status_and_the_last_lines_of_the_pane(
    runtime: TmuxRuntime, workspace: Path
) -> None:
    script = (
        'for i in $(seq 1 60); do echo "line $i"; done; echo "exec: claude: not found" >&2; exit 3'
    )
    handle = await runtime.create(spec("app-31", workspace, "sh", "-c", script))
    last_40 = "\n".join([*(f"line {i}" for i in range(22, 61)), "exec: claude: not found"])
    # tmux's own "Pane is dead (status 3, <time>)" notice is not the agent's output.
    await wait_for_probe(runtime, handle, exited(3, last_40))
    assert await runtime.last_output(handle, lines=2) == "line 60\nexec: claude: not found"


async def test_agent_that_exits_at_once_still_reads_as_exited_not_gone(
    runtime: TmuxRuntime, workspace: Path
) -> None:
    handle = await runtime.create(spec("app-4", workspace, "true"))
    await wait_for_probe(runtime, handle, exited(0))


async def test_destroy_kills_the_session_and_is_idempotent(
    runtime: TmuxRuntime, workspace: Path
) -> None:
    keep = await runtime.create(spec("keep", workspace, "sleep", "300"))
    handle = await runtime.create(spec("app-5", workspace, "sleep", "300"))
    await runtime.destroy(handle)
    assert await runtime.probe(handle) == DEAD
    await runtime.destroy(handle)
    await runtime.destroy(RuntimeHandle(id="never-created", runtime_name="tmux"))
    assert await session_names(runtime) == ["keep"]
    assert await runtime.probe(keep) == ALIVE


async def test_probe_is_exact_about_session_names(runtime: TmuxRuntime, workspace: Path) -> None:
    await runtime.create(spec("app-10", workspace, "sleep", "300"))
    # tmux would match "app-1" as a prefix of "app-10" without an exact target.
    assert await runtime.probe(RuntimeHandle(id="app-1", runtime_name="tmux")) == DEAD


async def test_killed_server_reads_as_dead(
    runtime: TmuxRuntime, server: TmuxServer, workspace: Path
) -> None:
    handle = await runtime.create(spec("app-6", workspace, "sleep", "300"))
    result = await tmux("-S", str(server.socket_path), "display-message", "-p", "#{pid}")
    os.kill(int(result.stdout), signal.SIGKILL)  # leaves a stale socket file behind
    await wait_for_probe(runtime, handle, DEAD)
    assert server.socket_path.exists()
    await runtime.destroy(handle)
    assert await session_names(runtime) == []


async def test_no_server_yet_reads_as_dead(runtime: TmuxRuntime) -> None:
    assert await runtime.probe(RuntimeHandle(id="app-7", runtime_name="tmux")) == DEAD
    assert await session_names(runtime) == []


async def test_probe_all_reads_every_session_as_probe_does(
    runtime: TmuxRuntime, server: TmuxServer, workspace: Path
) -> None:
    assert await runtime.probe_all() == {}  # no server yet
    alive = await runtime.create(spec("app-30", workspace, "sleep", "300"))
    done = await runtime.create(spec("app-31", workspace, "true"))
    gone = await runtime.create(spec("app-32", workspace, "sleep", "300"))
    await wait_for_probe(runtime, done, exited(0))
    await runtime.destroy(gone)
    readings = await runtime.probe_all()
    assert readings == {"app-30": ALIVE, "app-31": exited(0)}  # with its exit status
    for handle in (alive, done):
        assert readings[handle.id] == await runtime.probe(handle)
    assert await runtime.probe(gone) == DEAD

    result = await tmux("-S", str(server.socket_path), "display-message", "-p", "#{pid}")
    os.kill(int(result.stdout), signal.SIGKILL)  # a stale socket file: no server answers
    await wait_for_probe(runtime, alive, DEAD)  # the server is reaped
    assert await runtime.probe_all() == {}


async def test_probe_all_cannot_tell_with_a_missing_socket_directory(sock_dir: Path) -> None:
    with pytest.raises(ProbeError):
        await TmuxRuntime(TmuxServer(sock_dir / "missing" / "tmux.sock")).probe_all()


async def test_create_makes_the_socket_directory(sock_dir: Path, workspace: Path) -> None:
    server = TmuxServer(sock_dir / "data" / "tmux.sock")
    runtime = TmuxRuntime(server)
    try:
        handle = await runtime.create(spec("app-14", workspace, "sleep", "300"))
        assert await runtime.probe(handle) == ALIVE
    finally:
        assert await server.kill_server() is True


async def test_probe_cannot_tell_with_a_missing_socket_directory(sock_dir: Path) -> None:
    runtime = TmuxRuntime(TmuxServer(sock_dir / "missing" / "tmux.sock"))
    with pytest.raises(ProbeError):
        await runtime.probe(RuntimeHandle(id="app-1", runtime_name="tmux"))
    with pytest.raises(ProbeError):
        await runtime.list_handles()


async def test_probe_cannot_tell_when_socket_path_is_not_a_socket(sock_dir: Path) -> None:
    (sock_dir / "tmux.sock").write_text("garbage")
    runtime = TmuxRuntime(TmuxServer(sock_dir / "tmux.sock"))
    with pytest.raises(ProbeError):
        await runtime.probe(RuntimeHandle(id="app-1", runtime_name="tmux"))


async def test_probe_timeout_is_probe_error_not_dead(sock_dir: Path) -> None:
    # A socket that accepts connections and never answers, like a wedged server.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_dir / "tmux.sock"))
    listener.listen(8)
    try:
        server = TmuxServer(sock_dir / "tmux.sock", command_timeout=0.3)
        with pytest.raises(ProbeError, match="timed out"):
            await TmuxRuntime(server).probe(RuntimeHandle(id="app-1", runtime_name="tmux"))
        messenger = TmuxMessenger(server, ready_timeout=0.5, poll_interval=0.05)
        with pytest.raises(TransientError) as info:
            await messenger.send("app-1", "hello")
        assert not isinstance(info.value, DeliveryError)
    finally:
        listener.close()


async def test_create_rejects_bad_input_without_touching_tmux(
    runtime: TmuxRuntime, server: TmuxServer, workspace: Path
) -> None:
    with pytest.raises(InvalidInputError):
        await runtime.create(spec("bad id", workspace, "true"))
    with pytest.raises(InvalidInputError):
        await runtime.create(spec("app-8", workspace))
    with pytest.raises(InvalidInputError):
        await runtime.create(spec("app-8", workspace / "missing", "true"))
    with pytest.raises(InvalidInputError):
        await runtime.create(
            RuntimeSpec(
                session_id="app-8",
                workspace_path=str(workspace),
                launch_command=("true",),
                env={"BAD NAME": "x"},
            )
        )
    assert not server.socket_path.exists()


async def test_create_refuses_a_duplicate_session(runtime: TmuxRuntime, workspace: Path) -> None:
    handle = await runtime.create(spec("app-9", workspace, "sleep", "300"))
    with pytest.raises(ConflictError):
        await runtime.create(spec("app-9", workspace, "sleep", "300"))
    assert await runtime.probe(handle) == ALIVE


async def test_kill_server_only_stops_a_server_this_object_started(
    runtime: TmuxRuntime, server: TmuxServer, workspace: Path
) -> None:
    handle = await runtime.create(spec("app-11", workspace, "sleep", "300"))
    other = TmuxServer(server.socket_path)  # e.g. a restarted daemon adopting the server
    assert await other.kill_server() is False
    assert await runtime.probe(handle) == ALIVE
    assert await server.kill_server() is True
    assert await runtime.probe(handle) == DEAD


async def test_users_default_tmux_server_is_never_touched(
    sock_dir: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_tmpdir = sock_dir / "user"
    user_tmpdir.mkdir()
    monkeypatch.setenv("TMUX_TMPDIR", str(user_tmpdir))
    monkeypatch.delenv("TMUX", raising=False)
    user_env = _tmux_env()
    started = await tmux("new-session", "-d", "-s", "user-work", "sleep", "300", env=user_env)
    assert started.returncode == 0, started.stderr
    try:
        server = TmuxServer(sock_dir / "tmux.sock")
        runtime = TmuxRuntime(server)
        messenger = TmuxMessenger(server, submit_delay=0.01)
        handle = await runtime.create(spec("app-12", workspace, "cat"))
        await messenger.send("app-12", "hello")
        await runtime.destroy(handle)
        await runtime.create(spec("app-13", workspace, "cat"))
        assert await server.kill_server() is True

        listed = await tmux("list-sessions", "-F", "#{session_name}", env=user_env)
        assert listed.stdout.decode().split() == ["user-work"]
        assert await session_names(runtime) == []
    finally:
        await tmux("kill-server", env=user_env)


# --- messenger -----------------------------------------------------------------------------


async def test_send_delivers_a_long_multiline_message_intact(
    runtime: TmuxRuntime, messenger: TmuxMessenger, workspace: Path
) -> None:
    # A plain `cat` in a cooked terminal: no bracketed paste, the tty turns CR into LF.
    await runtime.create(spec("app-20", workspace, "sh", "-c", "cat > received.txt"))
    lines = [f"line {i}:\t" + "the quick brown fox " * 10 for i in range(120)]
    message = "\r\n".join(lines) + "\x03\x04 ctrl-c and ctrl-d\x1b[31m must not act\x07\n"
    expected = clean_text(message).rstrip("\n") + "\n"
    assert len(expected) > 20_000
    await messenger.send("app-20", message)
    received = workspace / "received.txt"
    await wait_until(lambda: received.exists() and received.stat().st_size >= len(expected))
    assert received.read_text() == expected


async def test_send_uses_bracketed_paste_when_the_agent_enables_it(
    runtime: TmuxRuntime, messenger: TmuxMessenger, workspace: Path
) -> None:
    out = workspace / "raw.bin"
    await runtime.create(spec("app-21", workspace, sys.executable, "-c", RAW_RECORDER, str(out)))
    # Wait until it has switched the terminal to raw mode and enabled bracketed paste.
    await wait_until((workspace / "raw.bin.ready").exists)
    # An embedded end-of-paste sequence must not end the paste early.
    await messenger.send("app-21", "first line\nsecond \x1b[201~line\n\n")
    await wait_until(out.exists)
    assert out.read_bytes() == b"\x1b[200~first line\rsecond line\x1b[201~\r"


async def test_send_to_a_missing_session_is_a_delivery_error(server: TmuxServer) -> None:
    messenger = TmuxMessenger(server, ready_timeout=0.2, poll_interval=0.02)
    with pytest.raises(DeliveryError):
        await messenger.send("nobody-1", "hello")


async def test_send_to_an_exited_agent_fails_and_keeps_other_sessions_alive(
    runtime: TmuxRuntime, messenger: TmuxMessenger, server: TmuxServer, workspace: Path
) -> None:
    other = await runtime.create(spec("app-22", workspace, "sleep", "300"))
    exited_agent = await runtime.create(spec("app-23", workspace, "true"))
    await wait_for_probe(runtime, exited_agent, exited(0))
    with pytest.raises(DeliveryError, match="exited"):
        await messenger.send("app-23", "hello")
    # tmux 3.3 crashes when pasting into a dead pane; the server and its sessions survive.
    assert await runtime.probe(other) == ALIVE
    buffers = await tmux("-S", str(server.socket_path), "list-buffers")
    assert buffers.stdout == b""


async def test_send_rejects_an_empty_message(
    runtime: TmuxRuntime, messenger: TmuxMessenger, workspace: Path
) -> None:
    await runtime.create(spec("app-24", workspace, "cat"))
    with pytest.raises(DeliveryError, match="empty"):
        await messenger.send("app-24", "\x1b\x07\n")


async def test_concurrent_sends_to_one_session_do_not_interleave(
    runtime: TmuxRuntime, messenger: TmuxMessenger, workspace: Path
) -> None:
    await runtime.create(spec("app-25", workspace, "sh", "-c", "cat > received.txt"))
    messages = [f"message {i}: " + chr(ord("a") + i) * 2000 for i in range(4)]
    async with trio.open_nursery() as nursery:
        for m in messages:
            nursery.start_soon(messenger.send, "app-25", m)
    received = workspace / "received.txt"
    total = sum(len(m) + 1 for m in messages)
    await wait_until(lambda: received.exists() and received.stat().st_size >= total)
    assert sorted(received.read_text().splitlines()) == sorted(messages)


# --- paste and submit are one step; a re-send clears the line first -------------------------

# tmux, logging each client call (pid and argv) before it runs.
LOGGING_TMUX = """#!/bin/sh
printf '%s %s\\n' "$$" "$*" >> "$TMUX_CALLS"
exec tmux "$@"
"""


@pytest.fixture
def logged(sock_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tmux binary that logs its calls to the returned file."""
    calls = sock_dir / "calls.log"
    wrapper = sock_dir / "tmux-logged"
    wrapper.write_text(LOGGING_TMUX)
    wrapper.chmod(0o700)
    monkeypatch.setenv("TMUX_CALLS", str(calls))
    return calls


def logged_server(sock_dir: Path) -> TmuxServer:
    return TmuxServer(sock_dir / "tmux.sock", tmux_binary=str(sock_dir / "tmux-logged"))


async def test_paste_and_enter_are_one_tmux_call(
    logged: Path, sock_dir: Path, server: TmuxServer, workspace: Path
) -> None:
    runtime = TmuxRuntime(server)
    await runtime.create(spec("app-40", workspace, "sh", "-c", "cat > received.txt"))
    messenger = TmuxMessenger(logged_server(sock_dir), poll_interval=0.02, submit_delay=0.05)
    await messenger.send("app-40", "hello")
    await wait_until(lambda: (workspace / "received.txt").read_text() == "hello\n")
    log = await trio.Path(logged).read_text()
    calls = [line.split(" ", 1)[1] for line in log.splitlines()]
    typing = [call for call in calls if "paste-buffer" in call]
    assert len(typing) == 1
    assert "Enter" in typing[0]
    assert all("list-panes" in call for call in calls if call not in typing)


async def test_a_client_killed_between_paste_and_enter_still_submits_the_text(
    logged: Path, sock_dir: Path, server: TmuxServer, workspace: Path
) -> None:
    # What a kill -9 of the daemon (and its tmux client) mid-send leaves: the server has
    # the whole step and finishes it, so the text never waits unsubmitted on the line.
    runtime = TmuxRuntime(server)
    await runtime.create(spec("app-41", workspace, "sh", "-c", "cat > received.txt"))
    messenger = TmuxMessenger(logged_server(sock_dir), poll_interval=0.02, submit_delay=1.0)
    received = workspace / "received.txt"

    def typing_client() -> int | None:
        for line in logged.read_text().splitlines() if logged.exists() else []:
            pid, call = line.split(" ", 1)
            if "paste-buffer" in call:
                return int(pid)
        return None

    async with trio.open_nursery() as nursery:
        nursery.start_soon(messenger.send, "app-41", "first")
        await wait_until(lambda: typing_client() is not None)
        await trio.sleep(0.3)  # pasted, Enter not yet sent
        pid = typing_client()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        nursery.cancel_scope.cancel()  # and the daemon is gone: it sends nothing more
    await wait_until(lambda: received.exists() and received.read_text() == "first\n")


async def test_a_resend_clears_a_half_typed_line_first(
    runtime: TmuxRuntime, server: TmuxServer, workspace: Path
) -> None:
    # A cooked terminal: C-u erases the line the way an agent's input box does.
    await runtime.create(spec("app-42", workspace, "sh", "-c", "cat > received.txt"))
    asked: list[str] = []

    async def keys(session_id: str) -> tuple[str, ...]:
        asked.append(session_id)
        return ("C-e", "C-u")

    messenger = TmuxMessenger(server, poll_interval=0.02, submit_delay=0.05, clear_line_keys=keys)
    await messenger.send("app-42", "first")
    left = await tmux("-S", str(server.socket_path), "send-keys", "-t", "=app-42:", "-l", "half")
    assert left.returncode == 0
    await messenger.send("app-42", "again", resend=True)
    received = workspace / "received.txt"
    await wait_until(lambda: received.exists() and received.read_text().count("\n") == 2)
    assert received.read_text() == "first\nagain\n"
    assert asked == ["app-42"]  # only a resend asks for the keys


@pytest.mark.parametrize(
    ("keys", "before_the_paste"),
    [((), b""), (("C-e", "C-u"), b"\x05\x15")],
    ids=["agent-without-keys", "agent-with-keys"],
)
async def test_a_resend_presses_the_agents_clear_keys_and_nothing_else_before_the_paste(
    runtime: TmuxRuntime,
    server: TmuxServer,
    workspace: Path,
    keys: tuple[str, ...],
    before_the_paste: bytes,
) -> None:
    out = workspace / "raw.bin"
    await runtime.create(spec("app-43", workspace, sys.executable, "-c", RAW_RECORDER, str(out)))
    await wait_until((workspace / "raw.bin.ready").exists)

    async def agent_keys(session_id: str) -> tuple[str, ...]:
        return keys

    messenger = TmuxMessenger(
        server, poll_interval=0.02, submit_delay=0.05, clear_line_keys=agent_keys
    )
    await messenger.send("app-43", "again", resend=True)
    await wait_until(out.exists)
    assert out.read_bytes() == before_the_paste + b"\x1b[200~again\x1b[201~\r"


async def test_clear_keys_that_are_not_key_names_are_refused_before_typing(
    runtime: TmuxRuntime, server: TmuxServer, workspace: Path
) -> None:
    await runtime.create(spec("app-45", workspace, "sh", "-c", "cat > received.txt"))

    async def bad(session_id: str) -> tuple[str, ...]:
        return ("C-u ; kill-server",)

    messenger = TmuxMessenger(server, poll_interval=0.02, submit_delay=0.05, clear_line_keys=bad)
    with pytest.raises(InvalidInputError, match="not a tmux key name"):
        await messenger.send("app-45", "hello", resend=True)
    await messenger.send("app-45", "hello")  # the server is still there
    received = workspace / "received.txt"
    await wait_until(lambda: received.exists() and received.read_text() == "hello\n")
