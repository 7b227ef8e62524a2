"""The real CLI against the real HTTP app on loopback: hypercorn serving the app over a
memory store, a running engine and the real session manager (stub runtime and workspace,
the real agent registry), found through a run-file like the daemon's. Each command runs
through typer's CliRunner in a worker thread while trio serves the app.

What a new user meets: the exit-code table (0 ok, 1 runtime error, 2 usage error), ``ls``
hiding terminated sessions, ``events`` in words, ``--data-dir``, and errors that say what
to do in one line."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import msgspec
import pytest
import trio
from typer.testing import CliRunner, Result

from adapters.agents import agent_for
from adapters.http import SessionCommands, TokenAuthority
from adapters.memory import MemoryWorkspace, RecordingMessenger, ScriptedRuntime
from orchestrator import cli
from orchestrator.api import API_PREFIX, DaemonStatus, RunFile, SessionOut
from orchestrator.runfile import write_run_file
from orchestrator.sessions import SessionManager
from tests.engine_harness import Engine
from tests.http_harness import DAEMON_TOKEN, Served, serve_api

P = API_PREFIX
FAILING_PR = {
    "url": "https://github.com/me/mer/pull/12",
    "number": 12,
    "ci": "failing",
    "checks": [{"name": "lint", "commit": "abc123", "status": "failed", "logTail": "E501"}],
}


def real_sessions(engine: Engine, auth: TokenAuthority) -> SessionCommands:
    return SessionManager(
        engine.store,
        engine.manager,
        runtime=ScriptedRuntime(),
        workspace=MemoryWorkspace(),
        agents=lambda name: agent_for(name, {}),
        messenger=RecordingMessenger(),
        clock=engine.clock,
        hook_environment=lambda record: {"ORCHESTRATOR_SESSION_ID": record.id},
    )


def env_for(data_dir: Path | None) -> dict[str, str | None]:
    return {
        "ORCHESTRATOR_DATA_DIR": None if data_dir is None else str(data_dir),
        "ORCHESTRATOR_CONFIG": None,
        "ORCHESTRATOR_ADDR": None,
        "XDG_DATA_HOME": None,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }


@dataclass
class Cli:
    api: Served
    data_dir: Path
    runner: CliRunner

    async def __call__(
        self, *args: str, env: Mapping[str, str | None] | None = None, input: str | None = None
    ) -> Result:
        invoke = partial(
            self.runner.invoke,
            cli.app,
            list(args),
            env=env_for(self.data_dir) if env is None else env,
            input=input,
        )
        return await trio.to_thread.run_sync(invoke)

    async def post(self, path: str, body: object) -> None:
        response = await self.api.client.post(f"{P}{path}", json=body)
        assert response.is_success, response.text

    async def spawn(self, project: str = "mer") -> str:
        result = await self("spawn", project, "--agent", "claude-code", "--json")
        assert result.exit_code == 0, result.stderr
        return msgspec.json.decode(result.stdout, type=SessionOut).id


@asynccontextmanager
async def cli_against_the_api(tmp_path: Path) -> AsyncIterator[Cli]:
    # Spawn checks the agent's executable is on PATH before it makes anything: give the
    # in-process daemon a stand-in `claude`.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "claude").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "claude").chmod(0o755)
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{path}"
    try:
        async with _serve_cli(tmp_path) as cli:
            yield cli
    finally:
        os.environ["PATH"] = path


@asynccontextmanager
async def _serve_cli(tmp_path: Path) -> AsyncIterator[Cli]:
    async with serve_api(sessions=real_sessions) as api:
        data_dir = tmp_path / "data"
        write_run_file(
            data_dir / "daemon.json",
            RunFile(
                pid=os.getpid(),
                address=api.url.removeprefix("http://"),
                token=DAEMON_TOKEN,
                started_at=datetime.now(UTC),
            ),
        )
        await api.engine.project("mer")
        yield Cli(api, data_dir, CliRunner())


def exited_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def one_line(result: Result) -> str:
    """The error line the command printed (it must be exactly one)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- exit codes ---------------------------------------------------------------------------


