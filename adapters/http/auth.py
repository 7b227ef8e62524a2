"""Bearer tokens: one daemon token, and per-session hook tokens under a separate hook key.

The daemon token (written to the run-file, mode 0600) opens every route; it is new at every
start, and the CLI reads it from the run-file. A session's hook token is
``<session id>.<hex HMAC-SHA256(key=hook key, msg=session id)>``: the daemon hands it to the
agent's hooks without storing anything, and it opens exactly one route — that session's
``POST /api/v1/sessions/{id}/activity``. The hook key is kept in the data dir, so hook tokens
outlive a restart; rotating it (``rotate_hook_key``) invalidates every token issued before.

A token names its session, so checking one costs at most one MAC whatever the number of
sessions (``macs_computed`` counts them, for tests). Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Final

from orchestrator.domain.model import SessionId

HOOK_KEY_BYTES: Final = 32
MIN_DAEMON_TOKEN: Final = 16
_SEPARATOR: Final = "."


class TokenAuthority:
    """Checks presented bearer tokens against the daemon token and session hook tokens.

    ``hook_key`` defaults to a fresh random key (hook tokens then last as long as this
    object); ``save_hook_key`` is called with a new key before ``rotate_hook_key`` starts
    using it, so a key that could not be kept is never handed out.
    """

    def __init__(
        self,
        token: str,
        hook_key: bytes | None = None,
        *,
        save_hook_key: Callable[[bytes], None] | None = None,
    ) -> None:
        if len(token) < MIN_DAEMON_TOKEN:
            raise ValueError(f"the daemon token must be at least {MIN_DAEMON_TOKEN} characters")
        if hook_key is not None and len(hook_key) < MIN_DAEMON_TOKEN:
            raise ValueError(f"the hook key must be at least {MIN_DAEMON_TOKEN} bytes")
        self._token = token
        self._token_bytes = token.encode()
        self._hook_key = hook_key if hook_key is not None else new_hook_key()
        self._save_hook_key = save_hook_key
        self.macs_computed = 0
        """How many MACs this authority has computed (issuing and checking)."""

    @classmethod
    def generate(cls, hook_key: bytes | None = None) -> TokenAuthority:
        """A fresh random daemon token (256 bits) over ``hook_key`` (default: random)."""
        return cls(new_daemon_token(), hook_key)

    @property
    def token(self) -> str:
        """The daemon token, for the run-file and the CLI."""
        return self._token

    def session_token(self, session_id: SessionId) -> str:
        """The hook token of one session: ``<session id>.<MAC of the id>``."""
        return f"{session_id}{_SEPARATOR}{self._mac(session_id)}"

    def is_daemon(self, presented: str) -> bool:
        return hmac.compare_digest(_bytes(presented), self._token_bytes)

    def session_of(self, presented: str) -> SessionId | None:
        """The session ``presented`` is a valid hook token of, if any: one MAC at most."""
        named, separator, mac = presented.rpartition(_SEPARATOR)
        if not separator or not named or not mac:
            return None
        if hmac.compare_digest(_bytes(mac), self._mac(named).encode()):
            return named
        return None

    def rotate_hook_key(self) -> None:
        """Replace the hook key: every hook token issued so far stops working."""
        key = new_hook_key()
        if self._save_hook_key is not None:
            self._save_hook_key(key)
        self._hook_key = key

    def _mac(self, session_id: str) -> str:
        self.macs_computed += 1
        message = session_id.encode("utf-8", "surrogateescape")
        return hmac.new(self._hook_key, message, hashlib.sha256).hexdigest()


def new_daemon_token() -> str:
    return secrets.token_urlsafe(32)


def new_hook_key() -> bytes:
    return secrets.token_bytes(HOOK_KEY_BYTES)


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


__all__ = [
    "HOOK_KEY_BYTES",
    "TokenAuthority",
    "bearer_token",
    "new_daemon_token",
    "new_hook_key",
]
