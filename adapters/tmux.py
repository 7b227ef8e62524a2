"""tmux runtime: one detached session per orchestrator session, on a private server.

Every command runs as ``tmux -S <socket>`` against a socket the daemon owns (typically
``<data_dir>/tmux.sock``), so the user's own tmux server is never read, changed or killed.
Sessions are created with ``remain-on-exit on``: when the agent exits the pane stays, which is
how a probe tells "pane open, agent exited" from "session gone".

The agent's argv and environment are written to a small launch script (mode 0600) next to
the socket and exec'd by ``/bin/sh``: the argv is never re-parsed by a shell (a prompt may
hold any character), a long prompt does not hit tmux's ~16 KiB command-size limit, and no
variable (the hook token among them) appears in any process's argv — the tmux server keeps
the argv of the client that started it, which ``ps`` shows to every user.

Liveness (``TmuxRuntime.probe``):

==============================================  ================  ================
tmux says                                       runtime           process
==============================================  ================  ================
session missing, or no server on our socket     dead              dead
session present, every pane ``#{pane_dead}``    alive             dead
session present, a pane running                 alive             alive
anything else (error, timeout, bad socket dir)  ``ProbeError``    (never "dead")
==============================================  ================  ================

A pane whose agent exited also yields the agent's exit status (``#{pane_dead_status}``, or
``128 + #{pane_dead_signal}`` for a signal) and the last lines it printed
(``capture-pane``), read once when the probe finds it dead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shlex
import signal
import stat
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

import trio

from adapters.process import ProcessResult, run_command
from orchestrator.config.schema import KEY_NAME
from orchestrator.domain.errors import (
    ConflictError,
    DeliveryError,
    InvalidInputError,
    ProbeError,
    TransientError,
)
from orchestrator.domain.model import ProbeResult, SessionId
from orchestrator.domain.text import clean_text
from orchestrator.ports import RuntimeHandle, RuntimeProbe, RuntimeSpec

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT",
    "RUNTIME_NAME",
    "TmuxMessenger",
    "TmuxRuntime",
    "TmuxServer",
    "validate_session_name",
]

logger = logging.getLogger(__name__)

DEFAULT_COMMAND_TIMEOUT: Final = 5.0
RUNTIME_NAME: Final = "tmux"

# AF_UNIX paths are limited to 104 bytes on macOS/BSD and 108 on Linux, NUL included.
_MAX_SOCKET_PATH_BYTES: Final = 103
_SESSION_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# C0 controls except \t and \n, DEL, and the C1 range (U+0080..U+009F, e.g. U+009B is CSI).
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What tmux prints when the session or the whole server is not there.
_MISSING_MARKERS: Final = (
    "can't find session",
    "can't find window",
    "can't find pane",
    "session not found",
    "no server running",
    # A server whose last session just ended answers this while it shuts down.
    "no current target",
)
_DEAD_PANE_MARK: Final = "orchestrator-pane-dead"
# One probe line per pane: dead flag, exit status, signal (both empty while it runs), and
# the server's pid.
_PANE_STATE_FORMAT: Final = "#{pane_dead} #{pane_dead_status} #{pane_dead_signal} #{pid}"
_REAP_NUDGES: Final = 5  # SIGCHLDs sent to a server that missed one (see _missed_exit_status)
_SIGNAL_EXIT_BASE: Final = 128  # a shell's $? for a process killed by signal n
LAST_OUTPUT_LINES: Final = 40
# What tmux writes into a pane kept after its process ended (remain-on-exit).
_PANE_DEAD_NOTICE: Final = re.compile(r"^Pane is dead \((?:status|signal) \d+, .*\)$")
_SERVER_EXITED: Final = "server exited unexpectedly"


def validate_session_name(name: str) -> str:
    """Return ``name`` if it is a usable tmux session name (``[A-Za-z0-9_-]``, 1-128 chars)."""
    if not _SESSION_NAME.fullmatch(name):
        raise InvalidInputError(
            f"session id {name!r} is not a valid tmux session name: use 1-128 of [A-Za-z0-9_-]"
        )
    return name


def _escape_arg(arg: str) -> str:
    """Protect an argument from tmux's argv command parser, which treats a trailing ``;``
    as a command separator; ``\\;`` is read back as a literal ``;``."""
    return arg[:-1] + "\\;" if arg.endswith(";") else arg


def _escape_format(text: str) -> str:
    """Protect a value tmux expands as a format (``-c``): ``#`` becomes ``##``."""
    return text.replace("#", "##")


