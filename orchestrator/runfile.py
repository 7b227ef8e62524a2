"""The daemon's presence in its data dir: an exclusive lock and the run-file.

The lock (``flock`` on ``daemon.lock``) is what makes a second daemon on the same data dir
refuse to start; the kernel drops it when the process dies, even by ``kill -9``, so a stale
run-file never blocks a restart. The run-file tells clients where the daemon listens and
its bearer token, so it is written atomically with mode 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from types import TracebackType

import msgspec

from orchestrator.api import RunFile
from orchestrator.domain.errors import OrchestratorError

LOCK_NAME = "daemon.lock"
RUN_FILE_NAME = "daemon.json"


class AlreadyRunningError(OrchestratorError):
    """Another daemon holds this data dir."""


class DataDirLock:
    """Holds ``<data dir>/daemon.lock`` exclusively for the daemon's lifetime."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".daemon-", suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(msgspec.json.format(msgspec.json.encode(run), indent=2) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
