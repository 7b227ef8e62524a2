"""Bearer tokens: one daemon token, and per-session hook tokens derived from it.

The daemon token (written to the run-file, mode 0600) opens every route. A session's hook
token is ``HMAC-SHA256(key=daemon token, msg=session id)`` in hex: the daemon can hand it to
the agent's hooks without storing anything, and it opens exactly one route — that session's
``POST /api/v1/sessions/{id}/activity``. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from orchestrator.domain.model import SessionId


class TokenAuthority:
    """Checks presented bearer tokens against the daemon token and session tokens."""

    def __init__(self, token: str) -> None:
        if len(token) < 16:
            raise ValueError("the daemon token must be at least 16 characters")
        self._token = token
        self._key = token.encode()

    @classmethod
    def generate(cls) -> TokenAuthority:
        """A fresh random daemon token (256 bits)."""
        return cls(secrets.token_urlsafe(32))

    @property
    def token(self) -> str:
        """The daemon token, for the run-file and the CLI."""
        return self._token

    def session_token(self, session_id: SessionId) -> str:
        """The hook token of one session: HMAC-SHA256 of its id under the daemon token."""
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()

    def is_daemon(self, presented: str) -> bool:
        return hmac.compare_digest(_bytes(presented), self._key)

    def is_session(self, presented: str, session_id: SessionId) -> bool:
        """Whether ``presented`` is the hook token of ``session_id``."""
        return hmac.compare_digest(_bytes(presented), self.session_token(session_id).encode())

    def session_of(self, presented: str, candidates: Iterable[SessionId]) -> SessionId | None:
        """Which of ``candidates`` ``presented`` is the hook token of, if any."""
        for session_id in candidates:
            if self.is_session(presented, session_id):
                return session_id
        return None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _bytes(text: str) -> bytes:
    # Header values arrive latin-1 decoded: any str is encodable, and a non-ASCII token
    # simply fails to match instead of raising inside compare_digest.
    return text.encode("utf-8", "surrogateescape")


__all__ = ["TokenAuthority", "bearer_token"]
