"""The HTTP API and its Server-Sent Events change stream (Starlette, served by hypercorn's
trio worker). ``create_app(ApiServices(...))`` is the whole surface.

Modules: ``app`` (assembly: access, error mapping, drain gate), ``routes`` (the handlers and
the route table), ``bodies`` (reading and checking request bodies and parameters),
``errors`` (error answers and the status of each domain error), ``services`` (what the app
needs of the engine), ``sse`` (event streams), ``auth`` (tokens), ``webhooks`` (GitHub
deliveries, signed), ``openapi`` (the
generated document). The wire types themselves are ``orchestrator.api``.
"""

from __future__ import annotations

from adapters.http.app import create_app, operations
from adapters.http.auth import TokenAuthority, bearer_token
from adapters.http.errors import ApiError
from adapters.http.services import ApiServices, DrainSwitch, LifecycleCommands, SessionCommands

__all__ = [
    "ApiError",
    "ApiServices",
    "DrainSwitch",
    "LifecycleCommands",
    "SessionCommands",
    "TokenAuthority",
    "bearer_token",
    "create_app",
    "operations",
]
