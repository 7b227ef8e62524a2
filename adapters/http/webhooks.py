"""GitHub webhooks (``POST /api/v1/webhooks/github``): "this PR or commit changed, look now".

An accelerator for the SCM observer, never needed: the observer polls regardless, and a
delivery only makes the PRs and commits it names due at once (``SCMKicker``).

- The route exists only with a webhook secret configured; without one it answers 404.
- GitHub cannot send our bearer token, so the route takes none. What it checks instead is
  ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the raw body under the secret,
  compared in constant time. A missing or wrong signature is a 401 and one log line,
  which never holds the body.
- A delivery id (``X-GitHub-Delivery``) already handled is answered 200 and ignored: the
  store remembers the newest ids, so a replay is caught across restarts too.
- ``pull_request``, ``pull_request_review``, ``pull_request_review_comment`` and
  ``pull_request_review_thread`` kick their PR at its head commit; ``check_run`` and
  ``check_suite`` kick the PRs they list at their head commit, or the commit alone when they
  list none (a fork's PR); ``status`` kicks its commit. Other events (``ping``…) change no
  PR: 200, ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.bodies import read_body
from adapters.http.errors import UNAUTHORIZED_HEADERS, ApiError, json_response, not_found
from orchestrator.api import (
    GITHUB_DELIVERY_HEADER,
    GITHUB_EVENT_HEADER,
    GITHUB_SIGNATURE_HEADER,
    ErrorCode,
    WebhookOut,
)
from orchestrator.domain.scm import RepoRef
from orchestrator.domain.scm_rules import parse_full_name
from orchestrator.ports import Clock, SCMKicker, WebhookDeliveries

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY: Final = 4 << 20
"""GitHub caps payloads at 25 MB, but the events kicked here are far smaller; a larger one
is a 413, and the observer's polling still sees the change."""
MAX_KICKS: Final = 32
"""Kicks one delivery may make (a check suite can list many PRs)."""

PR_EVENTS: Final = frozenset(
    {
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
    }
)
CHECK_EVENTS: Final = frozenset({"check_run", "check_suite"})
STATUS_EVENT: Final = "status"


@dataclass(frozen=True, slots=True)
class Kick:
    repo: RepoRef
    pr_number: int | None
    head_sha: str | None


@dataclass(frozen=True, slots=True)
class GitHubWebhooks:
    """What the route needs: the shared secret, where kicks go (None: nowhere yet, e.g. no
    GitHub token, and deliveries are acknowledged and dropped) and the delivery log."""

    secret: bytes
    kicker: SCMKicker | None
    deliveries: WebhookDeliveries
    clock: Clock


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=`` and the hex HMAC-SHA256 of ``body``, in constant
    time (only the header's length shows)."""
    if header is None or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").encode())


# --- the parts of GitHub's payloads read here (everything else is ignored) ------------------


class _Repository(msgspec.Struct, frozen=True):
    full_name: str
    html_url: str = ""


class _Head(msgspec.Struct, frozen=True):
    sha: str = ""


class _PullRequest(msgspec.Struct, frozen=True):
    number: int
    head: _Head = _Head()


class _Listed(msgspec.Struct, frozen=True):
    number: int


class _Checks(msgspec.Struct, frozen=True):
    head_sha: str = ""
    pull_requests: list[_Listed] = msgspec.field(default_factory=list)


class _Payload(msgspec.Struct, frozen=True):
    repository: _Repository | None = None
    pull_request: _PullRequest | None = None
    check_run: _Checks | None = None
    check_suite: _Checks | None = None
    sha: str = ""  # a status event's commit


def kicks_of(event: str, body: bytes) -> list[Kick]:
    """The PRs and commits a delivery names; empty for events that change no PR. Raises
    ``ApiError`` 400 for a body that is not such an event's JSON."""
    if event not in PR_EVENTS and event not in CHECK_EVENTS and event != STATUS_EVENT:
        return []
    try:
        payload = msgspec.json.decode(body, type=_Payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ApiError(400, ErrorCode.BAD_REQUEST, f"not a {event} event: {error}") from None
    repo = _repo_of(payload.repository)
    if repo is None:
        raise ApiError(400, ErrorCode.BAD_REQUEST, f"a {event} event without its repository")
    kicks: list[Kick] = []
    if event in PR_EVENTS:
        pr = payload.pull_request
        if pr is None:
            raise ApiError(400, ErrorCode.BAD_REQUEST, f"a {event} event without its PR")
        kicks.append(Kick(repo, pr.number, pr.head.sha or None))
    elif event in CHECK_EVENTS:
        checks = payload.check_run if event == "check_run" else payload.check_suite
        sha = checks.head_sha if checks is not None else ""
        listed = checks.pull_requests if checks is not None else []
        kicks.extend(Kick(repo, pr.number, sha or None) for pr in listed)
        if not kicks and sha:
            kicks.append(Kick(repo, None, sha))
    elif payload.sha:
        kicks.append(Kick(repo, None, payload.sha))
    return kicks[:MAX_KICKS]


def _repo_of(repository: _Repository | None) -> RepoRef | None:
    if repository is None:
        return None
    host = urlsplit(repository.html_url).hostname or "github.com"
    return parse_full_name(repository.full_name, host=host)


# --- the route ---------------------------------------------------------------------------


async def github_webhook(webhooks: GitHubWebhooks | None, request: Request) -> Response:
    if webhooks is None:
        raise not_found("GitHub webhooks are disabled: no webhook secret is configured")
    body = await read_body(request, MAX_WEBHOOK_BODY)
    headers = request.headers
    event = headers.get(GITHUB_EVENT_HEADER, "")
    delivery = headers.get(GITHUB_DELIVERY_HEADER, "")
    signature = headers.get(GITHUB_SIGNATURE_HEADER)
    if not signature_matches(webhooks.secret, body, signature):
        why = "unsigned" if signature is None else "mis-signed"
        log.warning(
            "refused a %s GitHub webhook (event %r, delivery %r, %d bytes)",
            why,
            event[:64],
            delivery[:64],
            len(body),
        )
        raise ApiError(401, ErrorCode.UNAUTHORIZED, f"{why} webhook delivery", UNAUTHORIZED_HEADERS)
    kicks = kicks_of(event, body)
    if not kicks:
        return json_response(WebhookOut(ignored=f"event {event!r} changes no PR"))
    if delivery and not await webhooks.deliveries.record_webhook_delivery(
        delivery, at=webhooks.clock.now()
    ):
        return json_response(WebhookOut(ignored=f"delivery {delivery} was handled already"))
    if webhooks.kicker is None:
        return json_response(WebhookOut(ignored="the SCM observer is not running"))
    for kick in kicks:
        await webhooks.kicker.kick(kick.repo, kick.pr_number, kick.head_sha)
    return json_response(WebhookOut(kicked=len(kicks)))


__all__ = ["GitHubWebhooks", "Kick", "github_webhook", "kicks_of", "signature_matches"]
