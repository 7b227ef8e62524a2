"""The commented example (``orchestrator config example``): shipped as package data, and
loaded through the real loader so it cannot drift from the schema."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import yaml

from orchestrator.config import example_config, load_config
from orchestrator.domain.model import Priority
from tests.unit.config.support import load


def test_the_example_is_the_packaged_file() -> None:
    packaged = files("orchestrator.config").joinpath("example.yaml")
    assert packaged.is_file()
    assert example_config() == packaged.read_text(encoding="utf-8")
    assert example_config().startswith("# orchestrator.yaml: every key is optional")


def test_the_example_config_loads_and_shows_every_section(
    data_dir: Path, env: dict[str, str]
) -> None:
    text = example_config()
    raw = yaml.safe_load(text)
    assert set(raw) == {
        "address",
        "api",
        "database",
        "projects",
        "defaultAgent",
        "agents",
        "reactions",
        "notifiers",
        "routing",
        "reaper",
        "retention",
        "shutdown",
        "scm",
    }
    config = load(text, data_dir, env)
    assert config.config_loaded
    assert "my-agent" in config.agents
    assert config.routing[Priority.URGENT] == ("log", "desktop", "team-slack")
    defaults = load_config(env={"ORCHESTRATOR_DATA_DIR": str(data_dir / "empty")})
    assert (config.reaper, config.retention, config.shutdown) == (
        defaults.reaper,
        defaults.retention,
        defaults.shutdown,
    )


def test_what_the_example_calls_defaults_are_the_defaults(
    data_dir: Path, env: dict[str, str]
) -> None:
    """The example says its values are the defaults unless marked "example"."""
    config = load(example_config(), data_dir, env)
    defaults = load_config(env={"ORCHESTRATOR_DATA_DIR": str(data_dir / "empty")})
    assert (
        config.address,
        config.allow_remote,
        config.synchronous,
        config.default_agent,
        config.notifiers.desktop,
    ) == (
        defaults.address,
        defaults.allow_remote,
        defaults.synchronous,
        defaults.default_agent,
        defaults.notifiers.desktop,
    )
