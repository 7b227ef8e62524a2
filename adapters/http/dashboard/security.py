"""Browser sign-in for the dashboard: one-time login tokens, the session cookie, CSRF tokens,
the Host check, and the headers every page carries.

- ``orchestrator dashboard`` asks the daemon (with its bearer token) for a login token: 192
  random bits, good for one use within ``LOGIN_TOKEN_TTL``. ``GET /login?token=…`` swaps it
  for the session cookie and forgets it.
- The cookie is ``<nonce>.<expiry>.<HMAC>``, keyed by a key derived from the daemon token:
  nothing is stored, and a daemon restart (a new daemon token) signs every browser out.
  It is ``HttpOnly`` (no script reads it) and ``SameSite=Strict`` (no other site's page
  sends it).
- SameSite does not cover another port of the same host (a site is scheme and host), so a
  cookie-authenticated POST also needs the page's CSRF token in ``X-CSRF-Token``: an HMAC of
  the cookie's nonce, which only a page rendered for that cookie knows.
- DNS rebinding (a hostile name resolving to 127.0.0.1) would make the browser send our
  cookie to a page of the attacker's origin; requests whose ``Host`` is not a loopback name
  or the bound host are refused, so such a page reads nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from orchestrator.ports import Clock

COOKIE_NAME: Final = "orchestrator_session"
CSRF_HEADER: Final = "x-csrf-token"
LOGIN_TOKEN_TTL: Final = timedelta(seconds=60)
COOKIE_TTL: Final = timedelta(hours=12)
MAX_PENDING_LOGINS: Final = 64
"""Unredeemed login tokens kept at once; older ones are dropped first."""

LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})

# No inline script or style anywhere: everything the page runs is /ui/static/app.js.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS: Final = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A signed-in browser: its cookie's nonce and the CSRF token its pages carry."""

    nonce: str
    csrf_token: str
    expires_at: datetime


class BrowserAuth:
    """Issues and checks login tokens, session cookies and CSRF tokens."""

    def __init__(self, daemon_token: str, clock: Clock) -> None:
        self._key = hmac.new(daemon_token.encode(), b"dashboard-session", hashlib.sha256).digest()
        self._clock = clock
        self._pending: dict[str, datetime] = {}

    def issue_login_token(self) -> tuple[str, datetime]:
        """A fresh one-time login token and when it expires."""
        now = self._clock.now()
        self._pending = {t: at for t, at in self._pending.items() if at > now}
        while len(self._pending) >= MAX_PENDING_LOGINS:
            del self._pending[next(iter(self._pending))]
        token = secrets.token_urlsafe(24)
        expires = now + LOGIN_TOKEN_TTL
        self._pending[token] = expires
        return token, expires

    def redeem(self, token: str) -> str | None:
        """The cookie value for a valid, unused, unexpired login token; None otherwise. A
        token is gone after its first presentation, valid or late."""
        expires = self._pending.pop(token, None)
        if expires is None or self._clock.now() >= expires:
            return None
        nonce = secrets.token_urlsafe(18)
        until = int((self._clock.now() + COOKIE_TTL).timestamp())
        return f"{nonce}.{until}.{self._sign(f'cookie:{nonce}.{until}')}"

    def session(self, cookie: str | None) -> BrowserSession | None:
        """The browser session of a cookie value, if it is ours and unexpired."""
        if not cookie:
            return None
        nonce, _, rest = cookie.partition(".")
        until, _, signature = rest.partition(".")
        if not nonce or not until.isdigit() or not signature:
            return None
        expected = self._sign(f"cookie:{nonce}.{until}")
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        if self._clock.now().timestamp() >= int(until):
            return None
        expires = datetime.fromtimestamp(int(until), tz=UTC)
        return BrowserSession(nonce, self._sign(f"csrf:{nonce}"), expires)

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()


def csrf_ok(session: BrowserSession, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(
        presented.encode("utf-8", "surrogateescape"), session.csrf_token.encode()
    )


def hostname(host_header: str) -> str:
    """The host name of a ``Host`` (or ``Origin`` authority) value, lower case: the port
    and an IPv6 literal's brackets removed."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def allowed_hosts(bound_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names, plus the host the daemon is bound to when it is a specific one."""
    names = set(LOOPBACK_NAMES) | {hostname(h) for h in extra}
    bound = hostname(bound_host) if bound_host.startswith("[") else bound_host.lower()
    if bound and bound not in {"0.0.0.0", "::"}:  # noqa: S104 - compared, not bound
        names.add(bound)
    return frozenset(names)


def origin_matches(origin: str | None, host_header: str) -> bool:
    """A browser's ``Origin`` names our own scheme-less authority (absent is fine: same-
    origin GETs and older browsers send none; the CSRF token still has to match)."""
    if origin is None:
        return True
    scheme, _, authority = origin.partition("://")
    return scheme in {"http", "https"} and authority.lower() == host_header.strip().lower()


__all__ = [
    "COOKIE_NAME",
    "COOKIE_TTL",
    "CSRF_HEADER",
    "LOGIN_TOKEN_TTL",
    "LOOPBACK_NAMES",
    "PAGE_HEADERS",
    "BrowserAuth",
    "BrowserSession",
    "allowed_hosts",
    "csrf_ok",
    "hostname",
    "origin_matches",
]
