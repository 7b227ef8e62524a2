"""The spawn's startup check: an agent that exits right after it starts (a missing binary,
a bad flag) fails its spawn with its exit status and what it printed, instead of a spawn
that succeeds and a page about a dead agent a moment later."""

from __future__ import annotations

import logging
from typing import Final

import trio

from orchestrator.domain.endings import clean_output, last_line
from orchestrator.domain.errors import InvalidInputError, OrchestratorError
from orchestrator.domain.model import ProbeResult
from orchestrator.ports import Runtime, RuntimeHandle, RuntimeProbe

__all__ = ["STARTUP_POLL", "AgentExitedAtStartup", "check_startup"]

log = logging.getLogger(__name__)

STARTUP_POLL: Final = 0.1
"""How often the new pane is looked at while the check runs, in seconds."""


class AgentExitedAtStartup(InvalidInputError):
    """The agent exited (or its pane vanished) during the startup check: how it starts is
    wrong, so the spawn fails with what it said. ``probe`` is the reading that showed it."""

    def __init__(self, probe: RuntimeProbe) -> None:
        self.probe = probe
        status = (
            f"exit status {probe.exit_status}" if probe.exit_status is not None else "no status"
        )
        said = last_line(clean_output(probe.last_output))
        super().__init__(
            f"the agent exited right after it started ({status})" + (f": {said}" if said else "")
        )


async def check_startup(runtime: Runtime, handle: RuntimeHandle, seconds: float) -> None:
    """Watch the new pane for ``seconds``; raise ``AgentExitedAtStartup`` if its agent
    exits meanwhile. A probe that cannot tell ends the check without a verdict: from then
    on the reaper judges the session."""
    if seconds <= 0:
        return
    deadline = trio.current_time() + seconds
    while True:
        try:
            probe = await runtime.probe(handle)
        except OrchestratorError as error:
            log.debug("spawn: startup probe of %s could not tell: %s", handle.id, error)
            return
        if probe.process is ProbeResult.DEAD:
            raise AgentExitedAtStartup(probe)
        left = deadline - trio.current_time()
        if left <= 0:
            return
        await trio.sleep(min(STARTUP_POLL, left))
