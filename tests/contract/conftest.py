"""The ``store`` fixture: every contract test runs once over each store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.memory import MemoryStore
from adapters.sqlite.store import open_sqlite_store
from tests.contract.support import ContractStore


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ContractStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    async with open_sqlite_store(tmp_path / "store.db") as sqlite_store:
        yield sqlite_store
