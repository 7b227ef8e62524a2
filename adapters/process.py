"""Running a short-lived command (tmux, git) under a deadline and capturing what it said."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import trio

from orchestrator.domain.errors import TransientError

__all__ = ["ProcessResult", "run_command"]


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """How a command ended: exit status, stdout as text, stderr as stripped text."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


async def run_command(
    argv: Sequence[str],
    *,
    program: str,
    what: str,
    time_limit: float,
    env: Mapping[str, str],
    stdin: bytes = b"",
) -> ProcessResult:
    """Run ``argv`` to completion and return how it ended; a non-zero exit is not raised.

    Not finishing within ``time_limit`` seconds (``what`` names the call in the message)
    or failing to start ``program`` raises ``TransientError``: both may pass on a retry.
    Output is decoded leniently, so a stray byte never turns an answer into an exception.
    """
    try:
        with trio.fail_after(time_limit):
            proc = await trio.run_process(
                argv,
                stdin=stdin,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=env,
            )
    except trio.TooSlowError as exc:
        raise TransientError(f"{what} timed out after {time_limit:g}s") from exc
    except OSError as exc:
        raise TransientError(f"cannot run {program}: {exc}") from exc
    return ProcessResult(
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace").strip(),
    )