def _missing(result: ProcessResult) -> bool:
    """The command failed because the session (or the whole server) is not there."""
    if result.ok:
        return False
    stderr = result.stderr
    if any(marker in stderr for marker in _MISSING_MARKERS):
        return True
    # The socket file vanished between our check and the call (server exited).
    return "error connecting to" in stderr and "No such file or directory" in stderr


class TmuxServer:
    """One tmux server on a private socket. All tmux calls of this package go through here.

    ``config_file`` is what a server started by us loads (default: none, so the user's
    ``~/.tmux.conf`` cannot change how agents run); ``None`` lets tmux pick its default.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        *,
        tmux_binary: str = "tmux",
        config_file: str | None = os.devnull,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        path = Path(socket_path).absolute()
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH_BYTES:
            raise InvalidInputError(
                f"tmux socket path {str(path)!r} is longer than {_MAX_SOCKET_PATH_BYTES} bytes; "
                "choose a shorter data directory"
            )
        self.socket_path: Final = path
        self.command_timeout: Final = command_timeout
        self._base = [tmux_binary, "-S", str(path)]
        if config_file is not None:
            self._base += ["-f", config_file]
        # Never let an enclosing tmux (the daemon started from inside tmux) leak in.
        self._env = {k: v for k, v in os.environ.items() if k not in {"TMUX", "TMUX_PANE"}}
        self._started_here = False

    @property
    def started_here(self) -> bool:
        """True once this object has started the server on its socket."""
        return self._started_here

    @property
    def launch_dir(self) -> Path:
        """Where launch scripts are written (next to the socket, private to the daemon)."""
        return self.socket_path.parent / "launch"

    async def run(
        self,
        *commands: Sequence[str],
        stdin: bytes = b"",
        time_limit: float | None = None,
    ) -> ProcessResult:
        """Run one tmux client invocation holding ``commands`` (joined with ``;``).

        Arguments are escaped so that none is read as a command separator. A timeout or a
        failure to start tmux raises ``TransientError``; a tmux error is returned, not raised.
        """
        argv = list(self._base)
        for i, command in enumerate(commands):
            if i:
                argv.append(";")
            argv.extend(_escape_arg(arg) for arg in command)
        return await run_command(
            argv,
            program="tmux",
            what=f"tmux {commands[0][0] if commands else ''} on {self.socket_path}",
            time_limit=self.command_timeout if time_limit is None else time_limit,
            env=self._env,
            stdin=stdin,
        )

    async def query(self, command: Sequence[str]) -> ProcessResult:
        """``run`` for a read-only or idempotent command: when the server went away while
        answering ("server exited unexpectedly"), ask once more, so the answer is either
        real or "no server" rather than that race."""
        result = await self.run(command)
        if not result.ok and _SERVER_EXITED in result.stderr:
            logger.warning("tmux server on %s exited during %s", self.socket_path, command[0])
            await trio.sleep(0.05)
            result = await self.run(command)
        return result

    async def socket_state(self) -> bool:
        """Whether a socket file is present. Raises ``ProbeError`` when the socket directory
        is missing or the path is not a socket: then nobody can tell whether sessions live."""
        try:
            st = await trio.Path(self.socket_path).stat()
        except FileNotFoundError:
            if not await trio.Path(self.socket_path.parent).is_dir():
                raise ProbeError(
                    f"tmux socket directory {str(self.socket_path.parent)!r} does not exist"
                ) from None
            return False
        except OSError as exc:
            raise ProbeError(f"cannot stat tmux socket {str(self.socket_path)!r}: {exc}") from exc
        if not stat.S_ISSOCK(st.st_mode):
            raise ProbeError(f"{str(self.socket_path)!r} exists but is not a socket")
        return True

    async def is_running(self) -> bool:
        """Whether a server answers on our socket."""
        if not await self.socket_state():
            return False
        result = await self.query(["list-sessions", "-F", "#{session_name}"])
        if result.ok:
            return True
        if _missing(result):
            return False
        raise ProbeError(f"tmux list-sessions failed: {result.stderr}")

    async def list_sessions(self) -> list[str]:
        """Names of the sessions on our socket ([] when no server runs). ``ProbeError`` when
        tmux cannot tell."""
        if not await self.socket_state():
            return []
        try:
            result = await self.query(["list-sessions", "-F", "#{session_name}"])
        except TransientError as exc:
            raise ProbeError(str(exc)) from exc
        if result.ok:
            return [line for line in result.stdout.splitlines() if line]
        if _missing(result):
            return []
        raise ProbeError(f"tmux list-sessions failed: {result.stderr}")

    async def kill_server(self) -> bool:
        """Kill the server on our socket, only if this object started it. Returns whether a
        kill was sent. The user's default server is never addressed."""
        if not self._started_here:
            return False
        self._started_here = False
        result = await self.run(["kill-server"])
        if not result.ok and not _missing(result):
            raise TransientError(f"tmux kill-server failed: {result.stderr}")
        return result.ok

    def record_started(self) -> None:
        """Note that a command of ours started the server (``kill_server`` may stop it)."""
        self._started_here = True


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(content)


