"""The typer app: every command, registered here in the order ``--help`` lists them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from orchestrator.cli import (
    config_commands,
    daemon_control,
    dashboard,
    events,
    maintenance,
    pr,
    projects,
    sessions,
    token,
)
from orchestrator.cli.client import cli_version
from orchestrator.cli.options import DataDirOption, remember_root_data_dir

# One line per paragraph: the help formatter keeps line breaks as they are.
HELP = (
    "Supervise AI coding-agent sessions, each in its own worktree, pane and PR.\n\n"
    "The data dir is --data-dir (before or after the command), else $ORCHESTRATOR_DATA_DIR, "
    "else ~/.local/share/orchestrator.\n\n"
    "Exit codes: 0 ok, 1 runtime error, 2 usage error."
)

app = typer.Typer(
    name="orchestrator",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would include the bearer token
)
project_app = typer.Typer(help="Register and list projects.", no_args_is_help=True)
config_app = typer.Typer(
    help="Check the configuration file or print an example.", no_args_is_help=True
)
pr_app = typer.Typer(help="Claim or merge a session's pull request.", no_args_is_help=True)
app.add_typer(project_app, name="project")
app.add_typer(config_app, name="config")
app.add_typer(token.app, name="token")
app.add_typer(pr_app, name="pr")

app.command()(daemon_control.start)
app.command()(daemon_control.stop)
app.command()(daemon_control.status)
app.command()(sessions.spawn)
app.command("ls")(sessions.list_sessions)
app.command()(sessions.show)
app.command()(sessions.kill)
app.command()(sessions.restore)
app.command()(sessions.send)
app.command()(maintenance.cleanup)
app.command()(maintenance.rm)
app.command()(events.events)
app.command()(events.notifications)
app.command()(dashboard.dashboard)
project_app.command("add")(projects.project_add)
project_app.command("ls")(projects.project_ls)
pr_app.command("claim")(pr.pr_claim)
pr_app.command("merge")(pr.pr_merge)
config_app.command("check")(config_commands.config_check)
config_app.command("example")(config_commands.config_example)


def _print_version(value: bool) -> None:  # noqa: FBT001 (a typer option callback)
    if value:
        typer.echo(cli_version())
        raise typer.Exit(0)


@app.callback()
def _root(
    *,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    remember_root_data_dir(data_dir)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``orchestrator`` console script (and ``python main.py``, ``python -m orchestrator``)."""
    app(args=None if argv is None else list(argv), prog_name="orchestrator")


__all__ = ["app", "config_app", "main", "pr_app", "project_app"]
