"""Notifiers against real endpoints: a local HTTP server (Starlette on hypercorn's trio
worker), the logging module, and a stand-in ``notify-send`` program on PATH."""

from __future__ import annotations

import json
import logging
import socket
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import cast

import httpx
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.notifiers import (
    DesktopNotifier,
    LogNotifier,
    RoutingNotifier,
    WebhookNotifier,
)
from orchestrator.domain.errors import DeliveryError, InvalidInputError, TransientError
from orchestrator.domain.model import NotificationEvent, Priority

EVENT = NotificationEvent(
    type="reaction.ci-failed",
    priority=Priority.URGENT,
    session_id="app-1",
    project_id="app",
    message="CI failed on `test` <3 times> & counting",
)


# A message quoting hostile tool output: colours, a window title, a forged log line (lone
# CR), a bidi override. What a human is shown is the cleaned text.
DIRTY = NotificationEvent(
    type="reaction.ci-failed\x1b[2J",
    priority=Priority.URGENT,
    session_id="app-1\x07",
    project_id="app",
    message="\x1b[31mFAIL\x1b[0m\x1b]0;owned\x07 ok\rERROR fake\n\t\u202eoops",
)
CLEAN_MESSAGE = "FAIL okERROR fake\n\toops"


def event(priority: Priority, message: str = "hello") -> NotificationEvent:
    return NotificationEvent(
        type="reaction.agent-idle",
        priority=priority,
        session_id="app-2",
        project_id="app",
        message=message,
    )


@dataclass
class Hook:
    """A webhook receiver: answers with ``statuses`` in order, then 200."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)  # path, type, body

    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(body) for _, _, body in self.requests]


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    received = Hook()

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        received.requests.append((request.url.path, request.headers.get("content-type", ""), body))
        status = received.statuses.pop(0) if received.statuses else 200
        return Response(status_code=status)

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST"])])
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 0.5
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(serve, cast("ASGIFramework", app), config, shutdown_trigger=shutdown.wait)
        )
        received.url = f"{binds[0]}/hooks/T0KEN-SECRET"
        yield received
        shutdown.set()


# --- webhook -------------------------------------------------------------------------------


async def test_webhook_retries_after_a_server_error_then_delivers(hook: Hook) -> None:
    hook.statuses = [500]
    notifier = WebhookNotifier(hook.url)
    with pytest.raises(TransientError):
        await notifier.notify(EVENT)
    await notifier.notify(EVENT)
    assert len(hook.requests) == 2
    path, content_type, _ = hook.requests[1]
    assert path == "/hooks/T0KEN-SECRET"
    assert content_type == "application/json"
    assert hook.bodies()[1] == {
        "type": "reaction.ci-failed",
        "priority": "urgent",
        "sessionId": "app-1",
        "projectId": "app",
        "message": "CI failed on `test` <3 times> & counting",
    }


async def test_webhook_slack_mode_posts_escaped_text(hook: Hook) -> None:
    await WebhookNotifier(hook.url, slack=True).notify(EVENT)
    assert hook.bodies() == [
        {
            "text": "[urgent] app-1: ci-failed (project app)\n"
            "CI failed on `test` &lt;3 times&gt; &amp; counting"
        }
    ]


async def test_webhook_posts_cleaned_text(hook: Hook) -> None:
    await WebhookNotifier(hook.url).notify(DIRTY)
    await WebhookNotifier(hook.url, slack=True).notify(DIRTY)
    plain, slack = hook.bodies()
    assert plain == {
        "type": "reaction.ci-failed",
        "priority": "urgent",
        "sessionId": "app-1",
        "projectId": "app",
        "message": CLEAN_MESSAGE,
    }
    assert slack == {"text": f"[urgent] app-1: ci-failed (project app)\n{CLEAN_MESSAGE}"}


async def test_webhook_uses_a_given_client(hook: Hook) -> None:
    async with httpx.AsyncClient() as client:
        notifier = WebhookNotifier(hook.url, client=client)
        await notifier.notify(EVENT)
        await notifier.notify(event(Priority.INFO))
    assert [b["priority"] for b in hook.bodies()] == ["urgent", "info"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(502, TransientError), (429, TransientError), (404, DeliveryError), (400, DeliveryError)],
)
async def test_webhook_error_statuses(hook: Hook, status: int, error: type[Exception]) -> None:
    hook.statuses = [status]
    with pytest.raises(error) as info:
        await WebhookNotifier(hook.url).notify(EVENT)
    # A 4xx other than 408/425/429 must not be retried.
    assert isinstance(info.value, TransientError) == (error is TransientError)
    assert str(status) in str(info.value)
    assert "T0KEN-SECRET" not in str(info.value)


async def test_webhook_connection_refused_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientError) as info:
        await WebhookNotifier(f"http://127.0.0.1:{port}/hooks/T0KEN-SECRET").notify(EVENT)
    assert "T0KEN-SECRET" not in str(info.value)


async def test_webhook_timeout_is_transient() -> None:
    # Accepts the TCP connection (kernel backlog) and never answers.
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    try:
        notifier = WebhookNotifier(f"http://127.0.0.1:{port}/", timeout=0.3)
        with trio.fail_after(5), pytest.raises(TransientError):
            await notifier.notify(EVENT)
    finally:
        for listener in listeners:
            await listener.aclose()


@pytest.mark.parametrize("url", ["", "hooks.example.com/x", "ftp://example.com/x", "http:///x"])
def test_webhook_url_must_be_http(url: str) -> None:
    with pytest.raises(InvalidInputError):
        WebhookNotifier(url)


# --- routing -------------------------------------------------------------------------------


class Recording:
    """A notifier that records what it was given and can be told to fail."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.events: list[NotificationEvent] = []
        self.fail_with = fail_with

    async def notify(self, event: NotificationEvent) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.events.append(event)


