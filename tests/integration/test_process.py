"""The shared command runner behind tmux and git: results, deadlines, start failures."""

from __future__ import annotations

import os
import sys

import pytest

from adapters.process import ProcessResult, run_command
from orchestrator.domain.errors import TransientError

ENV = dict(os.environ)


async def python(code: str, *, time_limit: float = 10.0, stdin: bytes = b"") -> ProcessResult:
    return await run_command(
        [sys.executable, "-c", code],
        program="python",
        what="python -c",
        time_limit=time_limit,
        env=ENV,
        stdin=stdin,
    )


async def test_a_command_that_fails_is_returned_not_raised() -> None:
    code = (
        "import sys; sys.stdout.write('out\\n'); sys.stderr.write('  bad thing \\n'); sys.exit(3)"
    )
    result = await python(code)
    assert result == ProcessResult(3, "out\n", "bad thing")
    assert not result.ok


async def test_stdin_is_fed_and_undecodable_output_is_replaced() -> None:
    result = await python(
        "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read() + b'\\xff')", stdin=b"hi"
    )
    assert result.ok
    assert result.stdout == "hi\ufffd"


async def test_a_command_past_its_deadline_is_a_transient_error() -> None:
    with pytest.raises(TransientError, match=r"^python -c timed out after 0.2s$"):
        await python("import time; time.sleep(30)", time_limit=0.2)


async def test_a_program_that_cannot_start_is_a_transient_error() -> None:
    with pytest.raises(TransientError, match=r"^cannot run nothing-here: "):
        await run_command(
            ["/nonexistent/nothing-here"], program="nothing-here", what="x", time_limit=5, env=ENV
        )
