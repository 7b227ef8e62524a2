"""Notifiers: how a human is told. All raise ``TransientError`` for failures worth retrying
and ``DeliveryError`` for failures that retrying will not fix; none swallows a failure.
Each shows the event's text cleaned (``clean_text``): a message that quotes a CI log or a
tool's error output cannot recolour a terminal, forge log lines or reorder text.

- ``LogNotifier``: always on, writes through the stdlib ``logging`` module.
- ``DesktopNotifier``: ``notify-send``; a no-op (logged once) without it or without a desktop
  session.
- ``WebhookNotifier``: JSON POST of the event (camelCase fields), or a Slack-compatible
  ``{"text": ...}`` body.
- ``RoutingNotifier``: fans an event out to the notifiers configured for its priority and
  raises if any failed, so the outbox retries; on the retry the notifiers that already
  delivered that event are skipped (no duplicate Slack posts).
"""

from __future__ import annotations

import html
import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httpx
import msgspec
import trio

from orchestrator.domain.errors import DeliveryError, InvalidInputError, TransientError
from orchestrator.domain.model import NotificationEvent, Priority
from orchestrator.domain.text import clean_text
from orchestrator.ports import Notifier

__all__ = [
    "DesktopNotifier",
    "LogNotifier",
    "RoutingNotifier",
    "WebhookNotifier",
    "event_title",
    "slack_text",
]

logger = logging.getLogger(__name__)

_LOG_LEVELS: Final = {
    Priority.URGENT: logging.WARNING,
    Priority.ACTION: logging.INFO,
    Priority.INFO: logging.INFO,
}
_URGENCY: Final = {Priority.URGENT: "critical", Priority.ACTION: "normal", Priority.INFO: "low"}
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})


def _readable(event: NotificationEvent) -> NotificationEvent:
    """``event`` with every text field cleaned of escapes, controls and bidi overrides."""
    return msgspec.structs.replace(
        event,
        type=clean_text(event.type),
        session_id=clean_text(event.session_id),
        project_id=clean_text(event.project_id),
        message=clean_text(event.message),
    )


def event_title(event: NotificationEvent) -> str:
    """A one-line summary: ``app-1: ci-failed``."""
    return f"{event.session_id}: {event.type.removeprefix('reaction.')}"


