"""``scm status`` and ``scm refresh``: the daemon's GitHub observer, seen through its API.

The CLI never calls GitHub itself: the daemon holds the token and the one rate budget every
GitHub call shares, so asking it costs nothing against the limit."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.api import ScmRefreshOut, ScmStatusOut
from orchestrator.cli.client import connect
from orchestrator.cli.console import echo_json, out, say, shown
from orchestrator.cli.options import JsonFlag, SessionArg
from orchestrator.cli.render import ago, table
from orchestrator.domain.scm import ObserverState

_STATE_STYLES = {ObserverState.RUNNING: "green", ObserverState.DISABLED: "bold yellow"}


def _at(moment: datetime | None) -> str:
    return f"{moment.astimezone():%H:%M:%S} ({ago(moment)})" if moment else "-"


def _until(moment: datetime | None) -> str:
    return f"until {moment.astimezone():%H:%M:%S}" if moment else "-"


def scm_status(*, as_json: JsonFlag = False) -> None:
    """What the GitHub observer is doing, what it watches, and the shared rate budget."""
    with connect() as client:
        status = client.call("GET", "/scm/status", ScmStatusOut)
    if as_json:
        echo_json(status)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    state = shown(status.state.value, _STATE_STYLES.get(status.state, ""))
    if status.reason:
        state += shown(f" ({status.reason})")
    auth = status.auth
    token = f"from {auth.source}" if auth.available else (auth.reason or "none")
    c = status
    rows: list[tuple[str, Text | str]] = [
        ("state", state),
        ("token", token),
        ("watching", f"{c.prs} PRs in {c.repos} repositories"),
        ("last round", _at(c.last_round_at)),
        ("rounds", str(c.rounds)),
        ("guards", f"{c.guards} ({c.not_modified} unchanged, free)"),
        ("details", f"{c.details} PRs fetched, {c.reviews} review reads, {c.log_tails} log tails"),
        ("delivered", f"{c.observations} observations, {c.delivery_failures} failed"),
        ("rate limited", str(c.rate_limited)),
        ("last error", c.last_error or "-"),
    ]
    budget = status.budget
    if budget.blocked_until:
        rows.append(("secondary limit", _until(budget.blocked_until)))
    for key, value in rows:
        grid.add_row(Text(key), value if isinstance(value, Text) else shown(value))
    out().print(grid)
    buckets = table("RESOURCE", "REMAINING", "LIMIT", "RESETS", "BLOCKED")
    for bucket in budget.resources:
        buckets.add_row(
            shown(bucket.resource),
            Text("-" if bucket.remaining is None else str(bucket.remaining)),
            Text("-" if bucket.limit is None else str(bucket.limit)),
            Text(f"{bucket.reset_at.astimezone():%H:%M:%S}" if bucket.reset_at else "-"),
            Text(_until(bucket.blocked_until)),
        )
    out().print(buckets)
    say(f"in flight {budget.in_flight} of {budget.max_concurrency}", "dim")


def scm_refresh(session: SessionArg, *, as_json: JsonFlag = False) -> None:
    """Have the daemon look at a session's PRs on GitHub now (after a short debounce)."""
    path = f"/sessions/{quote(session, safe='')}/scm/refresh"
    with connect() as client:
        answer = client.call("POST", path, ScmRefreshOut)
    if as_json:
        echo_json(answer)
    elif answer.watching:
        say(f"refreshing the PRs of {answer.session_id}")
    else:
        say(f"no PR of {answer.session_id} is known yet; looking for one")


scm_app = typer.Typer(
    help="The daemon's view of GitHub (it polls; the CLI only asks it).", no_args_is_help=True
)
scm_app.command("status")(scm_status)
scm_app.command("refresh")(scm_refresh)

__all__ = ["scm_app", "scm_refresh", "scm_status"]
