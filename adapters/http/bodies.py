"""Reading and checking what a request carries: its body and its query parameters.

Bodies are decoded strictly with msgspec (unknown fields, off-enum values and wrong types
are 400s naming the field) and checked further (no NUL characters, 64-bit integers,
timezone-aware times, normalised to UTC) before anything reaches the engine. A body over
``MAX_BODY_BYTES`` is a 413; no more than ``MAX_BODY_BYTES + 1`` bytes of it are kept.
A project id that does not fit its pattern is explained in words, not with the regex (the
message reaches people through the CLI).

Query parameters are checked too: a bad one is a 400 naming it and what it may be.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from contextlib import aclosing
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, TypeVar, cast

import msgspec
from starlette.requests import Request

from adapters.http.errors import ApiError, bad_request
from orchestrator.api import MAX_BODY_BYTES, PROJECT_ID_RULE, SLUG_PATTERN, ErrorCode

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

INT64: Final = 1 << 63
"""Integers must lie in ``[-INT64, INT64)``: SQLite and most clients hold no more."""

_SLUG_MISMATCH: Final = f"Expected `str` matching regex {SLUG_PATTERN!r}"
"""msgspec's words for a string that does not fit the project-id pattern."""

DISCARD_LIMIT = 16 * MAX_BODY_BYTES
"""How much of an oversized body is read and thrown away before answering 413. Closing a
connection with unread request bytes makes TCP reset it, and the client then loses the 413;
past this much, that is the client's problem."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing (413) anything over ``limit``. Nothing past ``limit`` is
    kept; up to ``DISCARD_LIMIT`` bytes are drained so the client can read the answer."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise bad_request("bad Content-Length") from None
        if size > DISCARD_LIMIT:
            raise _too_large(limit)
    body = bytearray()
    oversized = 0
    async with aclosing(request.stream()) as chunks:
        async for chunk in chunks:
            if oversized:
                oversized += len(chunk)
                if oversized > DISCARD_LIMIT:
                    break
                continue
            body += chunk
            if len(body) > limit:
                oversized = len(body)
                body.clear()
    if oversized:
        raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, ErrorCode.TOO_LARGE, f"the body is larger than {limit} bytes")


async def request_body(request: Request, type_: type[T], *, default: T | None = None) -> T:
    """The body decoded and checked as ``type_``; an empty body is ``default`` if given."""
    raw = await read_body(request)
    if default is not None and not raw.strip():
        return default
    return decode_body(raw, type_)


def decode_body(body: bytes, type_: type[T]) -> T:
    """Decode ``body`` strictly as ``type_`` and check what msgspec cannot (``checked``)."""
    try:
        value = msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as error:
        message = str(error).replace(_SLUG_MISMATCH, PROJECT_ID_RULE)
        raise bad_request(f"invalid body: {message}") from None
    except msgspec.DecodeError as error:
        raise bad_request(f"malformed JSON body: {error}") from None
    return checked(value)


def checked(value: T, where: str = "$") -> T:
    """``value`` with every datetime normalised to UTC, after checking that strings hold
    no NUL, integers fit in 64 bits and datetimes carry a timezone (400 naming the field)."""
    return cast("T", _check(value, where))


@functools.cache
def _field_names(struct: type[msgspec.Struct]) -> tuple[tuple[str, str], ...]:
    """(attribute, wire) names; cached, as ``structs.fields`` re-resolves annotations."""
    return tuple((f.name, f.encode_name) for f in msgspec.structs.fields(struct))


def _check(value: object, where: str) -> object:
    match value:
        case str():
            if "\x00" in value:
                raise bad_request(f"invalid body: NUL character - at `{where}`")
            return value
        case bool():
            return value
        case int():
            if not -INT64 <= value < INT64:
                raise bad_request(f"invalid body: integer out of range - at `{where}`")
            return value
        case datetime():
            if value.tzinfo is None or value.utcoffset() is None:
                raise bad_request(
                    f"invalid body: a timestamp needs a timezone (e.g. `Z`) - at `{where}`"
                )
            try:
                return value.astimezone(UTC)
            except OverflowError:
                raise bad_request(f"invalid body: timestamp out of range - at `{where}`") from None
        case msgspec.Struct():
            changes: dict[str, object] = {}
            for name, encode_name in _field_names(type(value)):
                old = getattr(value, name)
                new = _check(old, f"{where}.{encode_name}")
                if new is not old:
                    changes[name] = new
            return msgspec.structs.replace(value, **changes) if changes else value
        case tuple() | list():
            items = [_check(item, f"{where}[{i}]") for i, item in enumerate(value)]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return type(value)(items)
    return value


def query_int(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name`` (``default`` if absent or empty), which must lie
    in ``[low, high]`` (else 400)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise bad_request(f"query parameter {name!r} must be an integer from {low} to {high}")
    return value


_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})


def query_bool(request: Request, name: str, *, default: bool) -> bool:
    """The boolean query parameter ``name`` (``true``/``false``, ``1``/``0``, ``yes``/``no``;
    ``default`` if absent or empty); anything else is a 400."""
    raw = (request.query_params.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    raise bad_request(f"query parameter {name!r} must be true or false, not {raw!r}")


def query_enums(request: Request, name: str, kind: type[E]) -> frozenset[E]:
    """The values of the query parameter ``name``, repeated (``?s=a&s=b``) or comma-separated
    (``?s=a,b``), as members of ``kind``; empty when absent. An unknown value is a 400
    listing the known ones."""
    values: set[E] = set()
    for raw in _split(request.query_params.getlist(name)):
        try:
            values.add(kind(raw))
        except ValueError:
            known = ", ".join(member.value for member in kind)
            raise bad_request(
                f"query parameter {name!r}: unknown value {raw!r} (known: {known})"
            ) from None
    return frozenset(values)


def _split(raws: Iterable[str]) -> Iterable[str]:
    for raw in raws:
        yield from (part.strip() for part in raw.split(",") if part.strip())


__all__ = [
    "DISCARD_LIMIT",
    "INT64",
    "checked",
    "decode_body",
    "query_bool",
    "query_enums",
    "query_int",
    "read_body",
    "request_body",
]
