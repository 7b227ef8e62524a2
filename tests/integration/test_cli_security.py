"""The CLI's side of the change stream's resync and of ``token rotate``, against the stand-in
daemon of ``test_cli``: a replay the daemon cannot continue is told in one line on stderr
and goes on; rotation names the live sessions to restart."""

from __future__ import annotations

import msgspec

from orchestrator.api import HEAD_SEQ_HEADER, EventOut, HookKeyRotated, ResyncOut, ResyncReason
from tests.integration.test_cli import (
    FakeDaemon,
    Invoke,
    Stream,
    daemon,
    data_dir,
    env,
    event,
    frame,
    invoke,
    running,
)

STAND_IN_FIXTURES = (daemon, data_dir, env, invoke, running)
"""The stand-in daemon's fixtures: pytest finds them by the names imported here."""


def resync(data: ResyncOut) -> bytes:
    return b"id: %d\nevent: resync\ndata: %s\n\n" % (data.last_seq, msgspec.json.encode(data))


def printed_seqs(stdout: str) -> list[int]:
    return [msgspec.json.decode(line, type=EventOut).seq for line in stdout.splitlines()]


def test_events_say_in_one_line_when_history_was_trimmed(
    invoke: Invoke, running: FakeDaemon
) -> None:
    trimmed = ResyncOut(last_seq=6, reason=ResyncReason.EXPIRED, oldest_seq=7, head_seq=8)
    running.streams.append(
        Stream([resync(trimmed), frame(event(7)), frame(event(8))], headers={HEAD_SEQ_HEADER: "8"})
    )
    result = invoke("events", "--json", "--since", "2")
    assert result.exit_code == 0, result.stderr
    assert printed_seqs(result.stdout) == [7, 8]
    assert result.stderr.strip().splitlines() == [
        "events 3 to 6 are no longer kept by the daemon (it keeps seq 7 to 8): listing from seq 7"
    ]
    assert len(running.requests("GET", "/events")) == 1  # no reconnect: the stream goes on


def test_events_say_when_nothing_of_the_history_is_kept(
    invoke: Invoke, running: FakeDaemon
) -> None:
    emptied = ResyncOut(last_seq=8, reason=ResyncReason.EXPIRED, head_seq=8)
    running.streams.append(Stream([resync(emptied)], hold=True, headers={HEAD_SEQ_HEADER: "8"}))
    result = invoke("events", "--since", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "events 3 to 8 are no longer kept by the daemon (it keeps none up to seq 8)" in (
        result.stderr
    )


def test_events_beyond_the_head_say_the_log_was_reset_and_list_it_from_the_start(
    invoke: Invoke, running: FakeDaemon
) -> None:
    reset = ResyncOut(last_seq=0, reason=ResyncReason.AHEAD, oldest_seq=1, head_seq=2)
    running.streams.append(
        Stream([resync(reset), frame(event(1)), frame(event(2))], headers={HEAD_SEQ_HEADER: "2"})
    )
    result = invoke("events", "--json", "--since", "5000")
    assert result.exit_code == 0, result.stderr
    assert printed_seqs(result.stdout) == [1, 2]
    (line,) = result.stderr.strip().splitlines()
    assert "ends at seq 2, before seq 5000" in line
    assert "reset" in line


def test_token_rotate_names_the_sessions_to_restart(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply("POST", "/tokens/rotate", HookKeyRotated(sessions_to_restart=["app-1", "app-3"]))
    result = invoke("token", "rotate")
    assert result.exit_code == 0, result.stderr
    assert "rotated the hook key" in result.stdout
    assert "2 live session(s)" in result.stderr
    assert "app-1, app-3" in result.stderr
    (request,) = running.requests("POST", "/tokens/rotate")
    assert request.headers["authorization"] == "Bearer s3cret-token"


def test_token_rotate_json_and_no_live_sessions(invoke: Invoke, running: FakeDaemon) -> None:
    running.reply("POST", "/tokens/rotate", HookKeyRotated(sessions_to_restart=[]))
    result = invoke("token", "rotate", "--json")
    assert result.exit_code == 0, result.stderr
    assert msgspec.json.decode(result.stdout) == {"sessionsToRestart": []}
    plain = invoke("token", "rotate")
    assert plain.exit_code == 0
    assert plain.stderr == ""


def test_token_rotate_needs_a_running_daemon(invoke: Invoke) -> None:
    result = invoke("token", "rotate")
    assert result.exit_code == 1
    assert "no daemon is running" in result.stderr
