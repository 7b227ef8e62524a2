"""What every request to the fake API goes through, whatever the endpoint: the User-Agent and
token checks, injected faults, the primary limit, ETags with ``If-None-Match`` (a 304 costs
nothing on the primary limit), charging, the ``x-ratelimit-*`` headers, and the request log.

Endpoints are plain handlers returning an :class:`ApiResult`; the gateway turns it into the
HTTP response GitHub would send."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.fakes.github import bodies
from tests.fakes.github.faults import (
    ErrorStatus,
    Fault,
    Faults,
    GraphQLRateLimited,
    PrimaryExhausted,
    SecondaryLimit,
    Truncate,
)
from tests.fakes.github.model import Account
from tests.fakes.github.ratelimit import ANONYMOUS
from tests.fakes.github.requestlog import LoggedRequest, RequestLog
from tests.fakes.github.world import World

API_VERSION = "2022-11-28"
NO_USER_AGENT = (
    "Request forbidden by administrative rules. Please make sure your request has a "
    "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api"
    "#user-agent-required). Check https://developer.github.com for other possible causes."
)


@dataclass(frozen=True)
class Caller:
    token: str | None
    account: Account | None

    @property
    def identity(self) -> str:
        return self.account.login if self.account else ANONYMOUS


@dataclass
class ApiResult:
    status: int = 200
    body: object = None  # JSON-able; None sends no body
    headers: dict[str, str] = field(default_factory=dict)
    conditional: bool = False  # a JSON GET that gets an ETag and honours If-None-Match
    points: int = 1  # charged to the primary limit, unless the answer is a 304
    already_charged: bool = False  # GraphQL charges before executing, for rateLimit's sake
    text: str | None = None  # a non-JSON body


class ApiError(Exception):
    """Raised by a handler to answer with an error (or a redirect) at once."""

    def __init__(
        self, status: int, body: object, *, headers: dict[str, str] | None = None, points: int = 1
    ) -> None:
        super().__init__(status)
        self.status, self.body, self.points = status, body, points
        self.headers = headers or {}


Handler = Callable[[Request, Caller], Awaitable[ApiResult]]


class Gateway:
    def __init__(self, world: World, faults: Faults, log: RequestLog) -> None:
        self.world, self.faults, self.log = world, faults, log
        self._etag_salt = 0
        self._etag_digests: dict[str, str] = {}  # opaque ETag -> digest of the body it tagged
        self._request_ids = itertools.count(1)

    def rotate_etags(self) -> None:
        """Issue new ETags for unchanged bodies; an old one still earns a 304 (with the new
        ETag), as GitHub may rotate validators."""
        self._etag_salt += 1

    def endpoint(
        self, handler: Handler, *, resource: str = "core", free: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """``free``: never refused for an exhausted limit (``GET /rate_limit``)."""

        async def serve(request: Request) -> Response:
            return await self._serve(request, handler, resource, free)

        return serve

    async def _serve(
        self, request: Request, handler: Handler, resource: str, free: bool
    ) -> Response:
        token = _token(request)
        caller = Caller(token, self.world.account_for_token(token) if token else None)
        request_id = self._request_id()
        taken = self.faults.take(request.method, request.url.path, token)
        if taken.delay:
            await trio.sleep(taken.delay)
        result = await self._result(
            request, handler, resource, free, caller, taken.fault, request_id
        )
        if result.conditional and result.status == 200:
            self._apply_etag(request, result)
        points = 0 if result.status == 304 else result.points
        if points and not result.already_charged:
            self.world.rate_limits.charge(caller.identity, resource, points)
        headers = {
            **self.world.rate_limits.headers(caller.identity, resource),
            "x-github-request-id": request_id,
            "x-github-api-version-selected": API_VERSION,
            "x-github-media-type": "github.v3; format=json",
            "vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
            **result.headers,
        }
        self.log.append(
            LoggedRequest(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                token=token,
                resource=resource,
                status=result.status,
                points=points,
                if_none_match=request.headers.get("if-none-match"),
                fault=type(taken.fault).__name__ if taken.fault else None,
                headers=dict(request.headers),
            )
        )
        return _response(result, headers, taken.fault)

    async def _result(
        self,
        request: Request,
        handler: Handler,
        resource: str,
        free: bool,
        caller: Caller,
        fault: Fault | None,
        request_id: str,
    ) -> ApiResult:
        graphql = resource == "graphql"
        if not request.headers.get("user-agent"):
            return ApiResult(403, text=NO_USER_AGENT, points=0)
        if caller.token and caller.account is None:
            return ApiResult(401, bodies.bad_credentials(), points=0)
        if fault is not None and not isinstance(fault, Truncate):
            return self._fault_result(fault, caller, resource, request_id)
        bucket = self.world.rate_limits.bucket(caller.identity, resource)
        if not graphql and not free and bucket.remaining == 0:
            return self._primary_refusal(403, caller, request_id)
        try:
            return await handler(request, caller)
        except ApiError as error:
            return ApiResult(error.status, error.body, headers=error.headers, points=error.points)

    def _fault_result(
        self, fault: Fault, caller: Caller, resource: str, request_id: str
    ) -> ApiResult:
        graphql = resource == "graphql"
        if isinstance(fault, SecondaryLimit):
            headers = {} if fault.retry_after is None else {"retry-after": str(fault.retry_after)}
            body = bodies.secondary_limit(fault.status, request_id)
            return ApiResult(fault.status, body, headers=headers, points=0)
        if isinstance(fault, PrimaryExhausted | GraphQLRateLimited):
            exhausted = "graphql" if isinstance(fault, GraphQLRateLimited) else resource
            self.world.rate_limits.exhaust(caller.identity, exhausted)
            if graphql and caller.account is not None:
                error_type = (
                    fault.error_type if isinstance(fault, GraphQLRateLimited) else "RATE_LIMITED"
                )
                return ApiResult(
                    200, bodies.graphql_rate_limited(caller.account.id, error_type), points=0
                )
            status = fault.status if isinstance(fault, PrimaryExhausted) else 403
            return self._primary_refusal(status, caller, request_id)
        assert isinstance(fault, ErrorStatus)
        return ApiResult(
            fault.status,
            bodies.for_status(fault.status, graphql=graphql, request_id=request_id),
            points=0,
        )

    def _primary_refusal(self, status: int, caller: Caller, request_id: str) -> ApiResult:
        user_id = caller.account.id if caller.account else None
        return ApiResult(status, bodies.primary_limit(status, user_id, request_id), points=0)

    def _apply_etag(self, request: Request, result: ApiResult) -> None:
        digest = hashlib.sha256(_json_bytes(result.body)).hexdigest()
        opaque = hashlib.sha256(f"{self._etag_salt}:{digest}".encode()).hexdigest()
        self._etag_digests[opaque] = digest
        result.headers["etag"] = f'W/"{opaque}"'
        candidates = request.headers.get("if-none-match", "")
        for candidate in (c.strip() for c in candidates.split(",") if c.strip()):
            tag = candidate.removeprefix("W/").strip('"')  # If-None-Match compares weakly
            if candidate == "*" or self._etag_digests.get(tag) == digest:
                result.status, result.body = 304, None
                return

    def _request_id(self) -> str:
        n = next(self._request_ids)
        return f"{n >> 16:04X}:{n & 0xFFFF:04X}:{n:06X}:{n * 7:07X}:{n * 13:08X}"


def _token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in {"bearer", "token"}:
        return None
    return value.strip() or None


def _json_bytes(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _response(result: ApiResult, headers: dict[str, str], fault: Fault | None) -> Response:
    if result.status == 304 or (result.body is None and result.text is None):
        return Response(status_code=result.status, headers=headers)
    if result.text is not None:
        content, media_type = result.text.encode(), "text/plain; charset=utf-8"
    else:
        content, media_type = _json_bytes(result.body), "application/json; charset=utf-8"
    if isinstance(fault, Truncate):
        return TruncatedResponse(content, fault.keep, result.status, headers, media_type)
    return Response(content, result.status, headers, media_type)


class TruncatedResponse(Response):
    """Declares the whole body's length but sends only the first part of it."""

    def __init__(
        self, content: bytes, keep: float, status: int, headers: dict[str, str], media_type: str
    ) -> None:
        super().__init__(content, status, headers, media_type)
        self._sent = content[: int(len(content) * keep)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": self._sent, "more_body": False})
