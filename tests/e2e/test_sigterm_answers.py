"""SIGTERM under a stream of concurrent requests: every request the daemon accepted gets a
whole HTTP answer (200 before the drain, 503 during it), none a reset or a cut-off body.
A connection attempted after the listener closed is refused, which a client can tell apart
from a request lost in flight."""

from __future__ import annotations

import collections
import signal
import threading
import time
from pathlib import Path

import httpx

from orchestrator.api import API_PREFIX
from tests.e2e.harness import Daemon, kill_tmux, start_daemon
from tests.tools import requires

pytestmark = [requires("tmux"), requires("git")]

ROUNDS = 3
KEEP_ALIVE_CLIENTS = 12
NEW_CONNECTION_CLIENTS = 4
REFUSED = "refused"


def _stream_until_exit(daemon: Daemon) -> collections.Counter[str]:
    """Requests from every client until the daemon has exited and refuses connections;
    what each ended as: a status code, ``refused``, or the transport error's name."""
    outcomes: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    started = threading.Barrier(KEEP_ALIVE_CLIENTS + NEW_CONNECTION_CLIENTS + 1)
    headers = {"Authorization": f"Bearer {daemon.run.token}"}

    def new_client() -> httpx.Client:
        return httpx.Client(base_url=daemon.base, headers=headers, timeout=10, trust_env=False)

    def client(fresh_connections: bool) -> None:
        kept = new_client()
        started.wait()
        try:
            while True:
                try:
                    if fresh_connections:
                        with new_client() as once:
                            outcome = str(once.get(f"{API_PREFIX}/sessions").status_code)
                    else:
                        outcome = str(kept.get(f"{API_PREFIX}/sessions").status_code)
                except httpx.ConnectError:
                    outcome = REFUSED
                except httpx.TransportError as error:
                    outcome = type(error).__name__
                with lock:
                    outcomes[outcome] += 1
                if outcome == REFUSED:
                    if daemon.process.poll() is not None:
                        return
                    time.sleep(0.01)
        finally:
            kept.close()

    threads = [
        threading.Thread(target=client, args=(n < NEW_CONNECTION_CLIENTS,))
        for n in range(KEEP_ALIVE_CLIENTS + NEW_CONNECTION_CLIENTS)
    ]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.5)
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=30) == 0, daemon.log()
    for thread in threads:
        thread.join(timeout=30)
    daemon.client.close()
    return outcomes


def test_a_sigterm_answers_every_request_it_accepted(tmp_path: Path) -> None:
    for round_no in range(ROUNDS):
        data = tmp_path / f"data{round_no}"
        try:
            outcomes = _stream_until_exit(start_daemon(data))
        finally:
            kill_tmux(data)
        assert outcomes["200"] > 0, outcomes
        assert set(outcomes) <= {"200", "503", REFUSED}, f"round {round_no}: {outcomes}"
