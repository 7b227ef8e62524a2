"""Markers for tests that drive real tools (tmux, git)."""

from __future__ import annotations

import os
import shutil

import pytest


def requires(tool: str) -> pytest.MarkDecorator:
    """Skip without ``tool`` on a developer machine; in CI (which installs it and sets
    ``REQUIRE_REAL_TOOLS``) a missing tool fails loudly instead."""
    missing = shutil.which(tool) is None and not os.environ.get("REQUIRE_REAL_TOOLS")
    return pytest.mark.skipif(missing, reason=f"{tool} is not installed")
