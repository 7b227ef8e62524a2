"""The route table's shape, and the OpenAPI 3.1 document generated from it.

Every route the app serves is one ``Operation``; the same table builds the Starlette routes
and this document, so they cannot drift apart. Schemas come from the msgspec wire types
(``msgspec.json.schema_components``: JSON Schema 2020-12, which OpenAPI 3.1 uses as is).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from orchestrator.api import ErrorBody, ErrorCode

Handler = Callable[[Request], Awaitable[Response]]

REF_TEMPLATE: Final = "#/components/schemas/{name}"
BEARER: Final = "bearerAuth"


class Access(Enum):
    PUBLIC = "public"  # no token (health)
    DAEMON = "daemon"  # the daemon token
    SESSION_HOOK = "session_hook"  # the daemon token, or the path session's hook token


@dataclass(frozen=True, slots=True)
class Param:
    """A query or header parameter, for the document (handlers parse their own)."""

    name: str
    schema: dict[str, Any]
    description: str
    where: str = "query"


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler
    access: Access = Access.DAEMON
    status: int = 200
    response: Any = None
    """The success body's type (``list[SessionOut]``…), a tuple of types (one of them),
    or None for no body."""
    body: Any = None
    """The request body's type, or None."""
    body_required: bool = True
    query: tuple[Param, ...] = ()
    headers: tuple[Param, ...] = ()
    """Headers of the success response."""
    errors: tuple[int, ...] = ()
    """Statuses this operation may answer besides the ones every route shares."""
    stream: bool = False
    """A ``text/event-stream`` response whose frames carry ``response`` as data."""


_STATUS_TEXT: Final[dict[int, tuple[str, ErrorCode]]] = {
    400: ("Malformed JSON, a failed validation or a bad parameter", ErrorCode.BAD_REQUEST),
    401: ("Missing or wrong bearer token", ErrorCode.UNAUTHORIZED),
    403: ("A session hook token used outside its session's activity route", ErrorCode.FORBIDDEN),
    404: ("No such session or project", ErrorCode.NOT_FOUND),
    409: ("The request contradicts the current state", ErrorCode.CONFLICT),
    413: ("Body larger than the limit", ErrorCode.TOO_LARGE),
    429: ("The session's mailbox is full: retry later", ErrorCode.OVERLOADED),
    500: ("Unexpected server error", ErrorCode.INTERNAL),
    503: ("The daemon is draining, or a dependency is unavailable", ErrorCode.UNAVAILABLE),
}

_PATH_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")


def openapi_document(
    operations: Sequence[Operation], *, title: str, version: str, prefix: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``operations``."""
    types: list[Any] = [ErrorBody]
    for op in operations:
        for t in (op.body, *_alternatives(op.response)):
            if t is not None and t not in types:
                types.append(t)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF_TEMPLATE)
    schema_of = dict(zip(map(_key, types), schemas, strict=True))
    error_schema = schema_of[_key(ErrorBody)]

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        item = paths.setdefault(op.path, {})
        item[op.method.lower()] = _operation(op, schema_of, error_schema)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version or "0",
            "description": (
                "JSON bodies are camelCase and decoded strictly: unknown fields and off-enum "
                "values are rejected. Every error is "
                '`{"error": {"code": ..., "message": ...}}`. Every route but `/healthz` needs '
                "`Authorization: Bearer <daemon token>`; a session's hook token "
                "(HMAC-SHA256 of the session id under the daemon token, hex) opens only "
                f"`POST {prefix}/sessions/{{id}}/activity` of that session."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {BEARER: {"type": "http", "scheme": "bearer"}},
        },
    }


def _key(t: Any) -> str:
    return repr(t)


def _alternatives(response: Any) -> tuple[Any, ...]:
    return response if isinstance(response, tuple) else (response,)


def _schema(response: Any, schema_of: dict[str, Any]) -> dict[str, Any]:
    options = [schema_of[_key(t)] for t in _alternatives(response)]
    return options[0] if len(options) == 1 else {"oneOf": options}


def _operation(
    op: Operation, schema_of: dict[str, Any], error_schema: dict[str, Any]
) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(op.path)
    ]
    params += [
        {"name": p.name, "in": p.where, "required": False, "schema": p.schema}
        | {"description": p.description}
        for p in op.query
    ]
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": schema_of[_key(op.body)]}},
        }
    responses: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": "OK" if op.status != 201 else "Created"}
    if op.response is not None:
        media = "text/event-stream" if op.stream else "application/json"
        ok["content"] = {media: {"schema": _schema(op.response, schema_of)}}
    elif op.status == 204:
        ok["description"] = "Done (no body)"
    if op.headers:
        ok["headers"] = {
            h.name: {"description": h.description, "schema": h.schema} for h in op.headers
        }
    responses[str(op.status)] = ok
    statuses = set(op.errors) | {500}
    if op.access is not Access.PUBLIC:
        statuses |= {401, 403, 503}
        doc["security"] = [{BEARER: []}]
    else:
        doc["security"] = []
    if op.body is not None:
        statuses |= {400, 413}
    for status in sorted(statuses):
        text, code = _STATUS_TEXT[status]
        responses[str(status)] = {
            "description": f"{text} (`{code}`)",
            "content": {"application/json": {"schema": error_schema}},
        }
    doc["responses"] = responses
    return doc


__all__ = ["Access", "Handler", "Operation", "Param", "openapi_document"]