class LogNotifier:
    """Logs every event (WARNING for urgent, INFO otherwise). Never fails."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self._log = log or logging.getLogger("orchestrator.notifications")

    async def notify(self, event: NotificationEvent) -> None:
        event = _readable(event)
        self._log.log(
            _LOG_LEVELS.get(event.priority, logging.INFO),
            "[%s] %s (project %s, %s): %s",
            event.priority.value,
            event.session_id,
            event.project_id,
            event.type,
            event.message,
        )


def _desktop_session_present() -> bool:
    if any(os.environ.get(v) for v in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY")):
        return True
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR", "")
    return runtime_dir != "" and Path(runtime_dir, "bus").exists()


class DesktopNotifier:
    """``notify-send`` pop-ups. Without ``notify-send`` on PATH, or without a desktop session
    to show them in, it does nothing and says so once in the log."""

    def __init__(
        self,
        *,
        executable: str | None = None,
        app_name: str = "orchestrator",
        timeout: float = 5.0,
    ) -> None:
        found = executable if executable is not None else shutil.which("notify-send")
        self._reason = ""
        if not found:
            self._reason = "notify-send is not on PATH"
        elif not _desktop_session_present():
            self._reason = "no desktop session (DISPLAY, WAYLAND_DISPLAY, D-Bus) to show them in"
        self._executable = found or ""
        self._app_name = app_name
        self._timeout = timeout
        self._said_so = False

    @property
    def available(self) -> bool:
        return not self._reason

    async def notify(self, event: NotificationEvent) -> None:
        if self._reason:
            if not self._said_so:
                self._said_so = True
                logger.info("desktop notifications are off: %s", self._reason)
            return
        event = _readable(event)
        argv = [
            self._executable,
            f"--app-name={self._app_name}",
            f"--urgency={_URGENCY.get(event.priority, 'normal')}",
            "--",
            event_title(event),
            # The body is rendered as (a subset of) markup by notification servers.
            html.escape(event.message, quote=False),
        ]
        try:
            with trio.fail_after(self._timeout):
                proc = await trio.run_process(
                    argv, capture_stdout=True, capture_stderr=True, check=False, stdin=b""
                )
        except trio.TooSlowError as exc:
            raise TransientError(f"notify-send timed out after {self._timeout:g}s") from exc
        except OSError as exc:
            raise DeliveryError(f"cannot run notify-send: {exc}") from exc
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace").strip()
            raise DeliveryError(f"notify-send exited with {proc.returncode}: {stderr}")


def slack_text(event: NotificationEvent) -> str:
    """The Slack message text, with ``&``, ``<`` and ``>`` escaped as Slack requires."""
    text = f"[{event.priority.value}] {event_title(event)} (project {event.project_id})\n"
    text += event.message
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WebhookNotifier:
    """POSTs each event to ``url``: the event as JSON, or ``{"text": ...}`` when ``slack``.

    5xx, 408/425/429, timeouts and connection errors raise ``TransientError``; other
    non-2xx answers raise ``DeliveryError``. Error messages name only the URL's host, since
    webhook URLs often embed a secret. Without ``client`` each call opens its own.
    """

    def __init__(
        self,
        url: str,
        *,
        slack: bool = False,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise InvalidInputError("webhook url must be an absolute http(s) URL")
        self._url = url
        self._where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self._slack = slack
        self._client = client
        self._timeout = timeout

    def body(self, event: NotificationEvent) -> bytes:
        event = _readable(event)
        if self._slack:
            return msgspec.json.encode({"text": slack_text(event)})
        return msgspec.json.encode(event)

    async def notify(self, event: NotificationEvent) -> None:
        body = self.body(event)
        try:
            if self._client is not None:
                response = await self._post(self._client, body)
            else:
                async with httpx.AsyncClient() as client:
                    response = await self._post(client, body)
        except httpx.TransportError as exc:  # timeouts, refused/reset connections
            raise TransientError(f"webhook {self._where}: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self._where}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"webhook {self._where} answered {status} {response.reason_phrase}"
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise TransientError(detail)
        raise DeliveryError(detail)

    async def _post(self, client: httpx.AsyncClient, body: bytes) -> httpx.Response:
        return await client.post(
            self._url,
            content=body,
            headers={"content-type": "application/json"},
            timeout=self._timeout,
            follow_redirects=False,
        )


class RoutingNotifier:
    """Sends each event to ``always`` plus the notifiers routed to its priority (each
    notifier once, even if listed twice), concurrently.

    If any fails it raises: ``DeliveryError`` when every failure was a ``DeliveryError``,
    ``TransientError`` otherwise. It remembers (for the last ``memory`` failed events)
    which notifiers did deliver, and skips them when the same event is sent again.
    """

    def __init__(
        self,
        routes: Mapping[Priority, Sequence[Notifier]],
        *,
        always: Sequence[Notifier] = (),
        memory: int = 1024,
    ) -> None:
        self._routes: dict[Priority, tuple[Notifier, ...]] = {}
        for priority in Priority:
            unique: dict[int, Notifier] = {}
            for notifier in (*always, *routes.get(priority, ())):
                unique.setdefault(id(notifier), notifier)
            self._routes[priority] = tuple(unique.values())
        self._memory = memory
        self._delivered: OrderedDict[NotificationEvent, set[int]] = OrderedDict()

    def targets(self, priority: Priority) -> tuple[Notifier, ...]:
        return self._routes.get(priority, ())

    async def notify(self, event: NotificationEvent) -> None:
        targets = self.targets(event.priority)
        delivered = self._delivered.pop(event, set())
        failures: list[tuple[Notifier, Exception]] = []

        async def deliver(index: int, notifier: Notifier) -> None:
            try:
                await notifier.notify(event)
            except Exception as exc:
                logger.warning(
                    "notifier %s failed for %s of %s",
                    type(notifier).__name__,
                    event.type,
                    event.session_id,
                    exc_info=True,
                )
                failures.append((notifier, exc))
            else:
                delivered.add(index)

        async with trio.open_nursery() as nursery:
            for index, notifier in enumerate(targets):
                if index not in delivered:
                    nursery.start_soon(deliver, index, notifier)
        if not failures:
            return
        self._delivered[event] = delivered
        while len(self._delivered) > self._memory:
            self._delivered.popitem(last=False)
        summary = "; ".join(f"{type(n).__name__}: {exc}" for n, exc in failures)
        if all(isinstance(exc, DeliveryError) for _, exc in failures):
            raise DeliveryError(f"{len(failures)} notifier(s) failed: {summary}")
        raise TransientError(f"{len(failures)} notifier(s) failed: {summary}")
