"""The HTTP API and its Server-Sent Events change stream (Starlette, served by hypercorn's
trio worker). ``create_app(ApiServices(...))`` is the whole surface; see ``app``."""

from __future__ import annotations

from adapters.http.app import (
    ApiError,
    ApiServices,
    DrainSwitch,
    LifecycleCommands,
    SessionCommands,
    create_app,
    operations,
)
from adapters.http.auth import TokenAuthority, bearer_token
from adapters.http.sse import ResyncOut

__all__ = [
    "ApiError",
    "ApiServices",
    "DrainSwitch",
    "LifecycleCommands",
    "ResyncOut",
    "SessionCommands",
    "TokenAuthority",
    "bearer_token",
    "create_app",
    "operations",
]