async def test_every_command_exits_0_ok_1_runtime_2_usage(tmp_path: Path) -> None:
    async with cli_against_the_api(tmp_path) as run:
        live, ended = await run.spawn(), await run.spawn()
        assert (await run("kill", ended)).exit_code == 0
        table: list[tuple[list[str], int]] = [
            (["status"], 0),
            (["ls"], 0),
            (["ls", "--all", "--json"], 0),
            (["ls", "--status", "sleepy"], 2),  # not a status
            (["ls", "--project", "ghost"], 2),  # an unknown project
            (["show", live], 0),
            (["show", "ghost-1"], 2),  # an unknown session
            (["spawn", "ghost", "--agent", "claude-code"], 2),  # an unknown project
            (["spawn", "mer", "--agent", "bogus"], 2),  # an unknown agent
            (["spawn", "Not_A_Slug", "--agent", "claude-code"], 2),  # a bad project id
            (["spawn"], 2),  # no project
            (["send", live, "hello"], 0),
            (["send", ended, "hello"], 1),  # the session cannot take it now
            (["send", "ghost-1", "hello"], 2),
            (["send", live, " "], 2),  # an empty message
            (["kill", "ghost-1"], 2),
            (["restore", live], 1),  # live: nothing to restore
            (["restore", "ghost-1"], 2),
            (["events"], 0),
            (["events", "--project", "ghost"], 2),
            (["events", "--since", "-1"], 2),
            (["notifications"], 0),
            (["notifications", "--project", "ghost"], 2),
            (["notifications", "--limit", "0"], 2),
            (["project", "ls"], 0),
            (["project", "add", "My_App", str(tmp_path)], 2),
            (["config", "check"], 0),
            (["config", "example"], 0),
            (["bogus"], 2),
        ]
        got = [(args, (await run(*args)).exit_code) for args, _ in table]
        assert got == table


async def test_a_missing_or_stale_daemon_is_exit_1_for_every_command(tmp_path: Path) -> None:
    async with cli_against_the_api(tmp_path) as run:
        dead = await trio.to_thread.run_sync(exited_pid)
        stale = tmp_path / "stale"
        write_run_file(
            stale / "daemon.json",
            RunFile(pid=dead, address="127.0.0.1:1", token="t", started_at=datetime.now(UTC)),
        )
        commands = [
            ["status"],
            ["ls"],
            ["show", "mer-1"],
            ["spawn", "mer", "--agent", "claude-code"],
            ["kill", "mer-1"],
            ["restore", "mer-1"],
            ["send", "mer-1", "hi"],
            ["events"],
            ["notifications"],
            ["project", "ls"],
            ["project", "add", "mer", str(tmp_path)],
        ]
        for data_dir, says in (
            (tmp_path / "empty", "start one with `orchestrator start`"),
            (stale, f"the run-file is stale (its daemon, pid {dead}, has exited)"),
        ):
            for args in commands:
                result = await run(*args, env=env_for(data_dir))
                assert result.exit_code == 1, (args, result.stderr)
                assert one_line(result).startswith(f"error: no daemon is running for {data_dir}")
                assert says in result.stderr


# --- ls --------------------------------------------------------------------------------------


async def test_ls_hides_terminated_sessions_unless_asked(tmp_path: Path) -> None:
    async with cli_against_the_api(tmp_path) as run:
        working, waiting, ended = await run.spawn(), await run.spawn(), await run.spawn()
        await run.post(f"/sessions/{working}/activity", {"state": "active"})
        await run.post(f"/sessions/{waiting}/activity", {"state": "waiting_input"})
        assert (await run("kill", ended)).exit_code == 0

        async def rows(*args: str) -> list[tuple[str, str]]:
            result = await run("ls", *args)
            assert result.exit_code == 0, result.stderr
            lines = [line.split() for line in result.stdout.splitlines()]
            return [(line[0], line[1]) for line in lines if line and line[0].startswith("mer-")]

        assert await rows() == [(working, "working"), (waiting, "needs_input")]
        assert await rows("--all") == [
            (working, "working"),
            (waiting, "needs_input"),
            (ended, "killed"),
        ]
        assert await rows("--status", "killed") == [(ended, "killed")]
        assert await rows("-s", "working", "-s", "needs_input") == [
            (working, "working"),
            (waiting, "needs_input"),
        ]
        assert await rows("--status", "idle") == []
        result = await run("ls", "--status", "idle")
        assert result.stdout.strip() == "no sessions with status idle"
        listed = await run("ls", "--json")
        assert [s.id for s in msgspec.json.decode(listed.stdout, type=list[SessionOut])] == [
            working,
            waiting,
        ]


