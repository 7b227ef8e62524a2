"""The SQLite adapter: schema mirror and timestamp codec (``tables``), the migration runner
(``migrate``), the engines and group-commit writer (``writer``), the compiled statements
(``statements``), write plans (``writes``), row decoders (``rows``), reads (``reader``,
``pages``), storage faults and health (``faults``), the start-up file check
(``integrity``), the retention janitor (``retention``), opening the database
(``database``) and the store (``store``)."""

from adapters.sqlite.migrate import MigrationError, migrate
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from adapters.sqlite.writer import GroupWriter, MergeableOp, make_engine

__all__ = [
    "GroupWriter",
    "MergeableOp",
    "MigrationError",
    "SqliteStore",
    "make_engine",
    "migrate",
    "open_sqlite_store",
]
