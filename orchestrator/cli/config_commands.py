"""``config check`` and ``config example``."""

from __future__ import annotations

import typer

from orchestrator.cli.console import say
from orchestrator.cli.options import ConfigOption, DataDirOption, load_or_exit
from orchestrator.config import example_config


def config_check(*, config_file: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Validate the config file and say where it is."""
    config = load_or_exit(config_file, data_dir)
    if config.config_loaded:
        say(f"{config.config_path}: ok", "green")
    else:
        say(f"no config file at {config.config_path}; every default applies")
    say(f"data dir  {config.data_dir}")
    say(f"address   {config.address}")
    agents = ", ".join(sorted(config.agents)) or "none"
    say(
        f"projects  {len(config.projects)}; custom agents: {agents}; default agent {config.default_agent}"
    )


def config_example() -> None:
    """Print a commented example config file (every section, with the defaults)."""
    typer.echo(example_config(), nl=False)


__all__ = ["config_check", "config_example"]