def _launch_script(argv: Sequence[str], env: Mapping[str, str]) -> str:
    # The script deletes itself, exports the session's variables, then replaces the shell
    # with the agent: the pane's process *is* the agent, so #{pane_dead} reports the agent's
    # exit, not a wrapper shell's.
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())
    return f'#!/bin/sh\nrm -f -- "$0"\n{exports}exec {shlex.join(argv)}\n'


class TmuxRuntime:
    """``Runtime`` over tmux: ``create`` / ``probe`` / ``destroy`` by session name."""

    name: str = RUNTIME_NAME

    def __init__(self, server: TmuxServer, *, width: int = 200, height: int = 50) -> None:
        self._server = server
        self._width = width
        self._height = height

    async def create(self, spec: RuntimeSpec) -> RuntimeHandle:
        name = validate_session_name(spec.session_id)
        if not spec.launch_command:
            raise InvalidInputError(f"session {name}: launch command is empty")
        if any("\0" in arg for arg in spec.launch_command):
            raise InvalidInputError(f"session {name}: launch command contains a NUL byte")
        _check_environment(name, spec.env)
        workspace = trio.Path(spec.workspace_path)
        if not workspace.is_absolute() or not await workspace.is_dir():
            raise InvalidInputError(
                f"session {name}: workspace {spec.workspace_path!r} is not an existing directory"
            )

        await trio.Path(self._server.socket_path.parent).mkdir(
            mode=0o700, parents=True, exist_ok=True
        )
        was_running = await self._server.is_running()
        script = self._server.launch_dir / f"{name}-{secrets.token_hex(6)}.sh"
        await trio.to_thread.run_sync(
            _write_private, script, _launch_script(spec.launch_command, spec.env)
        )
        new_session = [
            "new-session",
            "-d",
            "-s",
            name,
            "-c",
            _escape_format(spec.workspace_path),
            "-x",
            str(self._width),
            "-y",
            str(self._height),
            "--",
            "/bin/sh",
            str(script),
        ]
        try:
            # Options first, in the same invocation, so an agent that exits at once still
            # leaves its pane (remain-on-exit) and the scrollback is large from the start.
            result = await self._server.run(
                ["set-option", "-g", "remain-on-exit", "on"],
                ["set-option", "-g", "history-limit", "50000"],
                new_session,
                ["set-option", "-w", "-t", f"={name}:", "remain-on-exit", "on"],
            )
        except BaseException:
            # Timed out or cancelled: tmux may still have made the session. We return no
            # handle, so nobody else would ever remove it.
            with trio.CancelScope(shield=True), trio.move_on_after(self._server.command_timeout):
                await _remove_quietly(script)
                with contextlib.suppress(TransientError):
                    await self._server.run(["kill-session", "-t", f"={name}"])
            raise
        if not result.ok:
            await _remove_quietly(script)
            if "duplicate session" in result.stderr:
                raise ConflictError(f"tmux session {name} already exists")
            raise TransientError(f"tmux new-session {name} failed: {result.stderr}")
        if not was_running:
            self._server.record_started()
        return RuntimeHandle(id=name, runtime_name=RUNTIME_NAME)

    async def probe(self, handle: RuntimeHandle) -> RuntimeProbe:
        name = _handle_name(handle)
        if not await self._server.socket_state():
            return _DEAD
        try:
            result = await self._server.query(
                ["list-panes", "-s", "-t", f"={name}:", "-F", _PANE_STATE_FORMAT]
            )
        except TransientError as exc:
            raise ProbeError(f"probe {name}: {exc}") from exc
        if result.ok:
            panes = [line.split(" ") for line in result.stdout.splitlines() if line.strip()]
            if not panes:
                raise ProbeError(f"probe {name}: tmux listed no panes")
            if any(pane[0] == "0" for pane in panes):
                return _RUNNING
            status = _exit_status(panes[0])
            if status is None:
                status = await self._missed_exit_status(name, panes[0])
            return RuntimeProbe(
                runtime=ProbeResult.ALIVE,
                process=ProbeResult.DEAD,
                exit_status=status,
                last_output=await self.last_output(handle),
            )
        if _missing(result):
            return _DEAD
        raise ProbeError(f"probe {name}: tmux list-panes failed: {result.stderr}")

    async def _missed_exit_status(self, name: str, pane: Sequence[str]) -> int | None:
        """tmux 3.3 now and then misses the SIGCHLD of a pane's process: the pane reads dead
        but its process stays a zombie, with no status, until some later wake-up seconds
        away. A SIGCHLD sent to our own server (its pid is in the probe line) makes it reap
        at once; ask again a few times. None if the status still does not show."""
        server_pid = pane[3] if len(pane) > 3 else ""
        for attempt in range(1, _REAP_NUDGES + 1):
            if server_pid.isdigit():
                with contextlib.suppress(OSError):
                    os.kill(int(server_pid), signal.SIGCHLD)
            await trio.sleep(0.02 * attempt)
            try:
                result = await self._server.query(
                    ["list-panes", "-s", "-t", f"={name}:", "-F", _PANE_STATE_FORMAT]
                )
            except TransientError:
                return None
            lines = result.stdout.splitlines() if result.ok else []
            status = _exit_status(lines[0].split(" ")) if lines else None
            if status is not None:
                return status
        logger.info("probe %s: the agent exited, but tmux shows no exit status", name)
        return None

    async def last_output(self, handle: RuntimeHandle, lines: int = LAST_OUTPUT_LINES) -> str:
        """The last ``lines`` lines the session's pane shows, as text (tmux's own "Pane is
        dead" notice and trailing blank lines left out); "" when tmux cannot show them: the
        output is a courtesy, never a reason for a probe to fail."""
        name = _handle_name(handle)
        try:
            result = await self._server.query(
                ["capture-pane", "-p", "-J", "-S", f"-{lines}", "-t", f"={name}:"]
            )
        except TransientError:
            logger.debug("could not capture the pane of %s", name, exc_info=True)
            return ""
        if not result.ok:
            return ""
        shown = result.stdout.rstrip().splitlines()
        if shown and _PANE_DEAD_NOTICE.match(shown[-1]):
            shown = "\n".join(shown[:-1]).rstrip().splitlines()
        return "\n".join(shown[-lines:])

    async def destroy(self, handle: RuntimeHandle) -> None:
        """Kill the session; a session (or server) that is already gone is fine."""
        name = _handle_name(handle)
        try:
            if not await self._server.socket_state():
                return
        except ProbeError:
            # No socket directory: no server can be listening there, so nothing to destroy.
            return
        result = await self._server.query(["kill-session", "-t", f"={name}"])
        if not result.ok and not _missing(result):
            raise TransientError(f"tmux kill-session {name} failed: {result.stderr}")

    async def list_handles(self) -> list[RuntimeHandle]:
        """A handle for every session on our socket (``RuntimeInventory``, boot reconcile).
        ``ProbeError`` when tmux cannot tell."""
        return [
            RuntimeHandle(id=name, runtime_name=RUNTIME_NAME)
            for name in await self._server.list_sessions()
        ]

    async def probe_all(self) -> dict[str, RuntimeProbe]:
        """What ``probe`` would say of every session on our socket, from one tmux call (the
        boot reconcile reads a thousand sessions this way instead of with a thousand
        processes). A session not listed is gone. ``ProbeError`` when tmux cannot tell."""
        if not await self._server.socket_state():
            return {}
        try:
            result = await self._server.query(
                ["list-panes", "-a", "-F", "#{session_name} #{pane_dead}"]
            )
        except TransientError as exc:
            raise ProbeError(f"probe all: {exc}") from exc
        if not result.ok:
            if _missing(result):
                return {}
            raise ProbeError(f"probe all: tmux list-panes failed: {result.stderr}")
        running: dict[str, bool] = {}
        for line in result.stdout.splitlines():
            name, _, dead = line.rpartition(" ")
            if name:
                running[name] = running.get(name, False) or dead == "0"
        readings = {name: _ALIVE_PANE for name, up in running.items() if up}
        for name in running.keys() - readings.keys():
            # An exited agent is rare: its own probe reads the exit status and last output.
            readings[name] = await self.probe(RuntimeHandle(id=name, runtime_name=RUNTIME_NAME))
        return readings


