"""Options several commands share, and loading the config file they name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.console import fail
from orchestrator.config import Config, load_config
from orchestrator.domain.errors import ConfigError

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The config file (default: $ORCHESTRATOR_CONFIG, else orchestrator.yaml in the data dir).",
        dir_okay=False,
    ),
]
SessionArg = Annotated[str, typer.Argument(help="The session id, e.g. my-app-3.")]


def load_or_exit(config_file: Path | None) -> Config:
    """The config (``config_file``, else the default place); a bad one exits 2."""
    try:
        return load_config(config_file)
    except ConfigError as error:
        fail(str(error), 2)


__all__ = ["ConfigOption", "JsonFlag", "SessionArg", "load_or_exit"]
