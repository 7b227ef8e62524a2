"""Error answers: every error is ``{"error": {"code", "message"}}`` with its HTTP status.

``ApiError`` is an answer a route raises on purpose; ``domain_error`` maps the errors the
engine raises on purpose (``orchestrator.domain.errors``) to their statuses. Anything else
is a bug, answered 500 ``internal`` by the app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec
from starlette.responses import Response

from orchestrator.api import ErrorBody, ErrorCode, ErrorDetail
from orchestrator.domain.errors import (
    ConflictError,
    DeliveryError,
    InvalidInputError,
    NotFoundError,
    OverloadedError,
    StorageUnavailableError,
    StoreError,
    TransientError,
)
from orchestrator.lifecycle.manager import ShuttingDownError

JSON: Final = "application/json"
UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": 'Bearer realm="orchestrator"'}
RETRY_SOON: Final = {"Retry-After": "1"}
RETRY_STORAGE: Final = {"Retry-After": "5"}
"""A storage fault (a full disk, an I/O error) takes longer than a busy mailbox to clear."""

_encoder = msgspec.json.Encoder()


class ApiError(Exception):
    """An error answer: status, code and message (and extra headers)."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.headers)


def bad_request(message: str) -> ApiError:
    return ApiError(400, ErrorCode.BAD_REQUEST, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, ErrorCode.NOT_FOUND, message)


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def json_response(
    value: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(_encoder.encode(value), status_code=status, headers=headers, media_type=JSON)


def error_response(
    status: int, code: ErrorCode, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return json_response(body, status, headers)


def domain_error(error: Exception) -> ApiError | None:
    """The answer for an error the engine raised on purpose, or None for a bug."""
    match error:
        case ApiError():
            return error
        case NotFoundError():
            return not_found(str(error))
        case ShuttingDownError():
            return ApiError(503, ErrorCode.UNAVAILABLE, str(error), RETRY_SOON)
        case OverloadedError():
            return ApiError(429, ErrorCode.OVERLOADED, str(error), RETRY_SOON)
        case StorageUnavailableError():
            # Before StoreError, which it is: nothing was refused, the storage failed, and
            # the same request may succeed once it recovers.
            return ApiError(503, ErrorCode.STORAGE_UNAVAILABLE, str(error), RETRY_STORAGE)
        case ConflictError() | StoreError() | DeliveryError():
            # StoreError: the store refused the write (a constraint) given what it holds.
            # DeliveryError: the agent cannot take the message, and retrying will not help.
            return ApiError(409, ErrorCode.CONFLICT, str(error))
        case InvalidInputError():
            return bad_request(str(error))
        case TransientError():
            return ApiError(503, ErrorCode.UNAVAILABLE, str(error), RETRY_SOON)
    return None


__all__ = [
    "JSON",
    "RETRY_SOON",
    "RETRY_STORAGE",
    "UNAUTHORIZED_HEADERS",
    "ApiError",
    "bad_request",
    "domain_error",
    "encode",
    "error_response",
    "json_response",
    "not_found",
]
