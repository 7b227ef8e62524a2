"""The HTTP client for GitHub's REST and GraphQL APIs: headers, token, budget, errors.

One ``httpx.AsyncClient`` (it runs under trio as is). Every request passes the shared
``RateBudget`` first and feeds it the response's rate headers after. Redirects are
followed here, by hand, so the token is sent only to GitHub's own API origin: a job log
answers with a redirect to a signed URL on another host, which must not see it. A 401
re-reads the token once (it may have been rotated) before giving up. Failures become
the domain's ``SCM*`` errors; none of their messages can contain the token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import httpx
import msgspec

from adapters.github.auth import NoToken, Token, TokenSource
from adapters.github.budget import SECONDARY_MARKERS, RateBudget, Resource
from orchestrator.domain.scm import (
    NotModified,
    SCMAuthFailed,
    SCMError,
    SCMForbidden,
    SCMNotFound,
    SCMPriority,
    SCMRejected,
    SCMUnavailable,
)

DEFAULT_API_URL: Final = "https://api.github.com"
API_VERSION: Final = "2022-11-28"
USER_AGENT: Final = "orchestrator-scm-observer"
MAX_REDIRECTS: Final = 5
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


def graphql_url_for(api_url: str) -> str:
    """GitHub's GraphQL endpoint next to a REST base: ``api.github.com/graphql``, and
    ``HOST/api/graphql`` for GitHub Enterprise Server's ``HOST/api/v3``."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base.removesuffix("/v3") + "/graphql"
    return base + "/graphql"


@dataclass(frozen=True)
class Fresh:
    """A 2xx answer: its body, its validator and the next page's URL, if any."""

    status: int
    content: bytes
    etag: str | None = None
    next_url: str | None = None


class GraphQLError(msgspec.Struct, frozen=True):
    message: str = ""
    type: str | None = None
    path: tuple[str | int, ...] = ()


class _GraphQLEnvelope(msgspec.Struct, frozen=True):
    data: dict[str, msgspec.Raw] | None = None
    errors: tuple[GraphQLError, ...] = ()


@dataclass(frozen=True)
class GraphQLAnswer:
    """A GraphQL reply with data: each top-level alias' raw JSON (``null`` when that
    alias failed) and GitHub's errors, which name the alias in ``path[0]``."""

    data: Mapping[str, msgspec.Raw]
    errors: tuple[GraphQLError, ...] = ()


class _Message(msgspec.Struct, frozen=True):
    message: str = ""


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


