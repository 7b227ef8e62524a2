"""Backups as the engine sees them: the port that takes one, and the schedule that takes
one every ``backup.every`` and keeps the newest ``backup.keep``.

A failed scheduled backup is logged and retried at the next tick: it must never take the
daemon down (a full disk is the usual cause, and the daemon is needed to notice it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import trio

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackupTaken:
    path: Path
    size_bytes: int
    seconds: float


class Backups(Protocol):
    """Online, checked copies of the database."""

    async def take(self, to: Path | None = None, /) -> BackupTaken:
        """Copy the database to ``to`` (absolute, must not exist) or, without it, to a new
        time-stamped file in the backups directory."""
        ...

    async def rotate(self, keep: int, /) -> list[Path]:
        """Delete all but the newest ``keep`` scheduled backups; return what went."""
        ...

    async def quick_check(self) -> str | None:
        """``quick_check`` of the live database on a connection of its own (a reader: the
        writer goes on); None when it passes, else what is wrong."""
        ...


async def run_scheduled_backups(backups: Backups, *, every: float, keep: int) -> None:
    """Take a backup every ``every`` seconds (the first one ``every`` after start: a start
    is not a reason to copy the database), then rotate, forever."""
    while True:
        await trio.sleep(every)
        try:
            taken = await backups.take()
            removed = await backups.rotate(keep)
        except Exception as error:  # noqa: BLE001 - logged; the next tick tries again
            log.warning("scheduled backup failed: %s", error)
            continue
        log.info(
            "backup: %s (%d bytes, %.2fs); rotated out %d",
            taken.path,
            taken.size_bytes,
            taken.seconds,
            len(removed),
        )


__all__ = ["BackupTaken", "Backups", "run_scheduled_backups"]
