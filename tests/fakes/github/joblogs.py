"""Job logs as GitHub Actions serves them: a UTF-8 byte-order mark, then one line per output
line, each prefixed with a seven-digit-fraction UTC timestamp and keeping the ANSI colour
codes and ``##[group]``/``##[error]`` markers the runner wrote, so a client's cleaning of a
log tail (timestamps, escapes, control characters) is exercised."""

from __future__ import annotations

from datetime import UTC, datetime

BOM = "\ufeff"
ESC = "\x1b"


def stamp(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 10:07d}Z"


def render_job_log(lines: list[str], *, started_at: float, line_interval: float = 0.01) -> str:
    """``lines`` as a downloaded job log, the n-th stamped ``started_at + n * line_interval``."""
    stamped = [
        f"{stamp(started_at + index * line_interval)} {line}" for index, line in enumerate(lines)
    ]
    return BOM + "\n".join(stamped) + "\n"


def failing_job_lines(
    name: str, *, error: str = "AssertionError: expected 200, got 500"
) -> list[str]:
    """A plausible failed job: setup groups, coloured test output, the runner's error line."""
    return [
        "##[group]Run actions/checkout@v4",
        "with:",
        "  fetch-depth: 1",
        "##[endgroup]",
        f"##[group]Run {name}",
        f"{ESC}[36;1mpytest -q{ESC}[0m",
        "##[endgroup]",
        f"{ESC}[32m.{ESC}[0m{ESC}[32m.{ESC}[0m{ESC}[31mF{ESC}[0m",
        f"{ESC}[31mFAILED{ESC}[0m tests/test_api.py::test_create - {error}",
        f"{ESC}[31m1 failed{ESC}[0m, {ESC}[32m2 passed{ESC}[0m in 0.42s",
        "##[error]Process completed with exit code 1.",
    ]


def passing_job_lines(name: str) -> list[str]:
    return [
        f"##[group]Run {name}",
        f"{ESC}[36;1mpytest -q{ESC}[0m",
        "##[endgroup]",
        f"{ESC}[32m3 passed{ESC}[0m in 0.40s",
    ]
