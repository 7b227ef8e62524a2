"""Command-line entry point (a thin HTTP client once the daemon lands)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Supervise AI coding-agent sessions, each in its own worktree, pane and PR.",
    )
    parser.parse_args(argv)
