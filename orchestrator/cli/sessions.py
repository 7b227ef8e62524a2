"""Session commands: ``spawn``, ``ls``, ``show``, ``kill``, ``restore`` and ``send``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from orchestrator.api import (
    ZONES_PATH,
    KillIn,
    KillOut,
    RestoreIn,
    SendIn,
    SessionOut,
    SessionZoneOut,
    SpawnIn,
)
from orchestrator.cli.client import connect
from orchestrator.cli.console import echo_json, fail, note, say
from orchestrator.cli.dashboard import print_zones
from orchestrator.cli.options import DataDirOption, JsonFlag, SessionArg, environment
from orchestrator.cli.render import print_table, sessions_table, show_session
from orchestrator.config import load_config
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import SessionStatus


def _session_path(session_id: str, action: str = "") -> str:
    return f"/sessions/{quote(session_id, safe='')}" + (f"/{action}" if action else "")


def _default_agent(data_dir: Path | None) -> str:
    try:
        return load_config(env=environment(data_dir)).default_agent
    except ConfigError as error:
        fail(f"{error} (or pass --agent)", 2)


def _read_text(source: Path) -> str:
    try:
        return sys.stdin.read() if str(source) == "-" else source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(
            f"cannot read {source}: {error}", param_hint="--prompt-file"
        ) from None


def spawn(
    project: Annotated[str, typer.Argument(help="The project id.")],
    *,
    agent: Annotated[
        str | None,
        typer.Option("--agent", "-a", help="The agent (default: defaultAgent from the config)."),
    ] = None,
    issue: Annotated[
        str, typer.Option("--issue", "-i", help="The issue the session works on.")
    ] = "",
    branch: Annotated[
        str, typer.Option("--branch", "-b", help="The branch (default: derived).")
    ] = "",
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="The task for the agent.")
    ] = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option(
            "--prompt-file", help="Read the task from a file ('-': stdin).", dir_okay=False
        ),
    ] = None,
    as_json: JsonFlag = False,
    data_dir: DataDirOption = None,
) -> None:
    """Start a session: a worktree, a pane and an agent working on a task."""
    if prompt is not None and prompt_file is not None:
        raise typer.BadParameter("give --prompt or --prompt-file, not both", param_hint="--prompt")
    text = _read_text(prompt_file) if prompt_file is not None else prompt or ""
    body = SpawnIn(
        project_id=project,
        agent=agent or _default_agent(data_dir),
        issue_id=issue,
        branch=branch,
        prompt=text,
    )
    with connect(data_dir) as client:
        session = client.call("POST", "/sessions", SessionOut, body=body)
    if as_json:
        echo_json(session)
        return
    where = f" on branch {session.metadata.branch}" if session.metadata.branch else ""
    say(f"spawned {session.id} ({session.status.value}){where}")


def list_sessions(
    *,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project's sessions.")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Show terminated sessions too.")
    ] = False,
    status: Annotated[
        list[SessionStatus] | None,
        typer.Option(
            "--status",
            "-s",
            metavar="STATUS",
            help="Only sessions with this status, e.g. working, needs_input, ci_failed, killed "
            "(repeatable; terminated ones included).",
            show_default=False,
        ),
    ] = None,
    by_zone: Annotated[
        bool, typer.Option("--by-zone", help="Group by the dashboard's attention zones.")
    ] = False,
    as_json: JsonFlag = False,
    data_dir: DataDirOption = None,
) -> None:
    """List sessions with their status, branch and PR (terminated ones only with --all)."""
    if by_zone:
        with connect(data_dir) as client:
            zoned = client.call(
                "GET", ZONES_PATH, list[SessionZoneOut], params={"project": project}
            )
        if as_json:
            echo_json(zoned)
        else:
            print_zones(zoned)
        return
    # Naming a status (say `killed`) asks for those sessions, terminated or not.
    hide_terminated = not show_all and not status
    params = {
        "project": project,
        "status": ",".join(sorted(set(status or ()))) or None,
        "includeTerminated": "false" if hide_terminated else None,
    }
    with connect(data_dir) as client:
        sessions = client.call("GET", "/sessions", list[SessionOut], params=params)
    if as_json:
        echo_json(sessions)
        return
    empty = "no sessions"
    if status:
        empty = "no sessions with status " + " or ".join(sorted(set(status)))
    elif hide_terminated:
        empty = "no running sessions (`orchestrator ls --all` shows terminated ones too)"
    print_table(sessions_table(sessions), empty)


def show(
    session_id: SessionArg, *, as_json: JsonFlag = False, data_dir: DataDirOption = None
) -> None:
    """Show one session: its state, where it lives and its PR."""
    with connect(data_dir) as client:
        session = client.call("GET", _session_path(session_id), SessionOut)
    if as_json:
        echo_json(session)
    else:
        show_session(session)


def kill(
    session_id: SessionArg, *, as_json: JsonFlag = False, data_dir: DataDirOption = None
) -> None:
    """End a session: stop its agent and pane, and free its worktree if it is clean."""
    with connect(data_dir) as client:
        result = client.call("POST", _session_path(session_id, "kill"), KillOut, body=KillIn())
    if as_json:
        echo_json(result)
        return
    say(f"killed {result.session.id}")
    if not result.freed:
        note(result.detail or "its worktree was kept")


def restore(
    session_id: SessionArg,
    *,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent", "-a", help="The agent to relaunch, if the session did not record it."
        ),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh", help="Relaunch with the original prompt in a new conversation instead."
        ),
    ] = False,
    as_json: JsonFlag = False,
    data_dir: DataDirOption = None,
) -> None:
    """Bring a terminated session back in its worktree, resuming the agent's conversation."""
    body = RestoreIn(agent=agent, fresh=fresh)
    with connect(data_dir) as client:
        session = client.call("POST", _session_path(session_id, "restore"), SessionOut, body=body)
    if as_json:
        echo_json(session)
    else:
        say(f"restored {session.id} ({session.status.value})")


def send(
    session_id: SessionArg,
    message: Annotated[str, typer.Argument(help="What to tell the agent ('-': read stdin).")],
    *,
    data_dir: DataDirOption = None,
) -> None:
    """Send a message to a session's agent."""
    text = sys.stdin.read() if message == "-" else message
    if not text.strip():
        raise typer.BadParameter("the message is empty", param_hint="MESSAGE")
    with connect(data_dir) as client:
        client.request("POST", _session_path(session_id, "send"), body=SendIn(message=text))
    say(f"sent to {session_id}")


__all__ = ["kill", "list_sessions", "restore", "send", "show", "spawn"]