class GitHubClient:
    """REST and GraphQL calls to one GitHub host. ``transport`` and ``mounts`` (one
    transport per origin, e.g. the API and its log storage) are for tests
    (``httpx.MockTransport``, ``httpx.ASGITransport``); the URLs, for GitHub Enterprise."""

    def __init__(
        self,
        tokens: TokenSource,
        budget: RateBudget,
        *,
        api_url: str = DEFAULT_API_URL,
        graphql_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        timeout: httpx.Timeout | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.budget = budget
        self.tokens = tokens
        self.api_url = httpx.URL(api_url.rstrip("/") + "/")
        self.graphql_url = httpx.URL(graphql_url or graphql_url_for(api_url))
        self._trusted = {_origin(self.api_url), _origin(self.graphql_url)}
        self._http = httpx.AsyncClient(
            transport=transport,
            mounts=dict(mounts) if mounts else None,
            timeout=timeout or httpx.Timeout(10.0, connect=5.0),
            limits=httpx.Limits(max_connections=4),
            follow_redirects=False,  # followed by hand: see _exchange
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": user_agent,
            },
        )

    def __repr__(self) -> str:
        return f"GitHubClient(api_url={str(self.api_url)!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def url(self, path: str) -> httpx.URL:
        """An API path (``repos/o/r/pulls``) or an absolute URL GitHub handed us (a
        ``Link`` header's next page)."""
        return httpx.URL(path) if "://" in path else self.api_url.join(path.lstrip("/"))

    # -- REST

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        etag: str | None = None,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> Fresh | NotModified:
        """A GET; with ``etag``, conditional: an unchanged resource answers ``NotModified``
        (free on GitHub's primary limit)."""
        url = self.url(path).copy_merge_params(dict(params or {}))
        headers = {"If-None-Match": etag} if etag else {}
        async with self._request("GET", url, Resource.CORE, priority, headers=headers) as answer:
            await answer.aread()
            if answer.status_code == 304:
                return NotModified(etag=answer.headers.get("etag") or etag)
            return self._fresh(answer)

    async def send_json(
        self,
        method: str,
        path: str,
        body: object,
        *,
        priority: SCMPriority = SCMPriority.KICK,
    ) -> Fresh:
        """A write (PUT, POST, PATCH) with a JSON body. Never retried by this client."""
        content = msgspec.json.encode(body)
        headers = {"Content-Type": "application/json"}
        async with self._request(
            method, self.url(path), Resource.CORE, priority, headers=headers, content=content
        ) as answer:
            await answer.aread()
            return self._fresh(answer)

    @asynccontextmanager
    async def stream(
        self, path: str, *, priority: SCMPriority = SCMPriority.BACKGROUND
    ) -> AsyncIterator[httpx.Response]:
        """A GET whose (redirected) body is read as a stream by the caller."""
        async with self._request("GET", self.url(path), Resource.CORE, priority) as answer:
            yield answer

    # -- GraphQL

    async def graphql(
        self,
        query: str,
        variables: Mapping[str, object],
        *,
        priority: SCMPriority = SCMPriority.BACKGROUND,
    ) -> GraphQLAnswer:
        """A GraphQL query. Rate limits raise ``SCMRateLimited`` (GitHub reports an
        exhausted bucket as a 200); a reply without data raises; per-alias errors are
        the caller's to read."""
        content = msgspec.json.encode({"query": query, "variables": variables})
        headers = {"Content-Type": "application/json"}
        async with self._request(
            "POST", self.graphql_url, Resource.GRAPHQL, priority, headers=headers, content=content
        ) as answer:
            await answer.aread()
            fresh = self._fresh(answer)
            response_headers = answer.headers
        try:
            envelope = msgspec.json.decode(fresh.content, type=_GraphQLEnvelope)
        except msgspec.DecodeError as error:  # malformed, or not the shape asked for
            raise SCMUnavailable(f"GraphQL answered with malformed JSON: {error}") from None
        for problem in envelope.errors:
            if problem.type == "RATE_LIMITED":
                raise self.budget.record_graphql_rate_limited(response_headers)
            if any(marker in problem.message.lower() for marker in SECONDARY_MARKERS):
                # GraphQL may report a secondary limit as a 200 too: treat it as the 403.
                limited = self.budget.record(
                    Resource.GRAPHQL, 403, response_headers, problem.message
                )
                if limited is not None:
                    raise limited
        if envelope.data is None:
            raise _graphql_failure(envelope.errors)
        return GraphQLAnswer(data=envelope.data, errors=envelope.errors)

    # -- the exchange

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        url: httpx.URL,
        resource: Resource,
        priority: SCMPriority,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Send (re-reading the token once on a 401), raise on any failure status, and
        yield the open, successful (2xx/304) response. A network failure, also while the
        caller reads the body, becomes ``SCMUnavailable``."""
        answer: httpx.Response | None = None
        try:
            token = await self._token()
            answer = await self._exchange(method, url, token, resource, priority, headers, content)
            if answer.status_code == 401:
                await answer.aclose()
                self.tokens.invalidate(token)
                fresh = await self._token()
                if fresh.same_secret(token):
                    raise SCMAuthFailed(f"GitHub rejected the token from {token.source} (401)")
                token = fresh
                answer = await self._exchange(
                    method, url, token, resource, priority, headers, content
                )
                if answer.status_code == 401:
                    self.tokens.invalidate(token)
            await self._raise_for_status(answer, token)
            yield answer
        except httpx.HTTPError as error:
            raise SCMUnavailable(f"{method} {url.path}: {type(error).__name__}") from None
        finally:
            if answer is not None:
                await answer.aclose()

    async def _token(self) -> Token:
        found = await self.tokens.get()
        if isinstance(found, NoToken):
            raise SCMAuthFailed(f"no GitHub token: {found.reason}")
        return found

    async def _exchange(
        self,
        method: str,
        url: httpx.URL,
        token: Token,
        resource: Resource,
        priority: SCMPriority,
        headers: Mapping[str, str] | None,
        content: bytes | None,
    ) -> httpx.Response:
        """One request and its redirects, holding one budget slot. The token goes only to
        the API's own origins; only their responses carry rate headers worth reading."""
        async with self.budget.slot(resource, priority):
            for _ in range(MAX_REDIRECTS + 1):
                trusted = _origin(url) in self._trusted
                sent = dict(headers or {})
                if trusted:
                    sent["Authorization"] = f"Bearer {token.reveal()}"
                request = self._http.build_request(method, url, headers=sent, content=content)
                answer = await self._http.send(request, stream=True)
                location = answer.headers.get("location")
                if trusted:
                    body = ""
                    if answer.status_code in (403, 429):
                        body = (await answer.aread()).decode(errors="replace")
                    limited = self.budget.record(resource, answer.status_code, answer.headers, body)
                    if limited is not None:
                        await answer.aclose()
                        raise limited
                if answer.status_code not in _REDIRECTS or not location or method != "GET":
                    return answer
                await answer.aclose()
                url = url.join(location)
        raise SCMUnavailable(f"{method} {url.path}: more than {MAX_REDIRECTS} redirects")

    async def _raise_for_status(self, answer: httpx.Response, token: Token) -> None:
        status = answer.status_code
        if 200 <= status < 300 or status == 304:
            return
        await answer.aread()
        what = f"{answer.request.method} {answer.request.url.path}: {status}"
        said = _message(answer.content)
        detail = f"{what} {said}".strip()
        if _origin(answer.request.url) not in self._trusted:
            # Where GitHub redirected us (a log's signed storage URL, which expires in a
            # minute): asking GitHub again gets a fresh one, so this is worth a retry.
            raise SCMUnavailable(f"{answer.request.method} redirect target: {status}")
        if status == 401:
            raise SCMAuthFailed(f"GitHub rejected the token from {token.source} (401)")
        if status in (404, 410):
            raise SCMNotFound(detail)
        if status in (403, 429):
            raise SCMForbidden(detail)  # rate limits were raised in _exchange
        if status >= 500:
            raise SCMUnavailable(detail)
        raise SCMRejected(detail)

    @staticmethod
    def _fresh(answer: httpx.Response) -> Fresh:
        next_link = answer.links.get("next", {}).get("url")
        return Fresh(
            status=answer.status_code,
            content=answer.content,
            etag=answer.headers.get("etag"),
            next_url=next_link,
        )


def _message(content: bytes) -> str:
    """GitHub's ``message`` from an error body, short; nothing for a body of another shape."""
    try:
        said = msgspec.json.decode(content, type=_Message).message
    except msgspec.DecodeError:
        return ""
    return " ".join(said.split())[:200]


def _graphql_failure(errors: tuple[GraphQLError, ...]) -> SCMError:
    said = "; ".join(e.message for e in errors)[:300] or "no data and no errors"
    kinds = {e.type for e in errors}
    if "NOT_FOUND" in kinds or "Could not resolve" in said:
        return SCMNotFound(f"GraphQL: {said}")
    if "FORBIDDEN" in kinds:
        return SCMForbidden(f"GraphQL: {said}")
    return SCMRejected(f"GraphQL: {said}")
