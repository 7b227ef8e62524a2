"""Where the GitHub token comes from: environment variables, then ``gh auth token``.

Resolved lazily (never on the daemon's readiness path), memoised for a while because
``gh`` is a subprocess, and dropped on a 401 so a rotated token is picked up. No token is
a state (``NoToken``), not an error: the observer reports itself disabled. The token's
value never reaches a repr, a log line or an exception message.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import trio

from orchestrator.domain.scm import SCMAuthState

log = logging.getLogger(__name__)

ENV_CHAIN: Final = ("ORCHESTRATOR_GITHUB_TOKEN", "GITHUB_TOKEN", "GH_TOKEN")
GH_SOURCE: Final = "gh auth token"


class Token:
    """A token and where it came from. Printing it shows only the source."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The secret itself, for the ``Authorization`` header and nothing else."""
        return self._value

    def same_secret(self, other: Token) -> bool:
        return self._value == other._value

    def __repr__(self) -> str:
        return f"Token(source={self.source!r}, value=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> str:
        raise TypeError("a Token is not serialisable")


@dataclass(frozen=True)
class NoToken:
    """No token could be found; ``reason`` says where we looked."""

    reason: str


class TokenSource(Protocol):
    async def get(self) -> Token | NoToken: ...

    def invalidate(self, token: Token | None = None) -> None:
        """Forget ``token`` (or whatever is memoised) after GitHub rejected it."""
        ...

    def state(self) -> SCMAuthState: ...


class StaticToken:
    """A fixed token (tests, or a token given in configuration)."""

    def __init__(self, value: str | None, source: str = "static") -> None:
        self._token = Token(value, source) if value else None

    async def get(self) -> Token | NoToken:
        return self._token or NoToken("no token configured")

    def invalidate(self, token: Token | None = None) -> None:
        return None  # nothing to re-read

    def state(self) -> SCMAuthState:
        if self._token is None:
            return SCMAuthState(available=False, reason="no token configured")
        return SCMAuthState(available=True, source=self._token.source)


class TokenChain:
    """``ORCHESTRATOR_GITHUB_TOKEN``, ``GITHUB_TOKEN``, ``GH_TOKEN``, then ``gh auth token``
    when ``gh`` is on ``PATH``. The answer (token or not) is kept for ``ttl`` seconds of
    ``clock``; ``on_change`` runs when the token differs from the last one (caches keyed
    to a token, like ETags, must go)."""

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        env_names: Sequence[str] = ENV_CHAIN,
        use_gh: bool = True,
        hostname: str | None = None,
        ttl: float = 300.0,
        gh_timeout: float = 10.0,
        clock: Callable[[], float] = trio.current_time,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._env = env
        self._env_names = tuple(env_names)
        self._use_gh = use_gh
        self._hostname = hostname
        self._ttl = ttl
        self._gh_timeout = gh_timeout
        self._clock = clock
        self._on_change = on_change
        self._memo: Token | NoToken | None = None
        self._memo_until = 0.0
        self._last_token: Token | None = None
        self._lock = trio.Lock()
        self.resolutions = 0  # how often the chain was walked (tests, diagnostics)

    def __repr__(self) -> str:
        return f"TokenChain(env_names={self._env_names!r}, use_gh={self._use_gh!r})"

    async def get(self) -> Token | NoToken:
        async with self._lock:
            if self._memo is not None and self._clock() < self._memo_until:
                return self._memo
            found = await self._resolve()
            self.resolutions += 1
            self._memo, self._memo_until = found, self._clock() + self._ttl
            if isinstance(found, Token):
                self._note_token(found)
            return found

    def invalidate(self, token: Token | None = None) -> None:
        memo = self._memo
        if token is None or (isinstance(memo, Token) and memo.same_secret(token)):
            self._memo = None

    def state(self) -> SCMAuthState:
        memo = self._memo
        if isinstance(memo, Token):
            return SCMAuthState(available=True, source=memo.source)
        if isinstance(memo, NoToken):
            return SCMAuthState(available=False, reason=memo.reason)
        return SCMAuthState(available=False, reason="not resolved yet")

    def _note_token(self, token: Token) -> None:
        last = self._last_token
        if last is not None and last.same_secret(token):
            return
        self._last_token = token
        log.info("GitHub token from %s", token.source)
        if last is not None and self._on_change is not None:
            self._on_change()

    async def _resolve(self) -> Token | NoToken:
        env = os.environ if self._env is None else self._env
        for name in self._env_names:
            value = env.get(name, "").strip()
            if value:
                return Token(value, name)
        tried = ", ".join(self._env_names)
        if not self._use_gh:
            return NoToken(f"none of {tried} is set")
        gh = shutil.which("gh", path=env.get("PATH"))
        if gh is None:
            return NoToken(f"none of {tried} is set and gh is not on PATH")
        return await self._from_gh(gh, env)

    async def _from_gh(self, gh: str, env: Mapping[str, str]) -> Token | NoToken:
        command = [gh, "auth", "token"]
        if self._hostname:
            command += ["--hostname", self._hostname]
        with trio.move_on_after(self._gh_timeout) as scope:
            try:
                done = await trio.run_process(
                    command,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    env=dict(env),
                )
            except OSError as error:
                return NoToken(f"{GH_SOURCE} could not run: {error.strerror or error}")
        if scope.cancelled_caught:
            return NoToken(f"{GH_SOURCE} timed out after {self._gh_timeout:g}s")
        value = done.stdout.decode(errors="replace").strip()
        if done.returncode != 0 or not value:
            # gh explains itself on stderr ("not logged in…"); its stdout is never shown.
            said = done.stderr.decode(errors="replace").strip().splitlines()
            detail = said[0][:200] if said else f"exit status {done.returncode}"
            return NoToken(f"{GH_SOURCE} failed: {detail}")
        return Token(value.splitlines()[0], GH_SOURCE)
