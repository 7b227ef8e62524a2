"""Every request the fake GitHub answered, so tests (and benchmarks) can count what was
charged to the primary limit, assert that guards sent ``If-None-Match``, or that nothing
hit GraphQL while nothing changed."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    token: str | None
    resource: str
    status: int
    points: int  # charged to the primary limit; 0 for a 304, an error or a fault
    if_none_match: str | None
    fault: str | None  # the injected fault's class name, if one answered
    headers: dict[str, str]  # as sent, lower-cased names (Authorization included)

    @property
    def charged(self) -> bool:
        return self.points > 0


class RequestLog:
    def __init__(self) -> None:
        self.entries: list[LoggedRequest] = []

    def append(self, entry: LoggedRequest) -> None:
        self.entries.append(entry)

    def clear(self) -> None:
        self.entries.clear()

    def matching(
        self, path: str = "*", *, method: str | None = None, status: int | None = None
    ) -> list[LoggedRequest]:
        """Entries whose path matches the glob ``path`` (``*`` crosses ``/``)."""
        return [
            entry
            for entry in self.entries
            if fnmatchcase(entry.path, path)
            and (method is None or entry.method == method.upper())
            and (status is None or entry.status == status)
        ]

    def points(self, resource: str | None = None) -> int:
        """Points charged to the primary limit, for one resource or all."""
        return sum(e.points for e in self.entries if resource is None or e.resource == resource)

    def charged_requests(self, resource: str | None = None) -> int:
        return sum(
            1 for e in self.entries if e.charged and (resource is None or e.resource == resource)
        )
