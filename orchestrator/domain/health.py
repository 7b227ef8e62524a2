"""Whether the store can read and write right now, as ``/healthz`` reports it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from orchestrator.domain.model import Model


class HealthStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"


class StoreHealth(Model, frozen=True, kw_only=True):
    """``degraded`` from a storage fault (disk full, I/O error, damaged file) until a commit
    writes again; ``reason`` is the fault, ``since`` when the episode began and
    ``failures`` how many reads and writes it has failed so far."""

    status: HealthStatus = HealthStatus.OK
    reason: str = ""
    since: datetime | None = None
    failures: int = 0

    @property
    def ok(self) -> bool:
        return self.status is HealthStatus.OK
