"""The commented example configuration (``orchestrator config example`` prints it).

It is the package data file ``example.yaml``, so it reads like the file a user writes; a
test loads it through the real loader, so it cannot drift from the schema.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

__all__ = ["EXAMPLE_FILE_NAME", "example_config"]

EXAMPLE_FILE_NAME: Final = "example.yaml"


def example_config() -> str:
    """A commented configuration file showing every section (it loads cleanly)."""
    return files(__package__).joinpath(EXAMPLE_FILE_NAME).read_text(encoding="utf-8")
