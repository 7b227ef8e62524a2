"""The operations sections of the config file: ``backup`` and ``metrics``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.domain.errors import ConfigError
from tests.unit.config.support import load


def test_backup_and_metrics_defaults(data_dir: Path, env: dict[str, str]) -> None:
    config = load_config(env=env)
    assert (config.backup.every, config.backup.keep) == (timedelta(hours=6), 10)
    assert config.backups_dir == data_dir / "backups"
    assert config.metrics.address == ""


def test_backup_and_metrics_as_set(data_dir: Path, env: dict[str, str]) -> None:
    text = "backup: {every: 30m, keep: 3, dir: saved}\nmetrics: {address: '127.0.0.1:9464'}\n"
    config = load(text, data_dir, env)
    assert (config.backup.every, config.backup.keep) == (timedelta(minutes=30), 3)
    assert config.backups_dir == config.config_path.parent / "saved"
    assert config.metrics.address == "127.0.0.1:9464"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("backup: {every: 0s}", "backup.every"),
        ("backup: {every: soon}", "backup.every"),
        ("backup: {keep: 0}", "keep"),
        ("backup: {often: 1h}", "often"),
        ("metrics: {address: '0.0.0.0:9464'}", "not a loopback address"),
        ("metrics: {address: 'nope'}", "metrics.address"),
    ],
)
def test_bad_operations_settings_are_refused(
    data_dir: Path, env: dict[str, str], text: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load(text, data_dir, env)
