"""The store's reads: each in its own short deferred transaction on the read connection,
inline on the trio thread (a read costs less than a hop to a worker thread). A storage
fault (``faults.py``) comes out as ``StorageUnavailableError`` and degrades the store's
health; any other error as itself."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy.exc
import trio
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.base import Executable

from adapters.sqlite.faults import StorageHealth, is_storage_fault, storage_unavailable
from orchestrator.domain.errors import StoreError

_T = TypeVar("_T")


class Reader:
    def __init__(self, connection: Connection, health: StorageHealth) -> None:
        self._conn = connection
        self._health = health

    async def run(self, read: Callable[[Connection], _T]) -> _T:
        """``read(connection)`` in one read transaction: its reads share a snapshot."""
        await trio.lowlevel.checkpoint()
        conn = self._conn
        try:
            with conn.begin():
                return read(conn)
        except (sqlite3.Error, sqlalchemy.exc.DBAPIError) as exc:
            if not is_storage_fault(exc):
                raise
            error = storage_unavailable(exc)
            self._health.fault(error)
            raise error from exc

    async def rows(self, stmt: Executable, params: dict[str, Any] | None = None) -> list[Row[Any]]:
        return await self.run(lambda conn: list(conn.execute(stmt, params or {}).all()))

    async def driver_rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """``sql`` on the driver connection: no statement building, for the hottest reads."""
        return await self.run(lambda conn: _driver_rows(conn, sql, params))


def _driver_rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    driver = conn.connection.dbapi_connection
    if driver is None:  # only after the connection was invalidated
        raise StoreError("the read connection is closed")
    cursor = driver.cursor()
    try:
        rows: list[tuple[Any, ...]] = cursor.execute(sql, params).fetchall()
    finally:
        cursor.close()
    return rows