# --- events ----------------------------------------------------------------------------------

_PREFIX = re.compile(r"^\s*(\d+)\s+(\d\d:\d\d:\d\d|\d\d-\d\d \d\d:\d\d)\s+")


def narrated(stdout: str) -> list[tuple[str, str]]:
    """(session, what changed) of each line, after its seq and time."""
    out = []
    for line in stdout.splitlines():
        match = _PREFIX.match(line)
        assert match is not None, line
        who, what = line[match.end() :].split(None, 1)
        out.append((who, what))
    return out


async def test_events_say_what_changed_one_line_each_at_80_columns(tmp_path: Path) -> None:
    async with cli_against_the_api(tmp_path) as run:
        sid = await run.spawn()
        await run.post(f"/sessions/{sid}/activity", {"state": "active"})
        await run.post(f"/sessions/{sid}/pr", FAILING_PR)
        await run.post(f"/sessions/{sid}/activity", {"state": "waiting_input"})
        await run.api.engine.deliver()
        assert (await run("kill", sid)).exit_code == 0
        result = await run("events", env={**env_for(run.data_dir), "COLUMNS": "80"})
        assert result.exit_code == 0, result.stderr
        assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
        story = narrated(result.stdout)
        assert story[:3] == [
            (sid, "session created (not started)"),
            (sid, "runtime up"),
            (sid, "not started → working (agent active)"),
        ]
        rest = story[3:]
        assert (sid, "PR #12 open, checks failing") in rest
        assert (sid, "PR #12 check lint failed at abc123") in rest
        assert (sid, "working → needs input (agent waiting for input)") in rest
        assert any(what.startswith("notification (urgent): ") for _, what in rest), rest
        assert rest[-1] == (sid, "needs input → terminated: killed")
        assert not any("{" in what for _, what in story)  # no JSON

        as_json = await run("events", "--json")
        seqs = [msgspec.json.decode(line)["seq"] for line in as_json.stdout.splitlines()]
        assert len(seqs) == len(story)
        assert seqs == sorted(seqs)


# --- data dir, errors ---------------------------------------------------------------------


async def test_data_dir_flag_before_or_after_the_command_beats_the_environment(
    tmp_path: Path,
) -> None:
    async with cli_against_the_api(tmp_path) as run:
        elsewhere = env_for(tmp_path / "elsewhere")
        assert (await run("ls", env=elsewhere)).exit_code == 1
        for args in (
            ["ls", "--data-dir", str(run.data_dir)],
            ["--data-dir", str(run.data_dir), "ls"],
            ["project", "ls", "--data-dir", str(run.data_dir)],
        ):
            result = await run(*args, env=elsewhere)
            assert result.exit_code == 0, (args, result.stderr)
        status = await run("status", "--json", "--data-dir", str(run.data_dir), env=elsewhere)
        assert msgspec.json.decode(status.stdout, type=DaemonStatus).data_dir == str(run.data_dir)
        check = await run("config", "check", "--data-dir", str(run.data_dir), env=env_for(None))
        assert f"data dir  {run.data_dir}" in check.stdout
        # The command's own flag wins over the one before it.
        both = await run("--data-dir", str(tmp_path / "x"), "ls", "--data-dir", str(run.data_dir))
        assert both.exit_code == 0, both.stderr


@pytest.mark.parametrize("columns", ["40", "80"])
async def test_errors_are_one_line_however_narrow_the_terminal(
    tmp_path: Path, columns: str
) -> None:
    async with cli_against_the_api(tmp_path) as run:
        env = {**env_for(run.data_dir), "COLUMNS": columns}
        bad_id = await run(
            "project", "add", "My_App", str(tmp_path / "a" / "long" / "path"), env=env
        )
        assert bad_id.exit_code == 2
        assert one_line(bad_id) == (
            "error: invalid body: project ids are lowercase letters, digits, - and _ "
            "(at most 32) and start with a letter or digit - at `$.id` (HTTP 400)"
        )
        agent = await run("spawn", "mer", "--agent", "no-such-agent-" + "x" * 40, env=env)
        assert agent.exit_code == 2
        assert one_line(agent).startswith("error: unknown agent 'no-such-agent-xxxx")
        project = await run("spawn", "ghost", "--agent", "claude-code", env=env)
        assert one_line(project) == "error: spawn: project 'ghost' not found (HTTP 404)"
