"""The offline side of the CLI, which may not touch SQLite itself:
``python -m adapters.sqlite.offline restore-backup --data-dir D FILE`` (takes the data-dir
lock, so it is refused while the daemon runs) and ``quick-check --data-dir D``.

Kept out of the package's imports so ``-m`` runs it fresh.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from adapters.sqlite.backup import quick_check, restore_backup
from orchestrator.config.schema import DATABASE_FILE_NAME
from orchestrator.domain.errors import InvalidInputError, OrchestratorError
from orchestrator.runfile import DataDirLock, private_dir


def _run(command: str, database: Path, data_dir: Path, file: Path | None) -> list[str]:
    """The lines to print for ``command``; raises ``OrchestratorError`` when refused."""
    if command == "quick-check":
        problem = quick_check(database)
        if problem is not None:
            raise OrchestratorError(f"the database {database}: {problem}")
        return [f"{database}: ok"]
    if file is None:
        raise InvalidInputError("restore-backup needs the backup FILE")
    private_dir(data_dir)
    with DataDirLock(data_dir):
        restored = restore_backup(database, file.absolute())
    lines = [f"kept the previous file as {aside}" for aside in restored.moved_aside]
    return [*lines, f"restored {file} to {restored.database}"]


def main(argv: Sequence[str] | None = None) -> int:
    """``restore-backup --data-dir D FILE`` or ``quick-check --data-dir D``; exit 1 with a
    one-line message on stderr when refused (a running daemon holds the data-dir lock)."""
    parser = argparse.ArgumentParser(prog="python -m adapters.sqlite.offline")
    parser.add_argument("command", choices=["restore-backup", "quick-check"])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("file", type=Path, nargs="?")
    args = parser.parse_intermixed_args(argv)
    try:
        lines = _run(args.command, args.data_dir / DATABASE_FILE_NAME, args.data_dir, args.file)
    except OrchestratorError as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
