"""The reaper: probes every running session's runtime on a tick and reports each reading to
the lifecycle manager, which decides what it means (docs/behaviour.md, "Probes and the
detecting quarantine").

On purpose:

- Probes run **concurrently**, at most ``concurrency`` at a time, each under its own
  ``probe_timeout``: one hung tmux call delays nobody but its own session.
- A probe that raises (``ProbeError``, any ``TransientError``, or anything unexpected) or
  that times out is reported as ``failed``/``failed`` — never as dead. The engine's detecting
  quarantine turns repeated failures into one ``stuck`` page, never a termination
  (docs/design.md, D-9). Only a reading the runtime gives for certain (the pane or session
  gone, the agent exited) ends a session, with what the pane showed of its exit (D-12).
- A session without runtime-handle metadata, or whose runtime is not registered, is logged
  **once** (not on every tick) and never reported.
- There is no escalation heartbeat: the lifecycle manager's timer task owns deadlines.
- The tick, the probe timeout and the concurrency have no defaults here: they come from the
  configuration (``orchestrator.config.ReaperConfig``), so the boot reconcile and the loop
  probe the same way.

Each probe's reading is stamped with the clock when the probe answered, so a slow answer
describes the moment it was true.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import trio

from orchestrator.domain.errors import InvalidInputError, OrchestratorError, TransientError
from orchestrator.domain.model import (
    ProbeResult,
    RuntimeFacts,
    SessionId,
    SessionRecord,
    SessionState,
)
from orchestrator.ports import Clock, Runtime, RuntimeHandle

__all__ = ["Reaper", "ReaperLifecycle", "SweepReport", "runtime_handle"]

log = logging.getLogger(__name__)


class ReaperLifecycle(Protocol):
    """What the reaper needs of the lifecycle manager."""

    async def running_sessions(self) -> list[SessionRecord]:
        """Non-terminal sessions, ordered by (project, num)."""
        ...

    async def apply_runtime_observation(self, session_id: SessionId, facts: RuntimeFacts) -> None:
        """Report one reading; returns once any resulting transition is durable."""
        ...


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep saw.

    ``observed`` holds every reading reported to the lifecycle (including failures);
    ``failed`` the sessions whose probe raised or timed out (``timed_out`` the latter);
    ``skipped`` every session that could not be probed this sweep, and ``newly_skipped``
    the ones logged for the first time; ``apply_errors`` the readings the lifecycle refused.
    ``duration`` is in seconds of trio's clock.
    """

    sessions: int
    observed: Mapping[SessionId, RuntimeFacts]
    failed: tuple[SessionId, ...] = ()
    timed_out: tuple[SessionId, ...] = ()
    skipped: tuple[SessionId, ...] = ()
    newly_skipped: tuple[SessionId, ...] = ()
    apply_errors: Mapping[SessionId, str] = field(default_factory=dict)
    duration: float = 0.0

    def ids_where(self, runtime: ProbeResult, process: ProbeResult) -> list[SessionId]:
        """Sessions whose reading was exactly (``runtime``, ``process``), in the order the
        readings arrived."""
        return [
            sid
            for sid, facts in self.observed.items()
            if facts.runtime is runtime and facts.process is process
        ]


@dataclass(slots=True)
class _Tally:
    observed: dict[SessionId, RuntimeFacts] = field(default_factory=dict)
    failed: list[SessionId] = field(default_factory=list)
    timed_out: list[SessionId] = field(default_factory=list)
    apply_errors: dict[SessionId, str] = field(default_factory=dict)


def runtime_handle(record: SessionRecord) -> RuntimeHandle | None:
    """The session's runtime handle, or None when its metadata does not name one fully."""
    metadata = record.metadata
    if not metadata.runtime_handle_id or not metadata.runtime_name:
        return None
    return RuntimeHandle(id=metadata.runtime_handle_id, runtime_name=metadata.runtime_name)


