"""Dashboard sign-in: one-time login tokens, signed session cookies, CSRF tokens, and the
Host and Origin checks (adapters/http/dashboard/security.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.http.dashboard.security import (
    COOKIE_TTL,
    LOGIN_TOKEN_TTL,
    MAX_PENDING_LOGINS,
    BrowserAuth,
    allowed_hosts,
    csrf_ok,
    hostname,
    origin_matches,
)
from adapters.memory import ManualClock

TOKEN = "daemon-token-0123456789abcdef"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_a_login_token_redeems_once(clock: ManualClock) -> None:
    auth = BrowserAuth(TOKEN, clock)
    token, expires = auth.issue_login_token()
    assert expires == clock.now() + LOGIN_TOKEN_TTL
    cookie = auth.redeem(token)
    assert cookie is not None
    assert auth.session(cookie) is not None
    assert auth.redeem(token) is None


def test_a_login_token_expires_after_a_minute(clock: ManualClock) -> None:
    auth = BrowserAuth(TOKEN, clock)
    token, _ = auth.issue_login_token()
    clock.advance(LOGIN_TOKEN_TTL - timedelta(microseconds=1))
    fresh, _ = auth.issue_login_token()
    assert auth.redeem(token) is not None
    clock.advance(LOGIN_TOKEN_TTL)
    assert auth.redeem(fresh) is None
    assert auth.redeem("") is None


def test_pending_login_tokens_are_bounded(clock: ManualClock) -> None:
    auth = BrowserAuth(TOKEN, clock)
    first, _ = auth.issue_login_token()
    for _ in range(MAX_PENDING_LOGINS):
        auth.issue_login_token()
    assert auth.redeem(first) is None  # the oldest made room


def test_a_cookie_is_signed_by_this_daemon_and_expires(clock: ManualClock) -> None:
    auth = BrowserAuth(TOKEN, clock)
    cookie = auth.redeem(auth.issue_login_token()[0])
    assert cookie is not None
    nonce, until, signature = cookie.split(".")
    assert auth.session(f"{nonce}.{int(until) + 1}.{signature}") is None  # extended by hand
    assert auth.session(f"x{nonce}.{until}.{signature}") is None
    flipped = "1" if signature[-1] == "0" else "0"  # always a different last character
    assert auth.session(f"{nonce}.{until}.{signature[:-1]}{flipped}") is None
    for junk in ("", "a", "a.b", "a.b.c", "..", None):
        assert auth.session(junk) is None
    assert BrowserAuth("another-daemon-token-0123", clock).session(cookie) is None
    clock.advance(COOKIE_TTL - timedelta(seconds=1))
    assert auth.session(cookie) is not None
    clock.advance(timedelta(seconds=1))
    assert auth.session(cookie) is None


def test_the_csrf_token_belongs_to_one_cookie(clock: ManualClock) -> None:
    auth = BrowserAuth(TOKEN, clock)
    one = auth.session(auth.redeem(auth.issue_login_token()[0]))
    two = auth.session(auth.redeem(auth.issue_login_token()[0]))
    assert one is not None
    assert two is not None
    assert csrf_ok(one, one.csrf_token)
    assert not csrf_ok(one, two.csrf_token)
    assert not csrf_ok(one, None)
    assert not csrf_ok(one, "")
    assert not csrf_ok(one, "\udcff")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8731", "127.0.0.1"),
        ("LOCALHOST:80", "localhost"),
        ("localhost", "localhost"),
        ("[::1]:8731", "::1"),
        ("[::1]", "::1"),
        ("evil.example:8731", "evil.example"),
        ("", ""),
    ],
)
def test_hostname(header: str, name: str) -> None:
    assert hostname(header) == name


def test_allowed_hosts() -> None:
    assert allowed_hosts("127.0.0.1") == {"localhost", "127.0.0.1", "::1"}
    assert "10.1.2.3" in allowed_hosts("10.1.2.3")
    assert allowed_hosts("0.0.0.0") == {"localhost", "127.0.0.1", "::1"}  # noqa: S104
    assert "box.lan" in allowed_hosts("127.0.0.1", extra=["box.lan:8731"])


def test_origin_matches_our_own_authority_only() -> None:
    assert origin_matches(None, "127.0.0.1:8731")
    assert origin_matches("http://127.0.0.1:8731", "127.0.0.1:8731")
    assert not origin_matches("http://127.0.0.1:9999", "127.0.0.1:8731")
    assert not origin_matches("http://localhost:8731", "127.0.0.1:8731")
    assert not origin_matches("null", "127.0.0.1:8731")
