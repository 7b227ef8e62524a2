"""Scripted GitHub answers for ``httpx.MockTransport``: routes by method and path
pattern, GitHub-shaped JSON and rate headers, a second origin for log storage, and a log
of every request (headers included) for assertions."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import httpx
import trio

from adapters.github.auth import StaticToken, TokenSource
from adapters.github.budget import RateBudget
from adapters.github.client import GitHubClient
from adapters.github.provider import GitHubProvider
from adapters.github.retry import RetryPolicy

API = "https://api.github.test"
BLOB = "https://blob.test"
TOKEN = "ghp_TestTokenNeverSentElsewhere000000000"
EPOCH = 1_800_000_000.0

Responder = Callable[[httpx.Request, re.Match[str]], httpx.Response]


def now() -> float:
    """Budget time: epoch seconds that follow trio's (mock) clock."""
    return EPOCH + trio.current_time()


def rate_headers(
    remaining: int = 4999, *, limit: int = 5000, reset_in: float = 3600, resource: str = "core"
) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-used": str(limit - remaining),
        "x-ratelimit-reset": str(int(now() + reset_in)),
        "x-ratelimit-resource": resource,
    }


def reply(
    body: object = None,
    status: int = 200,
    *,
    etag: str | None = None,
    headers: Mapping[str, str] | None = None,
    resource: str = "core",
) -> httpx.Response:
    """A GitHub JSON answer with rate headers (and ``etag`` when given)."""
    sent = rate_headers(resource=resource) | dict(headers or {})
    if etag:
        sent["etag"] = etag
    if body is None:
        return httpx.Response(status, headers=sent)
    return httpx.Response(status, headers=sent, json=body)


def graphql_reply(
    data: object, errors: list[dict[str, object]] | None = None, **rate: int
) -> httpx.Response:
    body: dict[str, object] = {"data": data}
    if errors:
        body["errors"] = errors
    return httpx.Response(200, headers=rate_headers(resource="graphql", **rate), json=body)


class BrokenStream(httpx.AsyncByteStream):
    """A body that breaks off after ``chunks``, as a dropped connection does."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    responders: list[Responder]
    calls: int = 0


@dataclass
class MockGitHub:
    """Add routes with ``on``; each answers with its responders in turn (the last one
    repeats). An unrouted request answers 599 so a test sees it at once."""

    routes: list[_Route] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, url_pattern: str, *answers: httpx.Response | Responder) -> None:
        responders = [a if callable(a) else _constant(a) for a in answers]
        self.routes.insert(0, _Route(method, re.compile(url_pattern), responders))

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url)
        for route in self.routes:
            match = route.pattern.search(url)
            if route.method == request.method and match:
                responder = route.responders[min(route.calls, len(route.responders) - 1)]
                route.calls += 1
                return responder(request, match)
        return httpx.Response(599, text=f"no route for {request.method} {url}")

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def sent(self, url_pattern: str, method: str | None = None) -> list[httpx.Request]:
        pattern = re.compile(url_pattern)
        return [
            r
            for r in self.requests
            if pattern.search(str(r.url)) and (method is None or r.method == method)
        ]

    @staticmethod
    def body(request: httpx.Request) -> dict[str, object]:
        parsed: dict[str, object] = json.loads(request.content)
        return parsed


def _constant(response: httpx.Response) -> Responder:
    def respond(request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        # A fresh Response each time: one read body cannot be read again.
        if isinstance(response.stream, BrokenStream):
            return httpx.Response(
                response.status_code, headers=response.headers, stream=response.stream
            )
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=response.content,
        )

    return respond


def make_client(
    mock: MockGitHub,
    *,
    tokens: TokenSource | None = None,
    budget: RateBudget | None = None,
    api_url: str = API,
) -> GitHubClient:
    return GitHubClient(
        tokens or StaticToken(TOKEN, "GITHUB_TOKEN"),
        budget or RateBudget(clock=now),
        api_url=api_url,
        transport=mock.transport(),
    )


def make_provider(mock: MockGitHub, *, lines: int = 30, max_bytes: int = 8192) -> GitHubProvider:
    return GitHubProvider(
        make_client(mock),
        log_tail_lines=lines,
        log_tail_bytes=max_bytes,
        retry=RetryPolicy(max_delay=3600),  # on fake time only the attempt count stops
    )