class Reaper:
    """Probes running sessions, at most ``concurrency`` at once and each for at most
    ``probe_timeout`` seconds: once per ``sweep``, or every tick with ``run``."""

    def __init__(
        self,
        lifecycle: ReaperLifecycle,
        runtimes: Mapping[str, Runtime],
        clock: Clock,
        *,
        concurrency: int,
        probe_timeout: float,
    ) -> None:
        if concurrency < 1:
            raise InvalidInputError(f"reaper concurrency must be at least 1, not {concurrency}")
        if probe_timeout <= 0:
            raise InvalidInputError(f"reaper probe timeout must be positive, not {probe_timeout}")
        self._lifecycle = lifecycle
        self._runtimes = dict(runtimes)
        self._clock = clock
        self._concurrency = concurrency
        self._probe_timeout = probe_timeout
        self._reported_skips: set[SessionId] = set()
        self.sweeps = 0
        self.last_report: SweepReport | None = None

    async def run(
        self, *, tick: float, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Sweep every ``tick`` seconds until cancelled; the first sweep comes after one tick.
        A failing sweep is logged and the loop carries on. Start with
        ``await nursery.start(partial(reaper.run, tick=...))``."""
        if tick <= 0:
            raise InvalidInputError(f"reaper tick must be positive, not {tick}")
        task_status.started()
        next_at = trio.current_time() + tick
        while True:
            await trio.sleep_until(next_at)
            try:
                await self.sweep()
            except Exception:
                log.exception("reaper: sweep failed; trying again next tick")
            # A sweep longer than a tick is followed at once by the next, never by a burst.
            next_at = max(next_at + tick, trio.current_time())

    async def sweep(self) -> SweepReport:
        """Probe every running session once, concurrently, and report each reading.

        Raises only if the running sessions cannot be listed."""
        started = trio.current_time()
        sessions = await self._lifecycle.running_sessions()
        targets: list[tuple[SessionId, Runtime, RuntimeHandle]] = []
        skipped: list[SessionId] = []
        newly_skipped: list[SessionId] = []
        for record in sessions:
            handle = runtime_handle(record)
            runtime = self._runtimes.get(handle.runtime_name) if handle is not None else None
            if handle is not None and runtime is not None:
                targets.append((record.id, runtime, handle))
                continue
            skipped.append(record.id)
            if record.id not in self._reported_skips:
                newly_skipped.append(record.id)
                self._log_skip(record, handle)
        # Forget sessions that got a handle or ended, so memory follows the running set.
        self._reported_skips = set(skipped)

        tally = _Tally()
        if targets:
            pending = iter(targets)
            async with trio.open_nursery() as nursery:
                # ``concurrency`` workers share one iterator: the bound a CapacityLimiter
                # gives, without a task per session (~3x faster at 10,000 sessions).
                for _ in range(min(self._concurrency, len(targets))):
                    nursery.start_soon(self._worker, pending, tally)

        report = SweepReport(
            sessions=len(sessions),
            observed=tally.observed,
            failed=tuple(tally.failed),
            timed_out=tuple(tally.timed_out),
            skipped=tuple(skipped),
            newly_skipped=tuple(newly_skipped),
            apply_errors=tally.apply_errors,
            duration=trio.current_time() - started,
        )
        self.sweeps += 1
        self.last_report = report
        if report.failed or report.apply_errors:
            log.info(
                "reaper: %d sessions, %d probe failures (%d timed out), %d not applied",
                report.sessions,
                len(report.failed),
                len(report.timed_out),
                len(report.apply_errors),
            )
        return report

    def _log_skip(self, record: SessionRecord, handle: RuntimeHandle | None) -> None:
        if handle is None:
            # A session between its row and its spawn completing has no handle yet.
            level = (
                logging.INFO
                if record.lifecycle.state is SessionState.NOT_STARTED
                else logging.WARNING
            )
            log.log(
                level,
                "reaper: session %s has no runtime handle metadata; not probed",
                record.id,
            )
        else:
            log.warning(
                "reaper: session %s runs on runtime %r, which is not registered; not probed",
                record.id,
                handle.runtime_name,
            )

    async def _worker(
        self,
        pending: Iterator[tuple[SessionId, Runtime, RuntimeHandle]],
        tally: _Tally,
    ) -> None:
        for session_id, runtime, handle in pending:
            facts = await self._probe(session_id, runtime, handle, tally)
            tally.observed[session_id] = facts
            try:
                await self._lifecycle.apply_runtime_observation(session_id, facts)
            except OrchestratorError as error:
                log.warning("reaper: reading for %s not applied: %s", session_id, error)
                tally.apply_errors[session_id] = str(error)
            except Exception as error:
                log.exception("reaper: reading for %s not applied", session_id)
                tally.apply_errors[session_id] = repr(error)

    async def _probe(
        self, session_id: SessionId, runtime: Runtime, handle: RuntimeHandle, tally: _Tally
    ) -> RuntimeFacts:
        started = self._clock.now()  # the engine drops it if the runtime restarts meanwhile
        with trio.move_on_after(self._probe_timeout):
            try:
                probe = await runtime.probe(handle)
            except TransientError as error:  # ProbeError included: "could not tell"
                log.debug("reaper: probe of %s failed: %s", session_id, error)
            except Exception:
                log.exception("reaper: probe of %s raised; reported as failed", session_id)
            else:
                return RuntimeFacts(
                    observed_at=self._clock.now(),
                    runtime=probe.runtime,
                    process=probe.process,
                    probe_started_at=started,
                    exit_status=probe.exit_status,
                    last_output=probe.last_output,
                )
            tally.failed.append(session_id)
            return self._failed(started)
        log.debug("reaper: probe of %s timed out after %ss", session_id, self._probe_timeout)
        tally.failed.append(session_id)
        tally.timed_out.append(session_id)
        return self._failed(started)

    def _failed(self, started: datetime) -> RuntimeFacts:
        return RuntimeFacts(
            observed_at=self._clock.now(),
            runtime=ProbeResult.FAILED,
            process=ProbeResult.FAILED,
            probe_started_at=started,
        )
