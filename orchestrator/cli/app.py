"""The typer app: every command, registered here in the order ``--help`` lists them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from orchestrator.cli import config_commands, daemon_control, events, projects, scm, sessions
from orchestrator.cli.client import cli_version

app = typer.Typer(
    name="orchestrator",
    help="Supervise AI coding-agent sessions, each in its own worktree, pane and PR.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would include the bearer token
)
project_app = typer.Typer(help="Register and list projects.", no_args_is_help=True)
config_app = typer.Typer(
    help="Check the configuration file or print an example.", no_args_is_help=True
)
app.add_typer(project_app, name="project")
app.add_typer(config_app, name="config")
app.add_typer(scm.scm_app, name="scm")

app.command()(daemon_control.start)
app.command()(daemon_control.stop)
app.command()(daemon_control.status)
app.command()(sessions.spawn)
app.command("ls")(sessions.list_sessions)
app.command()(sessions.show)
app.command()(sessions.kill)
app.command()(sessions.restore)
app.command()(sessions.send)
app.command()(events.events)
app.command()(events.notifications)
project_app.command("add")(projects.project_add)
project_app.command("ls")(projects.project_ls)
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
) -> None:
    """Supervise AI coding-agent sessions, each in its own worktree, pane and PR.

    The data dir is $ORCHESTRATOR_DATA_DIR (default ~/.local/share/orchestrator).
    """


def main(argv: Sequence[str] | None = None) -> None:
    """The ``orchestrator`` console script (and ``python main.py``, ``python -m orchestrator``)."""
    app(args=None if argv is None else list(argv), prog_name="orchestrator")


__all__ = ["app", "config_app", "main", "project_app"]