_DEAD: Final = RuntimeProbe(runtime=ProbeResult.DEAD, process=ProbeResult.DEAD)
_ALIVE_PANE: Final = RuntimeProbe(runtime=ProbeResult.ALIVE, process=ProbeResult.ALIVE)
_RUNNING: Final = RuntimeProbe(runtime=ProbeResult.ALIVE, process=ProbeResult.ALIVE)


def _exit_status(pane: Sequence[str]) -> int | None:
    """The exit status a dead pane's probe line names (a signal as ``128 + n``)."""
    status = pane[1] if len(pane) > 1 else ""
    signal = pane[2] if len(pane) > 2 else ""
    if status.isdigit():
        return int(status)
    if signal.isdigit():
        return _SIGNAL_EXIT_BASE + int(signal)
    return None


def _handle_name(handle: RuntimeHandle) -> str:
    if handle.runtime_name != RUNTIME_NAME:
        raise InvalidInputError(f"handle {handle.id!r} belongs to runtime {handle.runtime_name!r}")
    return validate_session_name(handle.id)


def _check_environment(name: str, env: Mapping[str, str]) -> None:
    for key, value in env.items():
        if not _ENV_NAME.fullmatch(key):
            raise InvalidInputError(f"session {name}: invalid environment variable name {key!r}")
        if "\0" in value:
            raise InvalidInputError(f"session {name}: environment variable {key} holds a NUL")


