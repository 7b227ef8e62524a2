"""kill -9 of the daemon under a stream of deliveries, a few rounds: no two messages ever
arrive as one agent input, no acknowledged write is lost, and the copies a restart sends
again are few (at most one per session and kill) and say that they are copies.

The agent is a terminal program like a real coding agent's TUI: raw mode, bracketed paste
on, one input line that a paste adds to, ``C-u`` empties and Enter submits. It records
every byte it reads; the test replays them through that model. Each round sends messages
to it two ways at once: ``POST /sessions/{id}/send`` (acknowledged once typed and
submitted) and PR observations whose failing check is new each time (acknowledged once
durable; the ci-failed nudge they cause goes through the outbox). The kill lands at a
random moment, half the time taking the daemon's tmux and git clients down with it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import msgspec

from orchestrator.api import API_PREFIX
from orchestrator.outbox import resent_text
from tests.e2e.harness import (
    Daemon,
    kill_tmux,
    make_repo,
    start_daemon,
    wait_for,
    write_config,
)
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

ROUNDS = 4
SESSIONS = 2
PR_EVERY = 0.3  # seconds between PR observations per session

TUI = r"""
import os, sys, tty
out = sys.argv[1]
tty.setraw(0)
os.write(1, b"\x1b[?2004h")  # bracketed paste on
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
open(out + ".ready", "w").close()
while chunk := os.read(0, 65536):
    os.write(fd, chunk)
"""
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"
CLEAR_LINE, END_OF_LINE, ENTER = b"\x15", b"\x05", b"\r"
RESENT = re.compile(r"\(re-sent after a restart\) \[msg (\d+)\] (.*)", re.DOTALL)


def inputs(raw: bytes) -> list[str]:
    """What the TUI submitted: the line as pastes and typing left it at each Enter."""
    submitted: list[str] = []
    line = b""
    i = 0
    while i < len(raw):
        if raw.startswith(PASTE_START, i):
            end = raw.index(PASTE_END, i)
            line += raw[i + len(PASTE_START) : end]
            i = end + len(PASTE_END)
            continue
        byte = raw[i : i + 1]
        if byte == ENTER:
            submitted.append(line.decode().replace("\r", "\n"))
            line = b""
        elif byte == CLEAR_LINE:
            line = b""
        elif byte != END_OF_LINE:
            line += byte
        i += 1
    assert line == b"", f"text left unsubmitted on the line: {line!r}"
    return submitted


def test_the_tui_model_reads_pastes_clears_and_submits() -> None:
    raw = (
        b"\x1b[200~one\x1b[201~\r"
        b"\x1b[200~half\x1b[201~\x05\x15\x1b[200~two\rlines\x1b[201~\r"
        b"\x1b[200~glued\x1b[201~\x1b[200~twice\x1b[201~\r"
    )
    assert inputs(raw) == ["one", "two\nlines", "gluedtwice"]


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def _kill_9(daemon: Daemon, *, with_children: bool) -> None:
    pid = daemon.process.pid
    doomed = [pid, *(_children(pid) if with_children else [])]
    for victim in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    daemon.process.wait(timeout=30)
    daemon.client.close()


class Load:
    """Sends and PR observations from client threads until stopped; what was acknowledged."""

    def __init__(self, sessions: list[str]) -> None:
        self.sessions = sessions
        self.marks = itertools.count()
        self.checks = itertools.count()
        self.sent: set[str] = set()  # every MARK message a send was attempted with
        self.acked_marks: set[str] = set()
        self.acked_checks: set[str] = set()
        self.lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, daemon: Daemon) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=work, args=(daemon, sid, self._stop))
            for sid in self.sessions
            for work in (self._send, self._observe)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """No new requests; the ones in flight end with the daemon."""
        self._stop.set()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=30)

    def _client(self, daemon: Daemon) -> httpx.Client:
        return httpx.Client(
            base_url=daemon.base,
            headers={"Authorization": f"Bearer {daemon.run.token}"},
            timeout=30,
            trust_env=False,
        )

    def _send(self, daemon: Daemon, sid: str, stop: threading.Event) -> None:
        with self._client(daemon) as http:
            while not stop.is_set():
                mark = f"MARK:{next(self.marks)}"
                with self.lock:
                    self.sent.add(mark)
                try:
                    answer = http.post(
                        f"{API_PREFIX}/sessions/{sid}/send",
                        content=msgspec.json.encode({"message": mark}),
                    )
                except httpx.TransportError:
                    return
                if answer.status_code == 204:
                    with self.lock:
                        self.acked_marks.add(mark)

    def _observe(self, daemon: Daemon, sid: str, stop: threading.Event) -> None:
        with self._client(daemon) as http:
            while not stop.wait(PR_EVERY):
                n = next(self.checks)
                tail = f"CI:{n}"
                observation = {
                    "url": f"https://github.com/acme/app/pull/{sid.rsplit('-', 1)[-1]}",
                    "number": int(sid.rsplit("-", 1)[-1]),
                    "ci": "failing",
                    "checks": [
                        {
                            "name": f"check-{n}",
                            "commit": f"c{n}",
                            "status": "failed",
                            "logTail": tail,
                        }
                    ],
                }
                try:
                    answer = http.post(
                        f"{API_PREFIX}/sessions/{sid}/pr",
                        content=msgspec.json.encode(observation),
                    )
                except httpx.TransportError:
                    return
                if answer.status_code == 200:
                    with self.lock:
                        self.acked_checks.add(tail)


def _outbox(database: Path) -> list[tuple[int, str, str, bool]]:
    """(id, action, message, settled) of every outbox row."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT id, action, message, delivered_at IS NOT NULL OR failed_at IS NOT NULL "
            "FROM outbox ORDER BY id"
        ).fetchall()
    return [(int(i), str(a), str(m), bool(s)) for i, a, m, s in rows]


