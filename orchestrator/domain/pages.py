"""A page of sessions with the facts a listing shows, and its opaque keyset cursor.

Sessions are listed in their stable order, (project, num): a session's place never moves,
so a cursor (the last listed session's place) resumes exactly after it however many
sessions were created meanwhile, and no session is listed twice.
"""

from __future__ import annotations

import base64
import binascii

import msgspec

from orchestrator.domain.errors import InvalidInputError
from orchestrator.domain.model import Model, PRFacts, ProjectId, SessionRecord


class SessionListing(Model, frozen=True, kw_only=True):
    """A session and the PR that speaks for it (docs/behaviour.md, "PR facts")."""

    record: SessionRecord
    pr: PRFacts


class SessionPage(Model, frozen=True, kw_only=True):
    """Up to ``limit`` sessions; ``next_cursor`` continues after the last, None at the end."""

    items: tuple[SessionListing, ...]
    next_cursor: str | None = None


_PLACE = msgspec.json.Decoder(tuple[str, int])


def encode_cursor(project_id: ProjectId, num: int) -> str:
    """The cursor that resumes after the session at (``project_id``, ``num``)."""
    return base64.urlsafe_b64encode(msgspec.json.encode((project_id, num))).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[ProjectId, int]:
    """The place ``encode_cursor`` wrote. Raises ``InvalidInputError`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return _PLACE.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidInputError(f"invalid page cursor {cursor[:40]!r}") from None


def check_page_limit(limit: int) -> None:
    if limit < 1:
        raise InvalidInputError(f"a page holds at least one session, not {limit}")
