"""Real headless Chromium (Debian's ``chromium``, driven by Playwright through
``executable_path``: no browser is downloaded) against the real daemon on loopback, whose
sessions run a custom agent that records everything typed into its pane.

Without Chromium or Playwright the browser tests skip on a developer machine; in CI
(``REQUIRE_REAL_TOOLS``, set by ``.ci/run``, which installs ``chromium``) they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.harness import REPO_ROOT, Daemon, daemon_env, make_repo

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("ORCHESTRATOR_CHROMIUM") or shutil.which("chromium") or ""
PROJECT = "shop"


def requires_browser() -> pytest.MarkDecorator:
    missing = not CHROMIUM or importlib.util.find_spec("playwright") is None
    return pytest.mark.skipif(
        missing and not os.environ.get("REQUIRE_REAL_TOOLS"),
        reason="chromium or playwright is not installed",
    )


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM:
        raise AssertionError("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()


def login_path(daemon: Daemon) -> str:
    response = daemon.post("/dashboard/login", {})
    assert response.status_code == 201, response.text
    path: str = response.json()["path"]
    return path


def cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``orchestrator`` command, as a user runs it beside the daemon."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO_ROOT,
        env=daemon_env(daemon.data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def signed_in_page(browser: Browser, daemon: Daemon, *, link: str = "", **context: Any) -> Page:
    """A new browser context signed in through a one-time login link (``link``, else a
    fresh one), on the board with its change feed live."""
    page = browser.new_context(**context).new_page()
    page.goto(link or daemon.base + login_path(daemon))
    page.wait_for_selector("#conn[data-state=live]")
    return page


def register(daemon: Daemon, tmp: Path, project_id: str = PROJECT) -> None:
    repo = make_repo(tmp / f"repo-{project_id}")
    response = daemon.post("/projects", {"id": project_id, "path": str(repo)})
    assert response.status_code == 201, response.text


def spawn(daemon: Daemon, prompt: str = "", project_id: str = PROJECT, issue: str = "") -> str:
    body = {"projectId": project_id, "agent": "recorder", "prompt": prompt, "issueId": issue}
    response = daemon.post("/sessions", body)
    assert response.status_code == 201, response.text
    session_id: str = response.json()["id"]
    return session_id


def report(daemon: Daemon, session_id: str, state: str) -> None:
    """The agent's hook reporting its activity, with the session's own token."""
    hook = {"Authorization": f"Bearer {daemon.session_token(session_id)}"}
    response = daemon.post(f"/sessions/{session_id}/activity", {"state": state}, headers=hook)
    assert response.status_code == 204, response.text


def observe_pr(daemon: Daemon, session_id: str, **fields: Any) -> None:
    number = fields.pop("number", 1)
    body = {"url": f"https://github.com/acme/shop/pull/{number}", "number": number, **fields}
    response = daemon.post(f"/sessions/{session_id}/pr", body)
    assert response.status_code == 200, response.text


def workspace(daemon: Daemon, session_id: str) -> Path:
    body = daemon.api("GET", f"/sessions/{session_id}").json()
    return Path(body["metadata"]["workspacePath"])


def zone_of_card(page: Page, session_id: str) -> str:
    value: str = page.get_attribute(f"#card-{session_id}", "data-zone") or ""
    return value


def poll(predicate: Callable[[], bool], *, seconds: float, what: str) -> float:
    """Wait until ``predicate()``; the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.01)
    return time.monotonic() - start
