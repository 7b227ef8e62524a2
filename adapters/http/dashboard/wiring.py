"""The dashboard's three capabilities over the daemon's real ports.

``adapters.http.dashboard.services`` declares what the pages need (a pane capture,
notification marks, a merger); these adapt the runtime, the store and the PR actions the
JSON API already uses, so a button on the page and the CLI go through the same code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

import trio

from adapters.http.dashboard.services import PeekUnavailableError
from orchestrator.domain.errors import NotFoundError
from orchestrator.domain.model import SessionId, SessionRecord
from orchestrator.domain.text import clean_text
from orchestrator.ports import NotificationMarks, RuntimeHandle
from orchestrator.reaper import runtime_handle

PEEK_TIMEOUT: Final = 2.0
"""Seconds a peek waits for tmux: a hung server must never hang the page."""


class OutputSource(Protocol):
    """What a peek reads: the runtime's last lines of a pane ("" when it cannot show them)."""

    async def last_output(self, handle: RuntimeHandle, lines: int) -> str: ...


class RuntimePaneCapture:
    """The terminal peek: the pane's last lines, cleaned of control and bidi sequences
    (the template escapes the rest), or a notice saying why there are none."""

    def __init__(self, runtime: OutputSource, *, timeout: float = PEEK_TIMEOUT) -> None:
        self._runtime = runtime
        self._timeout = timeout

    async def capture(self, session: SessionRecord, lines: int, /) -> str:
        if session.lifecycle.state.is_terminal:
            raise PeekUnavailableError("the session has ended: its pane is gone")
        handle = runtime_handle(session)
        if handle is None:
            raise PeekUnavailableError("this session has no pane yet")
        with trio.move_on_after(self._timeout):
            text = await self._runtime.last_output(handle, lines)
            if not text.strip():
                raise PeekUnavailableError("the pane shows nothing yet")
            return "\n".join(clean_text(text).splitlines()[-lines:])
        raise PeekUnavailableError(f"tmux did not answer within {self._timeout:g} s")


class StoreNotificationActions:
    """Mark read / resolve through the store, as ``POST /notifications/{id}/…`` does."""

    def __init__(self, store: NotificationMarks) -> None:
        self._store = store

    async def mark_notification_read(self, notification_id: int, at: datetime, /) -> None:
        if not await self._store.mark_notification_read(notification_id, at):
            raise NotFoundError(f"notification {notification_id} not found")

    async def resolve_notification(self, notification_id: int, at: datetime, /) -> None:
        if not await self._store.resolve_notification(notification_id, at):
            raise NotFoundError(f"notification {notification_id} not found")


class SessionMerger(Protocol):
    async def merge(self, session_id: SessionId) -> object: ...


class PRActionsMerger:
    """Merge from a card through the PR actions behind ``orchestrator pr merge`` (the same
    mergeability checks and refusals)."""

    def __init__(self, actions: SessionMerger) -> None:
        self._actions = actions

    async def merge(self, session_id: SessionId, pr_url: str, /) -> None:
        await self._actions.merge(session_id)


__all__ = ["PEEK_TIMEOUT", "PRActionsMerger", "RuntimePaneCapture", "StoreNotificationActions"]
