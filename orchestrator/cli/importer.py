"""``orchestrator import agent-orchestrator``: a thin client of the daemon's importer
(``POST /import/agent-orchestrator``), so the daemon stays the only writer and the change
feed shows every imported row. Exit codes are the CLI's: 0 done, 1 refused (the legacy
daemon runs) or the daemon unreachable, 2 a usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.api import ImportIn, ImportOut
from orchestrator.cli.client import connect
from orchestrator.cli.console import echo_json, note, say
from orchestrator.cli.options import JsonFlag

__all__ = ["app", "describe_import"]

app = typer.Typer(help="Import another orchestrator's projects and sessions.")


def describe_import(report: ImportOut) -> list[str]:
    """The report as lines for stdout (notes go to stderr)."""
    would = "would import" if report.dry_run else "imported"
    p, s = report.projects, report.sessions
    lines = [
        f"{would} {p.imported} project(s), {s.imported} session(s) and {report.prs} PR(s) "
        f"from {report.legacy_root}",
        f"skipped: {p.skipped} known project(s), {s.skipped_existing} known session(s) "
        f"({s.changed_since} changed since), {s.skipped_empty} empty, {s.skipped_corrupt} "
        f"unreadable and {s.skipped_tmp_lock} lock/temporary file(s); {p.conflicts} "
        "project conflict(s)",
        f"live legacy sessions adopted: {s.live}; gone (terminated, restorable): "
        f"{s.runtime_lost}; {s.renamed} renamed",
    ]
    if report.dropped:
        dropped = ", ".join(f"{key} ({n})" for key, n in report.dropped.items())
        lines.append(f"keys not imported (kept in provenance): {dropped}")
    if report.dry_run:
        lines.append("config fragment (not written):")
        lines.append(report.config_fragment.rstrip())
    else:
        lines.append(f"config fragment to review and merge: {report.fragment_path}")
    return lines


@app.command("agent-orchestrator")
def agent_orchestrator(
    *,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from", help="The agent-orchestrator data dir (default ~/.agent-orchestrator)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Only say what would be imported.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import an agent-orchestrator installation, read-only on its files: projects, sessions
    with their state, PR, branch, worktree and agent conversation id; its config becomes an
    orchestrator.yaml fragment to review. Refused while agent-orchestrator runs."""
    body = ImportIn(from_=str(source.expanduser().absolute()) if source else "", dry_run=dry_run)
    with connect() as client:
        report = client.call("POST", "/import/agent-orchestrator", ImportOut, body=body)
    if as_json:
        echo_json(report)
        return
    for line in describe_import(report):
        say(line)
    for line in report.notes:
        note(line)
