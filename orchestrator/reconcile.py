"""The boot-time reconcile: what the daemon finds of the sessions the last one left.

Run once at start, before the API takes requests: spawns the previous daemon never
finished are ended, every running session is probed once (as the reaper probes), and the
handles on our runtime that belong to no live session are reported, never killed.

A runtime that can read all its sessions at once (``RuntimeSnapshot``; tmux lists every
pane in one call) is read once, within the probe timeout, and that reading answers every
probe: a thousand live sessions are adopted without a thousand tmux processes. A session
the reading does not list is probed on its own, and when the reading fails or times out
every session is, ``concurrency`` at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import trio

from orchestrator.domain.errors import OrchestratorError
from orchestrator.domain.model import ProbeResult, SessionId, SessionRecord, TerminationReason
from orchestrator.ports import Clock, Runtime, RuntimeHandle, RuntimeProbe, RuntimeSpec
from orchestrator.reaper import Reaper, ReaperLifecycle, runtime_handle

__all__ = [
    "ReconcileLifecycle",
    "ReconcileReport",
    "RuntimeInventory",
    "RuntimeSnapshot",
    "reconcile",
]

log = logging.getLogger(__name__)


class ReconcileLifecycle(ReaperLifecycle, Protocol):
    """What the reconcile needs of the lifecycle manager: the reaper's view, and kill."""

    async def on_kill_requested(
        self, session_id: SessionId, reason: TerminationReason = TerminationReason.NONE
    ) -> SessionRecord: ...


class RuntimeInventory(Protocol):
    """Every runtime handle on the daemon's own runtime (our private tmux socket)."""

    async def list_handles(self) -> list[RuntimeHandle]: ...


@runtime_checkable
class RuntimeSnapshot(Protocol):
    """A runtime that can read all its sessions at once (tmux: one call for all panes)."""

    async def probe_all(self) -> Mapping[str, RuntimeProbe]:
        """What ``probe`` would say of each handle id the runtime has; ``ProbeError`` when
        it cannot tell."""
        ...


class _SnapshotRuntime:
    """``runtime``, with probes answered from one reading of all its sessions taken before;
    a handle that reading does not list is probed for real, so "gone" is always the
    runtime's own answer."""

    def __init__(self, runtime: Runtime, readings: Mapping[str, RuntimeProbe]) -> None:
        self.name = runtime.name
        self._runtime = runtime
        self._readings = readings

    async def create(self, spec: RuntimeSpec) -> RuntimeHandle:
        return await self._runtime.create(spec)

    async def probe(self, handle: RuntimeHandle) -> RuntimeProbe:
        reading = self._readings.get(handle.id)
        return reading if reading is not None else await self._runtime.probe(handle)

    async def destroy(self, handle: RuntimeHandle) -> None:
        await self._runtime.destroy(handle)


async def _boot_runtime(runtime: Runtime, probe_timeout: float) -> Runtime:
    """The runtime the reconcile probes: answered from one reading of all its sessions
    when it can take one in time, else (or when that fails) itself."""
    if not isinstance(runtime, RuntimeSnapshot):
        return runtime
    with trio.move_on_after(probe_timeout):
        try:
            readings = await runtime.probe_all()
        except OrchestratorError as error:
            log.warning("reconcile: cannot read all sessions at once (%s); probing each", error)
            return runtime
        except Exception:
            log.exception("reconcile: reading all sessions at once failed; probing each")
            return runtime
        return _SnapshotRuntime(runtime, readings)
    log.warning("reconcile: reading all sessions at once timed out; probing each")
    return runtime


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What the boot reconcile found and did.

    ``adopted``: probed alive and kept. ``dead``: the probe said the agent is gone (runtime
    down, or pane up with the agent exited); reported, so the lifecycle terminates it.
    ``quarantined``: the probe could not tell; reported
    as failed, so the session enters the detecting quarantine. ``interrupted``: running
    sessions with no runtime handle — a spawn the previous daemon never finished — now
    terminated ``error_in_process``. ``unprobeable``: sessions on a runtime this daemon does
    not run, left alone. ``orphans``: handles on our runtime that belong to no live session,
    reported and left running. ``inventory_error`` is set when the handles could not be
    listed."""

    adopted: tuple[SessionId, ...] = ()
    dead: tuple[SessionId, ...] = ()
    quarantined: tuple[SessionId, ...] = ()
    interrupted: tuple[SessionId, ...] = ()
    unprobeable: tuple[SessionId, ...] = ()
    orphans: tuple[RuntimeHandle, ...] = ()
    inventory_error: str = ""


async def reconcile(
    lifecycle: ReconcileLifecycle,
    runtime: Runtime,
    clock: Clock,
    *,
    inventory: RuntimeInventory | None,
    probe_timeout: float,
    concurrency: int,
) -> ReconcileReport:
    """Run once at daemon start, before taking requests.

    Ends spawns the previous daemon never finished, probes every running session once
    (alive: adopted; dead or exited: reported, so the lifecycle terminates it per its
    rules; could not tell: reported failed, so it is quarantined), then lists the
    handles on our runtime that belong to no live session: returned and logged as
    orphans, never killed (a person decides). It probes like the reaper: pass the
    reaper's configured ``probe_timeout`` (seconds) and ``concurrency``; a
    ``RuntimeSnapshot`` is read once instead (module doc)."""
    interrupted: list[SessionId] = []
    for record in await lifecycle.running_sessions():
        if runtime_handle(record) is not None:
            continue
        try:
            await lifecycle.on_kill_requested(record.id, TerminationReason.ERROR_IN_PROCESS)
        except Exception:
            log.exception("reconcile: could not end interrupted spawn %s", record.id)
            continue
        log.warning(
            "reconcile: session %s never finished spawning before the last shutdown; "
            "marked errored (its workspace, if any, is kept)",
            record.id,
        )
        interrupted.append(record.id)

    probed = await _boot_runtime(runtime, probe_timeout)
    reaper = Reaper(
        lifecycle,
        {probed.name: probed},
        clock,
        concurrency=concurrency,
        probe_timeout=probe_timeout,
    )
    sweep = await reaper.sweep()
    adopted = sweep.ids_where(ProbeResult.ALIVE, ProbeResult.ALIVE)
    quarantined = set(sweep.failed)
    dead = [s for s in sweep.observed if s not in quarantined and s not in adopted]

    orphans: list[RuntimeHandle] = []
    inventory_error = ""
    if inventory is not None:
        try:
            handles = await inventory.list_handles()
        except Exception as error:
            log.exception("reconcile: could not list runtime handles")
            inventory_error = str(error) or type(error).__name__
        else:
            live = {
                (h.runtime_name, h.id)
                for h in map(runtime_handle, await lifecycle.running_sessions())
                if h is not None
            }
            orphans = [h for h in handles if (h.runtime_name, h.id) not in live]
            for handle in orphans:
                log.warning(
                    "reconcile: runtime %s %r belongs to no live session; left running",
                    handle.runtime_name,
                    handle.id,
                )
    log.info(
        "reconcile: %d adopted, %d dead, %d quarantined, %d interrupted, %d orphans",
        len(adopted),
        len(dead),
        len(quarantined),
        len(interrupted),
        len(orphans),
    )
    return ReconcileReport(
        adopted=tuple(adopted),
        dead=tuple(dead),
        quarantined=tuple(s for s in sweep.observed if s in quarantined),
        interrupted=tuple(interrupted),
        unprobeable=sweep.skipped,
        orphans=tuple(orphans),
        inventory_error=inventory_error,
    )
