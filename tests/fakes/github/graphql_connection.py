"""Relay connections as GitHub pages them (opaque base64 cursors, ``first``/``last``/
``after``/``before``, ``pageInfo`` and ``totalCount``), and the field errors GitHub reports
with a top-level ``type``."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

Args = dict[str, Any]
CURSOR_PREFIX = "cursor:v2:"


class GitHubFieldError(Exception):
    """A field error GitHub reports with a top-level ``type`` (``NOT_FOUND``, ...)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def cursor(index: int) -> str:
    return base64.b64encode(f"{CURSOR_PREFIX}{index}".encode()).decode()


def _position(value: str) -> int:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
        return int(decoded.removeprefix(CURSOR_PREFIX)) if decoded.startswith(CURSOR_PREFIX) else -1
    except ValueError:
        return -1


def connection(items: Sequence[object], args: Args, **extra: object) -> dict[str, object]:
    """A Relay connection over ``items`` (oldest first) for first/last/after/before/skip."""
    start, end = 0, len(items)
    for name in ("after", "before"):
        if args.get(name) is not None:
            position = _position(args[name])
            if position < 0:
                raise GitHubFieldError(
                    "INVALID_CURSOR_ARGUMENTS",
                    f"`{args[name]}` does not appear to be a valid cursor.",
                )
            start, end = (
                (max(start, position + 1), end) if name == "after" else (start, min(end, position))
            )
    start += args.get("skip") or 0
    if args.get("first") is not None:
        end = min(end, start + args["first"])
    if args.get("last") is not None:
        start = max(start, end - args["last"])
    window = list(range(start, min(end, len(items)))) if start < end else []
    edges = [{"cursor": cursor(i), "node": items[i]} for i in window]
    return {
        "edges": edges,
        "nodes": [items[i] for i in window],
        "pageInfo": {
            "startCursor": cursor(window[0]) if window else None,
            "endCursor": cursor(window[-1]) if window else None,
            "hasPreviousPage": bool(window) and window[0] > 0,
            "hasNextPage": bool(window) and window[-1] < len(items) - 1,
        },
        "totalCount": len(items),
        **extra,
    }
