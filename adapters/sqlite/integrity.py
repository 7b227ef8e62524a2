"""The start-up check of the database file, before anything writes to it.

A damaged file must stop start-up with one line that names the file and says what to do,
not a traceback from the first query that trips on it, and never a fresh empty database
in its place: an emptied database file beside a non-empty write-ahead log (a bad copy or
restore, a truncation) would otherwise start empty, and the log's next checkpoint could
overwrite what a recovery needs.

What is checked, cheapest first: that a non-empty file starts with the SQLite header and
holds whole pages (when no log holds newer pages, also as many as its header counts), and
then ``PRAGMA quick_check`` (every page's structure, no index-to-table cross check: about
a second per few hundred MB).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Final

from adapters.sqlite.faults import is_storage_fault, sqlite_cause
from orchestrator.domain.errors import DatabaseDamagedError, StorageUnavailableError

_HEADER: Final = b"SQLite format 3\x00"
_HEADER_SIZE: Final = 100
_WHAT_TO_DO: Final = (
    "restore it from a backup, or move it and its -wal and -shm files aside to start with "
    "an empty database"
)


def damaged(path: str | os.PathLike[str], what: str) -> DatabaseDamagedError:
    return DatabaseDamagedError(f"the database {os.fspath(path)} {what}: {_WHAT_TO_DO}")


def check_database_file(path: str | os.PathLike[str]) -> None:
    """Raise ``DatabaseDamagedError`` unless ``path`` is absent (with no log beside it),
    empty (likewise), or a database that passes ``quick_check``. Raises
    ``StorageUnavailableError`` when the file cannot be read at all."""
    db = Path(path)
    wal_size = _size(Path(f"{db}-wal"))
    size = _size(db)
    if size is None or size == 0:
        if wal_size:
            state = "is missing" if size is None else "is empty"
            raise damaged(db, f"{state} but its write-ahead log holds {wal_size} bytes")
        return
    try:
        with db.open("rb") as file:
            header = file.read(_HEADER_SIZE)
    except OSError as exc:
        raise StorageUnavailableError(f"cannot read the database {db}: {exc}") from exc
    if len(header) < _HEADER_SIZE or not header.startswith(_HEADER):
        raise damaged(db, "is not a SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or size % page_size:
        raise damaged(db, f"is truncated ({size} bytes is not a whole number of pages)")
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is valid when its change counter matches (offset 24 vs 92);
    # with a non-empty log the file may lawfully lag it until the next checkpoint.
    if not wal_size and header[24:28] == header[92:96] and pages * page_size > size:
        raise damaged(db, f"is truncated ({size // page_size} of its {pages} pages)")
    _quick_check(db)


def _quick_check(db: Path) -> None:
    try:
        connection = sqlite3.connect(db, isolation_level=None)
    except sqlite3.Error as exc:
        raise _unusable(db, exc) from exc
    try:
        rows = connection.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        raise _unusable(db, exc) from exc
    finally:
        connection.close()
    if rows != [("ok",)]:
        first = str(rows[0][0]).replace("*** in database main ***", "").strip()
        problems = f"{len(rows)} problems, the first" if len(rows) > 1 else "the problem"
        raise damaged(db, f"fails its integrity check ({problems}: {first.splitlines()[0]})")


def _unusable(db: Path, exc: sqlite3.Error) -> DatabaseDamagedError | StorageUnavailableError:
    code = exc.sqlite_errorcode & 0xFF
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return damaged(db, f"is damaged ({exc})")
    return StorageUnavailableError(f"cannot open the database {db}: {exc}")


def open_failure(
    path: str | os.PathLike[str], exc: BaseException
) -> DatabaseDamagedError | StorageUnavailableError | None:
    """The one-line error for ``exc`` raised while opening or migrating the database at
    ``path``, or None when it is not a storage fault (a bug, a migration refusal)."""
    error = sqlite_cause(exc)
    if error is None or not is_storage_fault(error):
        return None
    return _unusable(Path(path), error)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None
