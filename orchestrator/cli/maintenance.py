"""Tidying up after sessions: ``cleanup`` and ``rm``.

``cleanup`` frees the panes and worktrees terminated sessions left behind where no work is
lost, and prunes git's records of worktrees whose directories are gone; it lists what it
kept and why. ``rm`` removes a terminated session for good (its history stays in the change
log). Both are thin clients of the daemon's API (``POST /cleanup``, ``DELETE
/sessions/{id}``); exit codes are the CLI's: 0 done (things kept included), 1 refused or
the daemon unreachable, 2 a usage error.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from orchestrator.api import CleanupIn, CleanupOut, ReclaimedOut
from orchestrator.cli.client import connect
from orchestrator.cli.console import echo_json, note, say
from orchestrator.cli.options import JsonFlag, SessionArg

__all__ = ["cleanup", "describe_cleanup", "rm"]


def _freed(item: ReclaimedOut) -> str:
    parts = [f"pane {item.pane}"] if item.pane else []
    if item.workspace:
        parts.append(f"worktree {item.workspace}")
    return ", ".join(parts)


def describe_cleanup(report: CleanupOut) -> tuple[list[str], list[str]]:
    """The report as lines: what was (or would be) removed and pruned, for stdout; what was
    kept and why, for stderr."""
    would = "would " if report.dry_run else ""
    done: list[str] = []
    kept: list[str] = []
    for item in report.sessions:
        freed = _freed(item)
        if freed:
            done.append(f"{would}remove {item.session_id}: {freed}")
        if item.kept or item.reason:
            what = f"worktree {item.kept}" if item.kept else "nothing freed"
            kept.append(f"{would}keep {item.session_id}: {what}: {item.reason}")
    for pruned in report.pruned:
        done.extend(f"{would}prune {pruned.project_id}: {entry}" for entry in pruned.entries)
        if pruned.error:
            kept.append(f"could not prune {pruned.project_id}: {pruned.error}")
    return done, kept


def cleanup(
    *,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Only say what would be removed.")
    ] = False,
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Only this terminated session.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove the panes and worktrees of terminated sessions that hold no uncommitted work,
    and prune stale git worktree records; list what was kept and why."""
    body = CleanupIn(dry_run=dry_run, session_id=session)
    with connect() as client:
        report = client.call("POST", "/cleanup", CleanupOut, body=body)
    if as_json:
        echo_json(report)
        return
    done, kept = describe_cleanup(report)
    for line in done:
        say(line)
    for line in kept:
        note(line)
    if not done and not kept:
        say("nothing to clean up")


def rm(session_id: SessionArg, *, as_json: JsonFlag = False) -> None:
    """Remove a terminated session (its pane and worktree too, when they hold no work);
    its history stays in the change log."""
    with connect() as client:
        freed = client.call("DELETE", f"/sessions/{quote(session_id, safe='')}", ReclaimedOut)
    if as_json:
        echo_json(freed)
        return
    also = _freed(freed)
    say(f"removed {freed.session_id}" + (f" (and its {also})" if also else ""))