async def test_routing_sends_each_priority_to_its_notifiers() -> None:
    log, pager, chat = Recording(), Recording(), Recording()
    router = RoutingNotifier(
        {Priority.URGENT: [pager, chat, pager], Priority.INFO: [chat]}, always=[log]
    )
    urgent, action, info = event(Priority.URGENT), event(Priority.ACTION), event(Priority.INFO)
    for e in (urgent, action, info):
        await router.notify(e)
    assert log.events == [urgent, action, info]
    assert pager.events == [urgent]  # listed twice, told once
    assert chat.events == [urgent, info]


async def test_routing_fails_so_the_outbox_retries_and_skips_who_already_delivered(
    hook: Hook,
) -> None:
    hook.statuses = [503]
    local = Recording()
    router = RoutingNotifier({Priority.URGENT: [local, WebhookNotifier(hook.url)]})
    with pytest.raises(TransientError, match="503"):
        await router.notify(EVENT)
    assert local.events == [EVENT]
    await router.notify(EVENT)
    assert local.events == [EVENT]  # not told twice
    assert len(hook.requests) == 2
    # A later, separate delivery of the same event goes to everyone again.
    await router.notify(EVENT)
    assert local.events == [EVENT, EVENT]
    assert len(hook.requests) == 3


async def test_routing_reports_permanent_failures_as_delivery_errors() -> None:
    router = RoutingNotifier(
        {Priority.INFO: [Recording(DeliveryError("gone")), Recording(DeliveryError("bad"))]}
    )
    with pytest.raises(DeliveryError, match="2 notifier"):
        await router.notify(event(Priority.INFO))


async def test_routing_treats_unexpected_errors_as_retryable() -> None:
    router = RoutingNotifier(
        {Priority.INFO: [Recording(DeliveryError("gone")), Recording(RuntimeError("bug"))]}
    )
    with pytest.raises(TransientError):
        await router.notify(event(Priority.INFO))


async def test_routing_with_no_notifiers_for_a_priority_is_a_no_op() -> None:
    await RoutingNotifier({}).notify(event(Priority.ACTION))


# --- log -----------------------------------------------------------------------------------


async def test_log_notifier_logs_urgent_as_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.notifications")
    notifier = LogNotifier()
    await notifier.notify(EVENT)
    await notifier.notify(event(Priority.INFO, "all quiet"))
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]
    assert "app-1" in caplog.records[0].getMessage()
    assert EVENT.message in caplog.records[0].getMessage()
    assert "all quiet" in caplog.records[1].getMessage()


async def test_log_notifier_logs_cleaned_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.notifications")
    await LogNotifier().notify(DIRTY)
    assert caplog.records[0].getMessage() == (
        f"[urgent] app-1 (project app, reaction.ci-failed): {CLEAN_MESSAGE}"
    )


# --- desktop -------------------------------------------------------------------------------


def fake_notify_send(directory: Path, *, exit_code: int = 0) -> Path:
    """A stand-in notify-send that records its arguments, one per line."""
    script = directory / "notify-send"
    record = directory / "args.txt"
    script.write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "{record}"\n'
        f"echo 'no bus' >&2\nexit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def test_desktop_notifier_calls_notify_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("PATH", str(tmp_path))
    fake_notify_send(tmp_path)
    notifier = DesktopNotifier()
    assert notifier.available
    await notifier.notify(EVENT)
    assert (tmp_path / "args.txt").read_text().splitlines() == [
        "--app-name=orchestrator",
        "--urgency=critical",
        "--",
        "app-1: ci-failed",
        "CI failed on `test` &lt;3 times&gt; &amp; counting",
    ]


async def test_desktop_notifier_shows_cleaned_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    notifier = DesktopNotifier(executable=str(fake_notify_send(tmp_path)))
    await notifier.notify(DIRTY)
    args = (tmp_path / "args.txt").read_text()
    assert args.split("--\n", 1)[1] == f"app-1: ci-failed\n{CLEAN_MESSAGE}\n"


async def test_desktop_notifier_failure_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    notifier = DesktopNotifier(executable=str(fake_notify_send(tmp_path, exit_code=1)))
    with pytest.raises(DeliveryError, match="no bus"):
        await notifier.notify(EVENT)


async def test_desktop_notifier_without_notify_send_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    caplog.set_level(logging.INFO, logger="adapters.notifiers")
    notifier = DesktopNotifier()
    assert not notifier.available
    await notifier.notify(EVENT)
    await notifier.notify(EVENT)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["desktop notifications are off: notify-send is not on PATH"]


async def test_desktop_notifier_without_a_desktop_session_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "no-such-dir"))
    notifier = DesktopNotifier(executable=str(fake_notify_send(tmp_path)))
    assert not notifier.available
    await notifier.notify(EVENT)
    assert not (tmp_path / "args.txt").exists()
