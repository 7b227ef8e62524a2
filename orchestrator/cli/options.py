"""Options several commands share, and what they resolve to.

``--data-dir`` is accepted by every command, before it (``orchestrator --data-dir D ls``)
or after it (``orchestrator ls --data-dir D``); the command's own wins. Either is passed to
the config loader as ``$ORCHESTRATOR_DATA_DIR``, so the data dir, the default config file
and what ``start`` hands the daemon all follow it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.console import fail
from orchestrator.config import ENV_ADDR, ENV_DATA_DIR, Config, data_dir_from_env, load_config
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
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        help="The data dir (default: $ORCHESTRATOR_DATA_DIR or ~/.local/share/orchestrator).",
        file_okay=False,
        show_default=False,
    ),
]
SessionArg = Annotated[str, typer.Argument(help="The session id, e.g. my-app-3.")]

_root: dict[str, Path | None] = {"data_dir": None}
"""``orchestrator --data-dir D …``'s value, set by the root callback on every invocation
(before any command runs), so one invocation never sees another's."""


def remember_root_data_dir(data_dir: Path | None) -> None:
    _root["data_dir"] = data_dir


def environment(data_dir: Path | None = None, address: str | None = None) -> Mapping[str, str]:
    """The process environment with the command line's data dir and address over it."""
    chosen = data_dir or _root["data_dir"]
    env = dict(os.environ)
    if chosen is not None:
        env[ENV_DATA_DIR] = str(Path(chosen).expanduser().absolute())
    if address is not None:
        env[ENV_ADDR] = address
    return env


def resolve_data_dir(data_dir: Path | None) -> Path:
    """The data dir a command works on: ``--data-dir``, else the environment's."""
    return data_dir_from_env(environment(data_dir))


def load_or_exit(
    config_file: Path | None, data_dir: Path | None = None, address: str | None = None
) -> Config:
    """The config (``config_file``, else the default place); a bad one exits 2."""
    try:
        return load_config(config_file, env=environment(data_dir, address))
    except ConfigError as error:
        fail(str(error), 2)


__all__ = [
    "ConfigOption",
    "DataDirOption",
    "JsonFlag",
    "SessionArg",
    "environment",
    "load_or_exit",
    "remember_root_data_dir",
    "resolve_data_dir",
]
