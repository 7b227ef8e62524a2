"""``cleanup.afterMerge``: how long a merged session keeps its agent and worktree."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.config import CleanupConfig
from orchestrator.domain.errors import ConfigError
from tests.unit.config.support import load


def test_a_merged_session_is_cleaned_up_five_minutes_after_by_default(
    data_dir: Path, env: dict[str, str]
) -> None:
    assert CleanupConfig().after_merge == timedelta(minutes=5)
    assert load("reaper: {tick: 5s}\n", data_dir, env).cleanup.after_merge == timedelta(minutes=5)
    assert load("cleanup: {}\n", data_dir, env).cleanup.after_merge == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("written", "after"),
    [("30s", timedelta(seconds=30)), ("1h30m", timedelta(hours=1, minutes=30)), ("never", None)],
)
def test_after_merge_takes_a_duration_or_never(
    written: str, after: timedelta | None, data_dir: Path, env: dict[str, str]
) -> None:
    config = load(f"cleanup:\n  afterMerge: {written}\n", data_dir, env)
    assert config.cleanup.after_merge == after


@pytest.mark.parametrize("written", ["soon", "0s", "5"])
def test_a_bad_after_merge_names_the_key(written: str, data_dir: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r'cleanup\.afterMerge: .*, or "never"$'):
        load(f"cleanup:\n  afterMerge: {written}\n", data_dir, env)


def test_an_unknown_cleanup_key_is_refused(data_dir: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="afterMerged"):
        load("cleanup:\n  afterMerged: 5m\n", data_dir, env)