def test_kill_9_between_paste_and_submit_never_glues_or_loses_a_message(tmp_path: Path) -> None:
    script = tmp_path / "tui.py"
    script.write_text(TUI)
    data = tmp_path / "data"
    agent = f'["{sys.executable}", "{script}", "{{workspace_path}}/input.bin"]'
    config = write_config(
        data, extra=f"agents:\n  tui:\n    command: {agent}\n    clearLine: [C-e, C-u]\n"
    )
    database = data / "orchestrator.db"
    rng = random.Random(20261204)  # noqa: S311 - when to kill, not a secret
    try:
        daemon = start_daemon(data, config=config)
        repo = make_repo(tmp_path / "repo")
        assert daemon.post("/projects", {"id": "app", "path": str(repo)}).status_code == 201
        workspaces: dict[str, Path] = {}
        for _ in range(SESSIONS):
            body = daemon.post("/sessions", {"projectId": "app", "agent": "tui"}).json()
            workspaces[body["id"]] = Path(body["metadata"]["workspacePath"])
        for workspace in workspaces.values():
            wait_for((workspace / "input.bin.ready").exists, what="the TUI to start")
        load = Load(list(workspaces))

        for round_no in range(ROUNDS):
            if round_no:
                daemon = start_daemon(data, config=config)
            load.start(daemon)
            time.sleep(rng.uniform(1.0, 2.5))
            _kill_9(daemon, with_children=round_no % 2 == 1)
            load.stop()
            load.join()

        daemon = start_daemon(data, config=config)
        wait_for(
            lambda: all(settled for *_, settled in _outbox(database)),
            seconds=90,
            what="the outbox to be delivered",
        )
        assert daemon.stop() == 0
        time.sleep(0.5)  # the last Enter, sent by the tmux server
        typed = {sid: inputs((ws / "input.bin").read_bytes()) for sid, ws in workspaces.items()}
    finally:
        kill_tmux(data)

    rows = _outbox(database)
    nudges = {message: row_id for row_id, action, message, _ in rows if action == "send-to-agent"}
    received: Counter[str] = Counter()
    for line in itertools.chain.from_iterable(typed.values()):
        copy = RESENT.fullmatch(line)
        if copy is not None:
            row_id, body = int(copy.group(1)), copy.group(2)
            assert nudges.get(body) == row_id, f"a copy with the wrong id: {line!r}"
            assert line == resent_text(row_id, body)
            line = body
        # Every input is exactly one message: a send or one nudge, never two glued.
        assert line in load.sent or line in nudges, f"not one message: {line!r}"
        received[line] += 1

    # Nothing acknowledged is lost.
    assert load.acked_marks, "no send was acknowledged: the load never ran"
    assert load.acked_marks <= set(received), load.acked_marks - set(received)
    durable_tails = {m.rsplit("\n", 1)[-1] for m in nudges}
    assert load.acked_checks <= durable_tails, load.acked_checks - durable_tails
    assert set(nudges) <= set(received), set(nudges) - set(received)
    assert all(settled for *_, settled in rows)

    # Copies: a send is never repeated; a nudge only by a restart, one per session and kill.
    assert all(received[mark] == 1 for mark in load.sent if mark in received), received
    copies = sum(received[m] - 1 for m in nudges)
    assert copies <= ROUNDS * SESSIONS, copies
