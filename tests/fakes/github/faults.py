"""Fault injection: a test arms a fault for requests whose path matches a glob, for a number
of requests (``times``; ``None`` = until cleared), optionally only for one method or token:
``faults.inject("/graphql", ErrorStatus(502), times=2)`` makes the next two GraphQL calls 502.

A request takes at most one :class:`Delay` and one other fault, the earliest armed of each
that matches; a taken fault counts down and disarms at zero."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class SecondaryLimit:
    """GitHub's secondary (abuse) limit: 403 or 429, ``Retry-After`` only when given, and
    ``x-ratelimit-remaining`` left as it is (it is usually above zero)."""

    status: int = 403
    retry_after: int | None = None


@dataclass(frozen=True)
class PrimaryExhausted:
    """Drains the request's primary bucket, so this and every request until the reset are
    refused: REST with ``status`` (403 or 429), GraphQL with 200 and ``RATE_LIMITED``."""

    status: int = 403


@dataclass(frozen=True)
class GraphQLRateLimited:
    """200 with ``errors[0].type == error_type``, draining the graphql bucket. GitHub has been
    seen answering ``RATE_LIMIT`` (with ``code: graphql_rate_limit``) as well as the
    documented ``RATE_LIMITED``; a client should accept both."""

    error_type: str = "RATE_LIMITED"


@dataclass(frozen=True)
class ErrorStatus:
    """An error status with GitHub's body for it (401 Bad credentials, 404 Not Found, 502 and
    504 the gateway errors GraphQL answers when a query runs past 10 s, ...). Not charged."""

    status: int


@dataclass(frozen=True)
class Delay:
    """Wait before answering (trio time, so a MockClock jumps it); then answer normally
    unless another fault applies too."""

    seconds: float


@dataclass(frozen=True)
class Truncate:
    """Send only the first ``keep`` fraction of the body while declaring its full length, as
    a connection cut mid-body does."""

    keep: float = 0.5


Fault = SecondaryLimit | PrimaryExhausted | GraphQLRateLimited | ErrorStatus | Delay | Truncate


@dataclass
class ArmedFault:
    pattern: str
    fault: Fault
    remaining: int | None
    method: str | None
    token: str | None
    taken: int = 0

    def matches(self, method: str, path: str, token: str | None) -> bool:
        return (
            (self.remaining is None or self.remaining > 0)
            and (self.method is None or self.method == method)
            and (self.token is None or self.token == token)
            and fnmatchcase(path, self.pattern)
        )

    def take(self) -> Fault:
        self.taken += 1
        if self.remaining is not None:
            self.remaining -= 1
        return self.fault


@dataclass(frozen=True)
class TakenFaults:
    delay: float
    fault: Fault | None


class Faults:
    def __init__(self) -> None:
        self._armed: list[ArmedFault] = []

    def inject(
        self,
        pattern: str,
        fault: Fault,
        *,
        times: int | None = 1,
        method: str | None = None,
        token: str | None = None,
    ) -> ArmedFault:
        """Arm ``fault`` for paths matching the glob ``pattern`` (``*`` crosses ``/``)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for until cleared")
        armed = ArmedFault(pattern, fault, times, method.upper() if method else None, token)
        self._armed.append(armed)
        return armed

    def clear(self) -> None:
        self._armed.clear()

    def take(self, method: str, path: str, token: str | None) -> TakenFaults:
        delay: ArmedFault | None = None
        other: ArmedFault | None = None
        for armed in self._armed:
            if not armed.matches(method, path, token):
                continue
            if isinstance(armed.fault, Delay):
                delay = delay or armed
            else:
                other = other or armed
        seconds = 0.0
        if delay is not None:
            taken = delay.take()
            assert isinstance(taken, Delay)
            seconds = taken.seconds
        return TakenFaults(seconds, other.take() if other else None)
