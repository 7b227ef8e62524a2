"""The ``orchestrator`` command: a thin HTTP client of the daemon, plus ``start``/``stop``.

It never opens the database (nor imports SQLAlchemy or the engine): it finds the daemon
through the run-file ``<data dir>/daemon.json`` (pid, address, bearer token) and talks to
``/api/v1`` with httpx, in the wire types of ``orchestrator.api``. The data dir is
``--data-dir`` (on every command), else ``$ORCHESTRATOR_DATA_DIR`` (see
``orchestrator.config``).

Exit codes: 0 ok; 1 a runtime error (no daemon or a stale run-file, the daemon refused or
failed); 2 a usage error (bad arguments, a bad config file, or the daemon answering that
the input was bad or names an unknown project, session or agent: 400, 404).
Listings print rich tables, or JSON with ``--json`` (``events --json`` prints one event per
line).

Modules: ``app`` (the typer app and its command table), ``client`` (finding and calling the
daemon), ``daemon_control`` (start, stop, status), ``sessions``, ``projects``, ``pr`` (claim,
merge), ``events``
(the change stream and notifications) and ``config_commands`` (the commands), ``render``
(tables, ages, the session detail), ``narrate`` (events in words), ``console`` (output and
exiting), ``options`` (shared options and the data dir).
"""

from __future__ import annotations

from orchestrator.cli.app import app, main

__all__ = ["app", "main"]
