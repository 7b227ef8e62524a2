"""``GET /metrics``: the Prometheus text of ``orchestrator.metrics.Metrics``, on the API
(behind the daemon token) and, when ``metrics.address`` is set, on a loopback port of its
own without a token (a Prometheus scraper holds no daemon token)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.domain.scm import RateBudgetSnapshot
from orchestrator.metrics import CONTENT_TYPE, Metrics

METRICS_PATH = "/metrics"


async def metrics_response(metrics: Metrics) -> Response:
    return Response(await metrics.render(), media_type=CONTENT_TYPE)


def metrics_app(metrics: Metrics) -> Starlette:
    """The app of the separate metrics port: ``/metrics`` only."""

    async def endpoint(request: Request) -> Response:
        return await metrics_response(metrics)

    return Starlette(routes=[Route(METRICS_PATH, endpoint, methods=["GET"])])


def github_remaining(snapshot: RateBudgetSnapshot) -> dict[str, int]:
    """The budget left per GitHub resource, for the scrape gauges (unknown ones left out)."""
    return {
        state.resource: state.remaining
        for state in snapshot.resources
        if state.remaining is not None
    }


__all__ = ["METRICS_PATH", "github_remaining", "metrics_app", "metrics_response"]
