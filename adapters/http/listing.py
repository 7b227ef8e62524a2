"""``GET /sessions`` a page at a time: the store's session pages (each session with the PR
that speaks for it, in a bounded number of queries), their derived status, and the
``status`` / ``includeTerminated`` filters applied on the way.

A filter may leave out most of a store page, so the answer reads further pages until it
holds ``limit`` sessions or the listing ends; its cursor then resumes right after the last
session it holds. A listing that ended exactly at a page's end may answer one empty page
last: a client follows ``X-Next-Cursor`` until it is absent.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.domain.model import ProjectId, SessionStatus
from orchestrator.domain.pages import SessionListing, encode_cursor
from orchestrator.domain.status import derive_status
from orchestrator.ports import SessionStore

Keep = Callable[[SessionListing, SessionStatus], bool]


def listing_filter(statuses: frozenset[SessionStatus], *, include_terminated: bool) -> Keep:
    """Sessions with one of ``statuses`` (any when empty), terminated ones only if asked."""

    def keep(item: SessionListing, status: SessionStatus) -> bool:
        if statuses and status not in statuses:
            return False
        return include_terminated or not item.record.lifecycle.state.is_terminal

    return keep


async def filtered_page(
    store: SessionStore,
    *,
    limit: int,
    cursor: str | None,
    project_id: ProjectId | None,
    keep: Keep,
) -> tuple[list[tuple[SessionListing, SessionStatus]], str | None]:
    """Up to ``limit`` kept sessions after ``cursor``, each with its derived status, and the
    cursor after the last of them (None once the listing is done). A bad cursor raises
    ``InvalidInputError``."""
    kept: list[tuple[SessionListing, SessionStatus]] = []
    while True:
        page = await store.list_session_page(limit=limit, cursor=cursor, project_id=project_id)
        for n, item in enumerate(page.items, start=1):
            status = derive_status(item.record.lifecycle, item.pr)
            if not keep(item, status):
                continue
            kept.append((item, status))
            if len(kept) == limit:
                more = n < len(page.items) or page.next_cursor is not None
                place = encode_cursor(item.record.project_id, item.record.num)
                return kept, place if more else None
        if page.next_cursor is None:
            return kept, None
        cursor = page.next_cursor


__all__ = ["Keep", "filtered_page", "listing_filter"]
