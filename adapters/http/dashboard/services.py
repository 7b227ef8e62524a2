"""What the dashboard needs beyond the API's services, and stand-ins for what is not wired.

Three capabilities are behind small interfaces (the daemon wires them with
``adapters.http.dashboard.wiring``); a test app built without one gets the stand-in, which
answers 501 (or a notice in the page) instead of pretending:

- ``PaneCapture``: the last lines of a session's pane, for the terminal peek. It is the
  only read that reaches past the store, and it happens only on its own endpoint.
- ``NotificationActions``: mark a notification read, resolve it.
- ``PRMerger``: merge a session's PR (needs the SCM provider).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from adapters.http.dashboard.reads import BoardReads, DashboardStore
from adapters.http.dashboard.security import LOOPBACK_NAMES, BrowserAuth
from orchestrator.domain.model import SessionId, SessionRecord

PEEK_LINES: Final = 80


class NotWiredError(Exception):
    """The daemon was built without this capability (HTTP 501)."""


class PeekUnavailableError(Exception):
    """The pane cannot be read now; the message says why (shown in the page)."""


class PaneCapture(Protocol):
    async def capture(self, session: SessionRecord, lines: int, /) -> str:
        """The pane's last ``lines`` lines as plain text; raises ``PeekUnavailableError``
        (no pane, the session ended) or ``NotWiredError``."""
        ...


class NotificationActions(Protocol):
    async def mark_notification_read(self, notification_id: int, at: datetime, /) -> None: ...

    async def resolve_notification(self, notification_id: int, at: datetime, /) -> None: ...


class PRMerger(Protocol):
    async def merge(self, session_id: SessionId, pr_url: str, /) -> None:
        """Merge the PR; raises a domain error (``ConflictError`` when it cannot be merged)."""
        ...


class UnwiredPaneCapture:
    async def capture(self, session: SessionRecord, lines: int, /) -> str:
        raise NotWiredError("terminal capture is not wired into this daemon yet")


class UnwiredNotificationActions:
    async def mark_notification_read(self, notification_id: int, at: datetime, /) -> None:
        raise NotWiredError("marking notifications read is not wired into this daemon yet")

    async def resolve_notification(self, notification_id: int, at: datetime, /) -> None:
        raise NotWiredError("resolving notifications is not wired into this daemon yet")


class UnwiredPRMerger:
    async def merge(self, session_id: SessionId, pr_url: str, /) -> None:
        raise NotWiredError("merging is not wired into this daemon yet: merge on the PR's page")


@dataclass(frozen=True, slots=True)
class DashboardServices:
    """Everything the pages use besides ``ApiServices``. The daemon builds one."""

    reads: BoardReads
    store: DashboardStore
    browser: BrowserAuth
    agents: tuple[str, ...] = ()
    """Agent names offered by the New session form, the default first."""
    tmux_socket: str = ""
    """The daemon's private tmux socket, for the ``tmux attach`` command shown."""
    allowed_hosts: frozenset[str] = LOOPBACK_NAMES
    panes: PaneCapture = field(default_factory=UnwiredPaneCapture)
    notifications: NotificationActions = field(default_factory=UnwiredNotificationActions)
    merger: PRMerger = field(default_factory=UnwiredPRMerger)


__all__ = [
    "PEEK_LINES",
    "DashboardServices",
    "NotWiredError",
    "NotificationActions",
    "PRMerger",
    "PaneCapture",
    "PeekUnavailableError",
    "UnwiredNotificationActions",
    "UnwiredPRMerger",
    "UnwiredPaneCapture",
]
