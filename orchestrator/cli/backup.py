"""``backup`` and ``restore-backup``.

``backup`` asks the running daemon for an online copy (``POST /backups``): the daemon keeps
writing while it is made. ``restore-backup`` works on the files with the daemon stopped;
the CLI never opens the database itself, so it runs the offline restore
(``python -m adapters.sqlite.offline``) as a child process, which takes the data-dir lock
(a daemon that starts meanwhile is refused) and says where the old database went.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.api import BACKUPS_PATH, BackupIn, BackupOut
from orchestrator.cli.client import connect, look_for_daemon
from orchestrator.cli.console import echo_json, fail, say
from orchestrator.cli.options import DataDirOption, JsonFlag, resolve_data_dir

OFFLINE_MODULE = "adapters.sqlite.offline"
"""The offline side of the CLI: the SQLite work a thin client may not do itself."""

__all__ = ["OFFLINE_MODULE", "backup", "offline", "restore_backup"]


def _size(size_bytes: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size_bytes < 1024:
            return f"{size_bytes} {unit}"
        size_bytes //= 1024
    return f"{size_bytes} GiB"


def backup(
    *,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Write it here (must not exist); default: the backups dir."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Take an online, checked copy of the database while the daemon runs; print its path
    and size."""
    body = BackupIn(to=str(to.expanduser().absolute()) if to is not None else "")
    with connect() as client:
        taken = client.call("POST", BACKUPS_PATH, BackupOut, body=body)
    if as_json:
        echo_json(taken)
        return
    say(f"{taken.path} ({_size(taken.size_bytes)}, {taken.seconds:.2f}s)")


def offline(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the offline module with ``args``, its output captured."""
    return subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
        [sys.executable, "-m", OFFLINE_MODULE, *args],
        capture_output=True,
        text=True,
        check=False,
    )


def restore_backup(
    file: Annotated[Path, typer.Argument(help="The backup to restore.", dir_okay=False)],
    *,
    data_dir: DataDirOption = None,
) -> None:
    """Replace the database with a backup (the daemon must be stopped). The backup is
    checked first; the current database and its -wal/-shm files are kept aside."""
    directory = resolve_data_dir(data_dir)
    presence = look_for_daemon(directory)
    if presence.running or presence.alive:
        run = presence.run
        where = f" (pid {run.pid}, {run.address})" if run is not None else ""
        fail(f"the daemon for {directory} is running{where}: stop it with `orchestrator stop`")
    done = offline(
        "restore-backup", "--data-dir", str(directory), str(file.expanduser().absolute())
    )
    if done.returncode != 0:
        fail(done.stderr.strip().removeprefix("error: ") or "the restore failed")
    for line in done.stdout.splitlines():
        say(line)
