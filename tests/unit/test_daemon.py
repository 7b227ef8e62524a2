"""The composition root hands the configured reaper settings to the engine: the boot
reconcile and the reaper probe with the configured timeout and concurrency, not with
numbers of their own."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
import trio
import trio.testing

from adapters.memory import MemoryStore, MemoryWorkspace, Script, ScriptedRuntime, StubAgent
from orchestrator import daemon
from orchestrator.config import Config, load_config
from orchestrator.daemon import build_reaper, reconcile_at_boot
from orchestrator.domain.model import SessionRecord
from orchestrator.ports import RuntimeHandle, RuntimeProbe
from orchestrator.sessions import SessionManager
from tests.engine_harness import Engine, running_engine

SESSIONS = 12


class RecordingRuntime(ScriptedRuntime):
    """Answers every probe after a second, noting the deadline it was probed under and how
    many probes were in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: set[float] = set()
        self.in_flight = 0
        self.peak = 0

    async def probe(self, handle: RuntimeHandle) -> RuntimeProbe:
        self.timeouts.add(trio.current_effective_deadline() - trio.current_time())
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await trio.sleep(1.0)
            return await super().probe(handle)
        finally:
            self.in_flight -= 1


def configured(tmp_path: Path, text: str) -> Config:
    file = tmp_path / "orchestrator.yaml"
    file.write_text(text)
    return load_config(file, env={"ORCHESTRATOR_DATA_DIR": str(tmp_path / "data")})


def no_hooks(record: SessionRecord) -> Mapping[str, str]:
    return {}


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    async with running_engine(MemoryStore()) as running:
        yield running


async def spawned(engine: Engine, runtime: RecordingRuntime) -> None:
    for _ in range(SESSIONS):
        record = await engine.spawn()  # its handle is on the runtime called "scripted"
        runtime.script[record.metadata.runtime_handle_id] = Script.ALIVE


def session_manager(engine: Engine, runtime: RecordingRuntime) -> SessionManager:
    return SessionManager(
        engine.store,
        engine.manager,
        runtime=runtime,
        workspace=MemoryWorkspace(),
        agents=StubAgent,
        messenger=engine.messenger,
        clock=engine.clock,
        hook_environment=no_hooks,
    )


@pytest.mark.parametrize(
    ("text", "probe_timeout", "concurrency"),
    [("reaper: {probeTimeout: 2s, concurrency: 3}\n", 2.0, 3), ("", 5.0, SESSIONS)],
)
async def test_the_boot_reconcile_probes_as_configured(
    engine: Engine,
    autojump_clock: trio.testing.MockClock,
    tmp_path: Path,
    text: str,
    probe_timeout: float,
    concurrency: int,
) -> None:
    runtime = RecordingRuntime()
    await spawned(engine, runtime)
    config = configured(tmp_path, text)

    report = await reconcile_at_boot(config, session_manager(engine, runtime), runtime)

    assert len(report.adopted) == SESSIONS
    assert runtime.timeouts == {probe_timeout}
    assert runtime.peak == concurrency


async def test_the_reaper_probes_as_configured(
    engine: Engine, autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    runtime = RecordingRuntime()
    await spawned(engine, runtime)
    config = configured(tmp_path, "reaper: {probeTimeout: 3s, concurrency: 4}\n")

    report = await build_reaper(config, engine.manager, runtime, engine.clock).sweep()

    assert len(report.observed) == SESSIONS
    assert runtime.timeouts == {3.0}
    assert runtime.peak == 4


def test_log_lines_carry_no_escape_sequences(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()
    try:
        daemon.configure_logging()
        logging.getLogger("orchestrator.test").warning(
            "agent said %s", "\x1b[2J\x1b]0;title\x07wiped\r\u202eevil"
        )
    finally:
        root.handlers[:] = saved
    line = capsys.readouterr().err
    assert "agent said wipedevil" in line
    assert not any(ch in line for ch in ("\x1b", "\x07", "\r", "\u202e"))
