"""Storage faults: which SQLite errors mean "the storage is not working" rather than "this
write is wrong", and the store's health while such a fault lasts.

A constraint violation is the caller's problem and stays a ``StoreError``. Disk full, I/O
errors, a damaged or read-only file, a file that cannot be opened are the machine's: they
become ``StorageUnavailableError`` (the write was not made; retry later), and the store
reports itself degraded until a commit writes again. The fault is logged once per
episode, when it begins, and once when it ends, never per failed write: a full disk under
load would otherwise write a log line per write attempt.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from typing import Final

from orchestrator.domain.errors import StorageUnavailableError
from orchestrator.domain.health import HealthStatus, StoreHealth

log = logging.getLogger(__name__)

# Primary result codes (the low byte of an extended code such as SQLITE_IOERR_WRITE).
STORAGE_FAULT_CODES: Final = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOLFS,
    }
)


def sqlite_cause(exc: BaseException) -> sqlite3.Error | None:
    """The sqlite3 error behind ``exc``: itself, SQLAlchemy's wrapped ``orig``, or a cause."""
    seen: BaseException | None = exc
    for _ in range(4):  # bounded: cause chains are short, and may loop
        if seen is None:
            return None
        if isinstance(seen, sqlite3.Error):
            return seen
        orig = getattr(seen, "orig", None)
        if isinstance(orig, sqlite3.Error):
            return orig
        seen = seen.__cause__
    return None


def is_storage_fault(exc: BaseException) -> bool:
    error = sqlite_cause(exc)
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in STORAGE_FAULT_CODES


def storage_unavailable(exc: BaseException) -> StorageUnavailableError:
    """The error a caller sees for a storage fault: what SQLite said, and its code name."""
    if isinstance(exc, StorageUnavailableError):
        return exc
    error = sqlite_cause(exc) or exc
    name = getattr(error, "sqlite_errorname", "")
    detail = f"{error} ({name})" if name else str(error)
    return StorageUnavailableError(f"storage unavailable: {detail}")


class StorageHealth:
    """The store's health, shared by its writer and its readers (trio thread only)."""

    def __init__(self) -> None:
        self._fault: str = ""
        self._since: datetime | None = None
        self._failures = 0

    @property
    def degraded(self) -> bool:
        return bool(self._fault)

    def report(self) -> StoreHealth:
        if not self._fault:
            return StoreHealth()
        return StoreHealth(
            status=HealthStatus.DEGRADED,
            reason=self._fault,
            since=self._since,
            failures=self._failures,
        )

    def fault(self, error: StorageUnavailableError) -> None:
        """A read or write failed for a storage reason; the first of an episode is logged."""
        self._failures += 1
        if self._fault:
            return
        self._fault = str(error)
        self._since = datetime.now(UTC)
        log.error("store degraded: %s (further failures are not logged until it recovers)", error)

    def committed(self) -> None:
        """A transaction committed: the storage works again."""
        if not self._fault:
            return
        log.warning(
            "store recovered after %d failed reads or writes since %s: %s",
            self._failures,
            self._since,
            self._fault,
        )
        self._fault = ""
        self._since = None
        self._failures = 0
