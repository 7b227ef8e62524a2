"""The fake GitHub assembled: the API app (REST + ``POST /graphql``) and the log-blob app,
over one world, with the faults, the request log and the served URLs.

Two ways to reach it:

* in process: :meth:`FakeGitHub.client` (or :meth:`FakeGitHub.mounts` for a client a test
  builds itself) routes ``http://github.test`` and ``http://blob.test`` to the two apps
  through ``httpx.ASGITransport`` and refuses every other host, so nothing leaves the process;
* on loopback: :func:`serve_on_loopback` runs both apps under hypercorn's trio worker on
  127.0.0.1 (two ports, so two origins) for tests that need real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework
from starlette.applications import Starlette
from starlette.routing import Route

from tests.fakes.github.blobs import LogBlobs
from tests.fakes.github.clock import Clock
from tests.fakes.github.faults import Faults
from tests.fakes.github.gateway import API_VERSION, Gateway
from tests.fakes.github.graphql_api import GraphQLApi
from tests.fakes.github.requestlog import RequestLog
from tests.fakes.github.rest import RestApi
from tests.fakes.github.world import World

API_URL = "http://github.test"
BLOB_URL = "http://blob.test"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


class FakeGitHub:
    def __init__(self, clock: Clock | None = None) -> None:
        self.world = World(clock, api_url=API_URL)
        self.faults = Faults()
        self.log = RequestLog()
        self.gateway = Gateway(self.world, self.faults, self.log)
        self.blobs = LogBlobs(self.world, base_url=BLOB_URL)
        rest = RestApi(self.world, self.gateway, self.blobs)
        graphql = GraphQLApi(self.world)
        self.app = Starlette(
            routes=[
                Route(
                    "/graphql",
                    self.gateway.endpoint(graphql.handle, resource="graphql"),
                    methods=["POST"],
                ),
                *rest.routes(),
                Route("/{path:path}", self.gateway.endpoint(rest.not_found), methods=ALL_METHODS),
            ]
        )

    @property
    def api_url(self) -> str:
        return self.world.api_url

    @property
    def graphql_url(self) -> str:
        return f"{self.world.api_url}/graphql"

    def mounts(self) -> dict[str, httpx.AsyncBaseTransport]:
        """httpx mounts for the in-process fake: its two hosts, and a refusal for any other."""
        return {
            f"all://{httpx.URL(API_URL).host}": httpx.ASGITransport(app=self.app),
            f"all://{httpx.URL(BLOB_URL).host}": httpx.ASGITransport(app=self.blobs.app),
            "all://": httpx.MockTransport(_refuse),
        }

    def client(self, token: str | None = None, **options: Any) -> httpx.AsyncClient:
        """An in-process client sending the headers GitHub asks for (and ``token``)."""
        headers = {
            "User-Agent": "orchestrator-tests",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(
            base_url=self.api_url, headers=headers, mounts=self.mounts(), **options
        )


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"the fake GitHub serves no {request.url.host}", request=request)


@dataclass(frozen=True)
class LoopbackUrls:
    api: str
    graphql: str
    blob: str


@asynccontextmanager
async def serve_on_loopback(fake: FakeGitHub) -> AsyncIterator[LoopbackUrls]:
    """Serve ``fake`` on two loopback ports; its world then writes those URLs into links,
    redirects and log locations. Both servers shut down on exit, even on failure."""
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        api = await _start(nursery, fake.app, shutdown)
        blob = await _start(nursery, fake.blobs.app, shutdown)
        served_in_process = fake.world.api_url, fake.blobs.base_url
        fake.world.api_url, fake.blobs.base_url = api, blob
        try:
            yield LoopbackUrls(api=api, graphql=f"{api}/graphql", blob=blob)
        finally:
            fake.world.api_url, fake.blobs.base_url = served_in_process
            shutdown.set()
            nursery.cancel_scope.deadline = trio.current_time() + 5


async def _start(nursery: trio.Nursery, app: Starlette, shutdown: trio.Event) -> str:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 1.0
    config.accesslog = None
    binds: list[str] = await nursery.start(
        partial(serve, cast("ASGIFramework", app), config, shutdown_trigger=shutdown.wait)
    )
    return binds[0]
