"""Writing a config file into a data dir and loading it, for the config tests."""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import Config, load_config


def load(text: str, data_dir: Path, env: dict[str, str]) -> Config:
    """``text`` as ``<data_dir>/orchestrator.yaml``, loaded the way the daemon loads it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "orchestrator.yaml").write_text(text)
    return load_config(env=env)
