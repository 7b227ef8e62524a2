"""``token rotate``: replace the daemon's hook key, which every session hook token is
derived from.

Rotation goes through the running daemon: it holds the key in memory (a key changed behind
its back would not take effect until the next start, and tokens it hands out meanwhile
would die then), and only it can tell which live sessions hold tokens under the old key
(the CLI never opens the database). With no daemon running there is nothing to rotate
against: start one first.
"""

from __future__ import annotations

import typer

from orchestrator.api import HookKeyRotated
from orchestrator.cli.client import connect
from orchestrator.cli.console import echo_json, note, say
from orchestrator.cli.options import JsonFlag

app = typer.Typer(help="Session hook tokens.", no_args_is_help=True)


@app.command()
def rotate(*, as_json: JsonFlag = False) -> None:
    """Replace the hook key: every hook token issued so far stops working."""
    with connect() as client:
        rotated = client.call("POST", "/tokens/rotate", HookKeyRotated)
    if as_json:
        echo_json(rotated)
        return
    say("rotated the hook key: every session hook token issued before no longer works")
    stale = rotated.sessions_to_restart
    if stale:
        note(
            f"{len(stale)} live session(s) hold a token under the old key; restart each "
            f"(`orchestrator kill`, then `orchestrator restore`) to give it a new one: "
            + ", ".join(stale)
        )


__all__ = ["app", "rotate"]
