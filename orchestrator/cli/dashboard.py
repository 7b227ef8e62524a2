"""``orchestrator dashboard``: a one-time login link to the web dashboard; and the board's
zones as tables, for ``orchestrator ls --by-zone``."""

from __future__ import annotations

import webbrowser
from collections.abc import Iterable
from typing import Annotated

import typer
from rich.text import Text

from orchestrator.api import DASHBOARD_LOGIN_PATH, LoginLinkOut, SessionZoneOut
from orchestrator.cli.client import base_url, connect
from orchestrator.cli.console import note, out, say, shown
from orchestrator.cli.render import ago, table
from orchestrator.domain.zones import BOARD_ZONES, ZONE_LABELS, Zone

_ANY_ADDRESS = ("0.0.0.0:", "[::]:")


def browser_address(address: str) -> str:
    """Where a browser on this machine reaches the daemon: a daemon bound to every
    interface is still at 127.0.0.1, the name its Host check accepts."""
    for prefix in _ANY_ADDRESS:
        if address.startswith(prefix):
            return "127.0.0.1:" + address.removeprefix(prefix)
    return address


def dashboard(
    *,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Also open the link in the default browser.")
    ] = False,
) -> None:
    """Print a login link to the web dashboard: it works once, within a minute."""
    with connect() as client:
        link = client.call("POST", DASHBOARD_LOGIN_PATH, LoginLinkOut)
        url = base_url(browser_address(client.run.address)) + link.path
    say(url)
    if open_browser and not webbrowser.open(url):
        note("no browser could be started here: open the link above yourself")


def print_zones(sessions: Iterable[SessionZoneOut]) -> None:
    """One table per zone, in the board's order, Done last; empty zones are left out."""
    by_zone: dict[Zone, list[SessionZoneOut]] = {zone: [] for zone in Zone}
    for session in sessions:
        by_zone[session.zone].append(session)
    printed = 0
    for zone in (*BOARD_ZONES, Zone.DONE):
        members = by_zone[zone]
        if not members:
            continue
        printed += 1
        out().print(Text(f"{ZONE_LABELS[zone]} ({len(members)})", style="bold"))
        rows = table("ID", "STATUS", "TITLE", "BRANCH", "PR", "UPDATED")
        for s in members:
            rows.add_row(
                shown(s.id),
                shown(s.status.value),
                shown(s.title),
                shown(s.branch or "-"),
                Text(f"#{s.pr_number}" if s.pr_url else "-"),
                Text(ago(s.updated_at)),
            )
        out().print(rows)
    if not printed:
        say("no sessions", "dim")


__all__ = ["browser_address", "dashboard", "print_zones"]
