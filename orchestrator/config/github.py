"""The ``scm.github`` section of the config file: what a user may write there, checked key
by key (errors name the key as written), and the ``ScmConfig`` it gives."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET, UnsetType

from orchestrator.config.fields import NonEmpty, Strict, duration, given
from orchestrator.config.messages import quote
from orchestrator.config.schema import (
    GitHubBudgetConfig,
    GitHubConfig,
    GitHubLogTailConfig,
    GitHubPollConfig,
    ScmConfig,
)
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.scm import MergeMethod

__all__ = ["ScmSection", "load_scm"]


class _GitHubPoll(Strict, frozen=True, kw_only=True):
    repo: Any = UNSET
    pending: Any = UNSET
    settled: Any = UNSET
    draft: Any = UNSET
    max_age: Any = UNSET


class _GitHubLogTail(Strict, frozen=True, kw_only=True):
    lines: Annotated[int, msgspec.Meta(ge=1, le=1000)] | UnsetType = UNSET
    max_bytes: Annotated[int, msgspec.Meta(ge=256, le=1 << 20)] | UnsetType = UNSET


class _GitHubBudget(Strict, frozen=True, kw_only=True):
    background_reserve: Any = UNSET  # a count or "N%": checked by hand
    kick_reserve: Any = UNSET
    max_concurrency: Annotated[int, msgspec.Meta(ge=1, le=16)] | UnsetType = UNSET


class _GitHub(Strict, frozen=True, kw_only=True):
    enabled: bool | UnsetType = UNSET
    api_url: NonEmpty | UnsetType = UNSET
    graphql_url: NonEmpty | UnsetType = UNSET
    host: NonEmpty | UnsetType = UNSET
    token_env: NonEmpty | UnsetType = UNSET
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=25)] | UnsetType = UNSET
    kick_debounce: Any = UNSET
    webhook_secret: str | UnsetType = UNSET
    merge_method: MergeMethod | UnsetType = UNSET
    poll: _GitHubPoll | None = None
    review_interval: Any = UNSET
    log_tail: _GitHubLogTail | None = None
    budget: _GitHubBudget | None = None


class ScmSection(Strict, frozen=True, kw_only=True):
    github: _GitHub | None = None


_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_PERCENT: Final = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_RESERVE_HINT: Final = 'a number of requests (like 500) or a share of the limit (like "10%")'


def _http_url(raw: str | UnsetType, where: str) -> str | UnsetType:
    if raw is UNSET:
        return UNSET
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{where}: expected an absolute http(s) URL, got {quote(raw)}")
    return raw.rstrip("/")


def _reserve(raw: object, where: str) -> float | UnsetType:
    """A request count (an integer) or a percentage of the limit; a share is kept below 1,
    a count at 1 or more, which is how the rate budget tells them apart."""
    if raw is UNSET:
        return UNSET
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return float(raw) if raw >= 1 else 0.0
    match = _PERCENT.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        raise ConfigError(f"{where}: {quote(raw)} is not {_RESERVE_HINT}")
    share = float(match[1]) / 100
    if share >= 1:
        raise ConfigError(f"{where}: {quote(raw)} must be below 100%")
    return share


def _github_host(api_url: str) -> str:
    """Where repositories live for an API base: ``github.com`` for ``api.github.com``, the
    Enterprise host itself for ``https://HOST/api/v3``."""
    host = (urlsplit(api_url).hostname or "").lower()
    return "github.com" if host == "api.github.com" else host


def load_scm(raw: ScmSection | None) -> ScmConfig:
    section = (raw.github if raw is not None else None) or _GitHub()
    where = "scm.github"
    poll = section.poll or _GitHubPoll()
    tail = section.log_tail or _GitHubLogTail()
    budget = section.budget or _GitHubBudget()
    api_url = _http_url(section.api_url, f"{where}.apiUrl")
    host = section.host
    if host is not UNSET and not _HOST.fullmatch(host):
        raise ConfigError(f"{where}.host: {quote(host)} is not a host name")
    if host is UNSET and api_url is not UNSET:
        host = _github_host(api_url)
    token_env = section.token_env
    if token_env is not UNSET and not _ENV_NAME.fullmatch(token_env):
        raise ConfigError(
            f"{where}.tokenEnv: {quote(token_env)} is not an environment variable name"
        )
    github = GitHubConfig(
        poll=GitHubPollConfig(
            **given(
                repo=duration(poll.repo, f"{where}.poll.repo"),
                pending=duration(poll.pending, f"{where}.poll.pending"),
                settled=duration(poll.settled, f"{where}.poll.settled"),
                draft=duration(poll.draft, f"{where}.poll.draft"),
                max_age=duration(poll.max_age, f"{where}.poll.maxAge"),
            )
        ),
        log_tail=GitHubLogTailConfig(**given(lines=tail.lines, max_bytes=tail.max_bytes)),
        budget=GitHubBudgetConfig(
            **given(
                background_reserve=_reserve(
                    budget.background_reserve, f"{where}.budget.backgroundReserve"
                ),
                kick_reserve=_reserve(budget.kick_reserve, f"{where}.budget.kickReserve"),
                max_concurrency=budget.max_concurrency,
            )
        ),
        **given(
            enabled=section.enabled,
            api_url=api_url,
            graphql_url=_http_url(section.graphql_url, f"{where}.graphqlUrl"),
            host=host.lower() if isinstance(host, str) else host,
            token_env=token_env,
            batch_size=section.batch_size,
            kick_debounce=duration(section.kick_debounce, f"{where}.kickDebounce"),
            webhook_secret=section.webhook_secret,
            merge_method=section.merge_method,
            review_interval=duration(section.review_interval, f"{where}.reviewInterval"),
        ),
    )
    return ScmConfig(github=github)