async def _remove_quietly(path: Path) -> None:
    try:
        await trio.Path(path).unlink(missing_ok=True)
    except OSError:
        logger.warning("could not remove launch script %s", path, exc_info=True)


class TmuxMessenger:
    """``AgentMessenger`` over tmux: types a message into a session's pane and submits it.

    The text (escape sequences and control characters removed by the one sanitiser,
    ``clean_text``) goes through a named tmux buffer and ``paste-buffer -p`` (bracketed
    paste when the agent asked for it), so long and multi-line messages arrive whole; then
    ``Enter`` submits it. Sends to one session are serialised. A missing session or an
    exited agent raises ``DeliveryError``; a tmux error or timeout raises ``TransientError``.

    Paste and Enter are one tmux client call, so no crash of the daemon can land between
    them (an unsubmitted text would glue itself to the next message on the same line):

    - ``load-buffer`` reads the text from the client's stdin;
    - ``if-shell`` checks the pane in the server (tmux 3.3 crashes when pasting into a dead
      pane) and, if it lives, pastes and schedules the Enter ``submit_delay`` seconds later
      with ``run-shell -b -d`` (TUIs that read a paste and an Enter in one burst take the
      Enter as a newline). The server runs that Enter even if the client is gone by then;
    - ``wait-for`` holds the client until the Enter was sent, so the next message to the
      session never overtakes it.

    With ``resend`` (an earlier attempt may have typed the text) the keys that
    ``clear_line_keys`` names for the session's agent are pressed first, in the same call,
    to empty whatever half-typed line is there; an agent with none gets nothing extra.
    """

    def __init__(
        self,
        server: TmuxServer,
        *,
        ready_timeout: float = 10.0,
        poll_interval: float = 0.1,
        submit_delay: float = 0.2,
        clear_line_keys: Callable[[SessionId], Awaitable[Sequence[str]]] | None = None,
    ) -> None:
        self._server = server
        self._ready_timeout = ready_timeout
        self._poll_interval = poll_interval
        self._submit_delay = submit_delay
        self._clear_line_keys = clear_line_keys
        self._locks: dict[str, trio.Lock] = {}

    async def send(self, session_id: SessionId, message: str, *, resend: bool = False) -> None:
        name = validate_session_name(session_id)
        text = clean_text(message).rstrip("\n")
        if not text.strip():
            raise DeliveryError(f"send {name}: message is empty after removing control characters")
        clear_keys = await self._keys_to_clear(name) if resend else ()
        lock = self._locks.setdefault(name, trio.Lock())
        try:
            async with lock:
                await self._send_locked(name, text, clear_keys)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(name, None)

    async def _keys_to_clear(self, name: str) -> tuple[str, ...]:
        if self._clear_line_keys is None:
            return ()
        keys = tuple(await self._clear_line_keys(name))
        bad = [key for key in keys if not KEY_NAME.fullmatch(key)]
        if bad:
            raise InvalidInputError(f"send {name}: {bad[0]!r} is not a tmux key name")
        return keys

    async def _send_locked(self, name: str, text: str, clear_keys: Sequence[str]) -> None:
        await self._wait_for_live_pane(name)
        target = f"={name}:"
        # The tmux buffer and the wait-for channel of this one send.
        token = f"orchestrator-{name}-{secrets.token_hex(4)}"
        typing = f"paste-buffer -p -d -b {token} -t {target}"
        if clear_keys:
            typing = f"send-keys -t {target} {' '.join(clear_keys)} ; {typing}"
        submit = f"send-keys -t {target} Enter ; wait-for -S {token}"
        if self._submit_delay > 0:
            submit = f'run-shell -b -d {self._submit_delay:.3f} -C "{submit}"'
        dead = f"display-message -p {_DEAD_PANE_MARK} ; delete-buffer -b {token}"
        pasted = False
        try:
            result = await self._server.run(
                ["load-buffer", "-b", token, "-"],
                [
                    "if-shell",
                    "-F",
                    "-t",
                    target,
                    "#{pane_dead}",
                    f"{dead} ; wait-for -S {token}",
                    f"{typing} ; {submit}",
                ],
                ["wait-for", token],
                stdin=text.encode("utf-8"),
                time_limit=self._server.command_timeout + self._submit_delay,
            )
            if _missing(result):
                raise DeliveryError(f"send {name}: tmux session is gone")
            if not result.ok:
                raise TransientError(f"send {name}: tmux paste failed: {result.stderr}")
            if _DEAD_PANE_MARK in result.stdout:
                raise DeliveryError(f"send {name}: the agent has exited")
            pasted = True
        finally:
            if not pasted:
                with trio.CancelScope(shield=True):
                    await self._delete_buffer(token)

    async def _wait_for_live_pane(self, name: str) -> None:
        last = "tmux session not found"
        missing = True
        with trio.move_on_after(self._ready_timeout):
            while True:
                try:
                    result = await self._server.query(
                        ["list-panes", "-s", "-t", f"={name}:", "-F", "#{pane_dead}"]
                    )
                except TransientError as exc:
                    missing, last = False, str(exc)
                else:
                    if result.ok:
                        if "0" in result.stdout.split():
                            return
                        raise DeliveryError(f"send {name}: the agent has exited")
                    missing = _missing(result)
                    last = result.stderr
                await trio.sleep(self._poll_interval)
        if missing:
            raise DeliveryError(f"send {name}: no tmux session after {self._ready_timeout:g}s")
        raise TransientError(f"send {name}: tmux not ready: {last}")

    async def _delete_buffer(self, buffer: str) -> None:
        try:
            await self._server.run(["delete-buffer", "-b", buffer])
        except TransientError:
            logger.warning("could not delete tmux buffer %s", buffer, exc_info=True)
