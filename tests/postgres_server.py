"""A real PostgreSQL for tests and benchmarks, private to this run.

``.ci/run`` starts one cluster (Debian's package, ``initdb`` + ``pg_ctl`` on a private Unix
socket) and exports ``PGHOST``; on a developer machine without ``PGHOST`` the first test that
asks starts a cluster of its own under a temporary directory and stops it at exit. Each test
gets a database of its own, dropped afterwards, so tests never see each other's rows.

Without PostgreSQL's binaries the tests skip on a developer machine and fail in CI
(``REQUIRE_REAL_TOOLS``), as the tmux and git tests do.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    """Where a running cluster listens: a Unix-socket directory and a superuser."""

    socket_dir: str
    user: str = SUPERUSER

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` on this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.socket_dir}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string, for psycopg directly."""
        return f"host={self.socket_dir} user={self.user} dbname={database}"


def postgres_bin_dir() -> Path | None:
    """The newest installed server's binaries (Debian keeps them off ``PATH``)."""
    override = os.environ.get("PG_BIN")
    if override:
        return Path(override)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_server_user(argv: list[str]) -> list[str]:
    # initdb refuses to run as root; the Debian package creates the ``postgres`` user.
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *argv]
    return argv


@contextmanager
def local_cluster(*, durable: bool = False) -> Iterator[PostgresServer]:
    """Start a throwaway cluster and stop it afterwards.

    ``durable=False`` (tests) turns fsync off; benchmarks pass ``durable=True`` so commits
    cost what they cost in production (``synchronous_commit`` on, fsync on).
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    data, sock, log = root / "data", root / "sock", root / "log"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, SUPERUSER)
        shutil.chown(sock, SUPERUSER)
    options = f"-c listen_addresses='' -c unix_socket_directories={sock} -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c full_page_writes=off"
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
    initdb += ["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]
    subprocess.run(_as_server_user(initdb), check=True, capture_output=True)
    pg_ctl = str(bin_dir / "pg_ctl")
    start = [pg_ctl, "-D", str(data), "-l", str(log), "-w", "-o", options, "start"]
    subprocess.run(_as_server_user(start), check=True, capture_output=True)
    try:
        yield PostgresServer(socket_dir=str(sock))
    finally:
        stop = [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_server_user(stop), check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


_started: PostgresServer | None = None


def shared_server() -> PostgresServer:
    """The run's server: CI's (``PGHOST``), or one started on first use and stopped at exit."""
    global _started
    if os.environ.get("PGHOST"):
        return PostgresServer(
            socket_dir=os.environ["PGHOST"], user=os.environ.get("PGUSER", SUPERUSER)
        )
    if _started is None:
        cluster = local_cluster()
        _started = cluster.__enter__()
        atexit.register(cluster.__exit__, None, None, None)
    return _started


def postgres_available() -> bool:
    if os.environ.get("PGHOST"):
        return True
    bin_dir = postgres_bin_dir()
    return bin_dir is not None and (bin_dir / "initdb").exists()


def requires_postgres() -> pytest.MarkDecorator:
    """Skip without PostgreSQL on a developer machine; in CI a missing server fails."""
    missing = not postgres_available() and not os.environ.get("REQUIRE_REAL_TOOLS")
    return pytest.mark.skipif(missing, reason="PostgreSQL is not installed")


@contextmanager
def fresh_database(server: PostgresServer) -> Iterator[str]:
    """A new empty database on ``server`` for one test; yields its SQLAlchemy URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield server.url(name)
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database's URL on the run's PostgreSQL (see the module docstring)."""
    if not postgres_available():
        if os.environ.get("REQUIRE_REAL_TOOLS"):
            pytest.fail("PostgreSQL is required in CI but its binaries are not installed")
        pytest.skip("PostgreSQL is not installed")
    with fresh_database(shared_server()) as url:
        yield url
