"""The second origin job logs are downloaded from. ``GET .../actions/jobs/{id}/logs`` answers
a 302 to a URL here, signed like an Azure blob SAS URL and valid for one minute of the
world's time. Like the real blob store it refuses an expired or tampered URL, and a request
that carries an ``Authorization`` header (a client must not forward its GitHub token to
another origin); every request it gets is recorded, header included."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.github.clock import iso
from tests.fakes.github.model import CheckRun
from tests.fakes.github.world import World

URL_LIFETIME_SECONDS = 60.0


@dataclass(frozen=True)
class BlobRequest:
    path: str
    authorization: str | None
    status: int


class LogBlobs:
    def __init__(self, world: World, *, base_url: str = "http://blob.test") -> None:
        self.world = world
        self.base_url = base_url.rstrip("/")
        self.requests: list[BlobRequest] = []
        self._key = secrets.token_bytes(32)
        self.app = Starlette(
            routes=[Route("/actions-results/job-logs/{job_id:int}.txt", self._serve)]
        )

    def signed_url(self, run: CheckRun) -> str:
        expiry = iso(self.world.clock.now() + URL_LIFETIME_SECONDS)
        query = f"sv=2021-12-02&sr=b&sp=r&se={quote(expiry, safe='')}&sig={quote(self._sign(run.id, expiry), safe='')}"
        return f"{self.base_url}/actions-results/job-logs/{run.id}.txt?{query}"

    def _sign(self, job_id: int, expiry: str) -> str:
        digest = hmac.new(self._key, f"{job_id}\n{expiry}".encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    async def _serve(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        response = self._answer(request, authorization)
        self.requests.append(BlobRequest(request.url.path, authorization, response.status_code))
        return response

    def _answer(self, request: Request, authorization: str | None) -> Response:
        job_id: int = request.path_params["job_id"]
        expiry = request.query_params.get("se", "")
        signature = request.query_params.get("sig", "")
        if authorization is not None:
            return _refusal(
                400,
                "InvalidAuthenticationInfo",
                "Authentication information is not given in the correct format. Check the value of Authorization header.",
            )
        if not hmac.compare_digest(signature, self._sign(job_id, expiry)):
            return _refusal(
                403,
                "AuthenticationFailed",
                "Signature fields not well formed or signature did not match.",
            )
        if self.world.clock.now() > _epoch(expiry):
            return _refusal(
                403,
                "AuthenticationFailed",
                f"Signed expiry time [{expiry}] must be after the current time.",
            )
        run = self.world.runs.get(job_id)
        if run is None or run.log is None:
            return _refusal(404, "BlobNotFound", "The specified blob does not exist.")
        return PlainTextResponse(run.log)


def _epoch(expiry: str) -> float:
    try:
        return datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def _refusal(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(body, status, media_type="application/xml")
