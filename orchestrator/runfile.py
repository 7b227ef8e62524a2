"""The daemon's own files in its data dir: an exclusive lock, the run-file, the hook key,
and the owner-only modes of everything the data dir holds.

The lock (``flock`` on ``daemon.lock``) is what makes a second daemon on the same data dir
refuse to start; the kernel drops it when the process dies, even by ``kill -9``, so a stale
run-file never blocks a restart. The run-file tells clients where the daemon listens and
its bearer token; the hook key is what session hook tokens are derived from, kept so they
outlive a restart. Both are written atomically with mode 0600.

The data dir holds prompts, comments, CI logs and tokens, so it is 0700 and what the daemon
keeps in it is owner-only whatever the umask: files are created with explicit modes, and
ones an older version (or another tool) left wider are narrowed at start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import msgspec

from orchestrator.api import RunFile
from orchestrator.domain.errors import OrchestratorError

LOCK_NAME = "daemon.lock"
RUN_FILE_NAME = "daemon.json"
HOOK_KEY_NAME = "hook.key"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
MIN_HOOK_KEY_BYTES = 16


class AlreadyRunningError(OrchestratorError):
    """Another daemon holds this data dir."""


class HookKeyError(OrchestratorError):
    """The hook key file exists but holds no usable key."""


class DataDirLock:
    """Holds ``<data dir>/daemon.lock`` exclusively for the daemon's lifetime."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            running = read_run_file(self.path.parent / RUN_FILE_NAME)
            where = f" (pid {running.pid}, {running.address})" if running else ""
            raise AlreadyRunningError(
                f"another daemon is already running for {self.path.parent}{where}"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def write_run_file(path: Path, run: RunFile) -> None:
    """Write atomically (temp file + rename in the same dir), readable by the owner only."""
    _write_private(path, msgspec.json.format(msgspec.json.encode(run), indent=2) + b"\n")


def read_hook_key(path: Path) -> bytes | None:
    """The hook key kept at ``path`` (narrowed to 0600), or None when there is none yet."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise HookKeyError(_unusable_key(path, str(error))) from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < MIN_HOOK_KEY_BYTES:
        raise HookKeyError(_unusable_key(path, "it does not hold a hex key of 16 bytes or more"))
    restrict_modes([path])
    return key


def write_hook_key(path: Path, key: bytes) -> None:
    """Keep ``key`` at ``path``: atomically, owner-only, durable once this returns."""
    _write_private(path, key.hex().encode() + b"\n")


def _unusable_key(path: Path, why: str) -> str:
    return (
        f"the hook key {path} is unusable ({why}); delete it to make a new one "
        "(agents of live sessions must then be restarted to get new hook tokens)"
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + rename in the same dir) with mode
    0600, and fsync the directory so the rename survives a power loss."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def private_dir(path: Path) -> None:
    """Make ``path`` a directory (its parents as needed) that only its owner can enter."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists; narrow it if it does. A file
    made before another program opens it keeps that mode (SQLite gives its -wal and -shm
    files the database file's mode)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    restrict_modes([path])


def restrict_modes(paths: Iterable[Path]) -> None:
    """Narrow each existing file to 0600 and each existing directory to 0700."""
    for path in paths:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            continue  # chmod would change the link's target, which may not be ours
        wanted = PRIVATE_DIR_MODE if stat.S_ISDIR(mode) else PRIVATE_FILE_MODE
        if stat.S_IMODE(mode) & ~wanted:
            path.chmod(stat.S_IMODE(mode) & wanted)


def read_run_file(path: Path) -> RunFile | None:
    """The run-file's contents, or None when there is none (also when its directory is
    missing or a file) or it is not a run-file. Other ``OSError``s (say, permissions) are
    the caller's: "no daemon" would be the wrong answer to them."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=RunFile)
    except (FileNotFoundError, NotADirectoryError, msgspec.DecodeError):
        return None


def remove_run_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
