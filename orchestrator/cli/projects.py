"""``project add`` and ``project ls``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.api import ProjectIn
from orchestrator.cli.client import connect
from orchestrator.cli.console import echo_json, say
from orchestrator.cli.options import DataDirOption, JsonFlag
from orchestrator.cli.render import print_table, projects_table
from orchestrator.domain.records import Project


def project_add(
    project_id: Annotated[
        str, typer.Argument(metavar="ID", help="Lowercase letters, digits, - and _ (at most 32).")
    ],
    path: Annotated[Path, typer.Argument(help="The git repository.", file_okay=False)],
    *,
    origin: Annotated[str, typer.Option("--origin", help="The repository's origin URL.")] = "",
    name: Annotated[str, typer.Option("--name", help="A display name.")] = "",
    as_json: JsonFlag = False,
    data_dir: DataDirOption = None,
) -> None:
    """Register (or update) a project: a git repository sessions are spawned from."""
    body = ProjectIn(
        id=project_id,
        path=str(path.expanduser().absolute()),
        repo_origin_url=origin,
        display_name=name,
    )
    with connect(data_dir) as client:
        project = client.call("POST", "/projects", Project, body=body)
    if as_json:
        echo_json(project)
    else:
        say(f"registered project {project.id} at {project.path}")


def project_ls(*, as_json: JsonFlag = False, data_dir: DataDirOption = None) -> None:
    """List the registered projects."""
    with connect(data_dir) as client:
        projects = client.call("GET", "/projects", list[Project])
    if as_json:
        echo_json(projects)
        return
    print_table(
        projects_table(projects),
        "no projects registered; add one with `orchestrator project add`",
    )


__all__ = ["project_add", "project_ls"]
