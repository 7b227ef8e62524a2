"""``notifications``: what the daemon told the humans, and marking it read or resolved.

``orchestrator notifications`` lists (``--unread`` only what nobody has read yet);
``notifications read ID…`` and ``notifications resolve ID…`` mark each in turn, stopping
at the first id the daemon does not know (exit 2, the ones before it stay marked);
``notifications read --all`` marks every unread one in one request.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.api import NotificationsMarked
from orchestrator.cli.client import connect
from orchestrator.cli.console import echo_json, say
from orchestrator.cli.options import DataDirOption, JsonFlag, remember_root_data_dir
from orchestrator.cli.render import notifications_table, print_table
from orchestrator.domain.records import Notification

notifications_app = typer.Typer(
    help="What the daemon told the humans; mark it read or resolved.",
    invoke_without_command=True,
)

ProjectOption = Annotated[str | None, typer.Option("--project", "-p", help="Only this project's.")]
IdsArg = Annotated[
    list[int] | None,
    typer.Argument(metavar="ID", help="Notification ids (the ID column).", show_default=False),
]


@notifications_app.callback()
def notifications(
    ctx: typer.Context,
    *,
    project: ProjectOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="At most this many, newest first.", min=1)
    ] = None,
    unread: Annotated[
        bool, typer.Option("--unread", "-u", help="Only those not marked read yet.")
    ] = False,
    as_json: JsonFlag = False,
    data_dir: DataDirOption = None,
) -> None:
    """List what the daemon told the humans (pages, nudges that fell back, merges)."""
    if data_dir is not None:  # given before the subcommand: it applies to it as well
        remember_root_data_dir(data_dir)
    if ctx.invoked_subcommand is not None:
        return
    params = {"project": project, "limit": limit, "unread": "true" if unread else None}
    with connect(data_dir) as client:
        items = client.call("GET", "/notifications", list[Notification], params=params)
    if as_json:
        echo_json(items)
        return
    print_table(
        notifications_table(items), "no unread notifications" if unread else "no notifications"
    )


def _mark(ids: list[int], action: str, done: str, data_dir: DataDirOption) -> None:
    with connect(data_dir) as client:
        for notification_id in ids:
            client.request("POST", f"/notifications/{notification_id}/{action}")
            say(f"notification {notification_id} {done}")


@notifications_app.command("read")
def read(
    ids: IdsArg = None,
    *,
    every: Annotated[bool, typer.Option("--all", help="Every unread notification.")] = False,
    project: ProjectOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Mark notifications read (the first time is kept)."""
    if every == bool(ids):
        raise typer.BadParameter("give notification ids, or --all", param_hint="ID")
    if project is not None and not every:
        raise typer.BadParameter("--project goes with --all", param_hint="--project")
    if ids:
        _mark(ids, "read", "marked read", data_dir)
        return
    with connect(data_dir) as client:
        marked = client.call(
            "POST", "/notifications/read", NotificationsMarked, params={"project": project}
        ).marked
    say(f"marked {marked} notification{'' if marked == 1 else 's'} read")


@notifications_app.command("resolve")
def resolve(ids: IdsArg = None, *, data_dir: DataDirOption = None) -> None:
    """Mark notifications resolved: dealt with (the first time is kept)."""
    if not ids:
        raise typer.BadParameter("give notification ids", param_hint="ID")
    _mark(ids, "resolve", "resolved", data_dir)


__all__ = ["notifications", "notifications_app", "read", "resolve"]
