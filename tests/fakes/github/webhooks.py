"""Webhook deliveries as GitHub sends them: the event's payload (built from the same REST
representations), signed with the hook's secret in ``X-Hub-Signature-256`` (and the legacy
SHA-1 ``X-Hub-Signature``), named by ``X-GitHub-Event`` and ``X-GitHub-Delivery``.

:class:`WebhookSender` turns every world change into a pending delivery; a test posts them
with :meth:`WebhookSender.deliver_pending` when it wants the receiver to see them."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass

import httpx

from tests.fakes.github.clock import iso
from tests.fakes.github.model import (
    CheckRun,
    CheckSuite,
    CommitStatus,
    PullRequest,
    Review,
    ReviewComment,
    ReviewThread,
)
from tests.fakes.github.rest_json import (
    account_json,
    check_run_json,
    check_suite_json,
    pr_full_json,
    pr_simple_json,
    repo_json,
    review_comment_json,
    review_json,
)
from tests.fakes.github.world import World
from tests.fakes.github.world_state import Change

JSON = dict[str, object]


@dataclass(frozen=True)
class Delivery:
    event: str
    delivery_id: str
    body: bytes
    headers: dict[str, str]

    def payload(self) -> JSON:
        decoded: JSON = json.loads(self.body)
        return decoded


def signature_256(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def build_delivery(
    event: str, payload: JSON, secret: str, *, hook_id: int = 1, target_id: int = 0
) -> Delivery:
    body = json.dumps(payload, separators=(",", ":")).encode()
    delivery_id = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/4f5c8b1",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": str(hook_id),
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": str(target_id),
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": signature_256(secret, body),
    }
    return Delivery(event, delivery_id, body, headers)


async def post_delivery(client: httpx.AsyncClient, url: str, delivery: Delivery) -> httpx.Response:
    return await client.post(url, content=delivery.body, headers=delivery.headers)


def payload_for(world: World, change: Change) -> JSON:
    """The webhook payload GitHub sends for ``change``."""
    common: JSON = {
        "repository": repo_json(world, change.repo),
        "sender": account_json(world, change.sender),
    }
    subject = change.subject
    if isinstance(subject, PullRequest):
        extra = {k: v for k, v in change.extra.items() if k in {"before", "after"}}
        return {
            "action": change.action,
            "number": subject.number,
            "pull_request": pr_full_json(world, subject),
            **extra,
            **common,
        }
    if isinstance(subject, CheckRun):
        return {"action": change.action, "check_run": check_run_json(world, subject), **common}
    if isinstance(subject, CheckSuite):
        return {"action": change.action, "check_suite": check_suite_json(world, subject), **common}
    if isinstance(subject, CommitStatus):
        return {**_status_payload(world, subject), **common}
    if isinstance(subject, Review):
        review = {
            **review_json(world, subject),
            "state": subject.state.lower(),
        }  # lower-case in hooks
        return {
            "action": change.action,
            "review": review,
            "pull_request": pr_simple_json(world, subject.pr),
            **common,
        }
    if isinstance(subject, ReviewComment):
        comment = review_comment_json(world, subject)
        return {
            "action": change.action,
            "comment": comment,
            "pull_request": pr_simple_json(world, subject.thread.pr),
            **common,
        }
    if isinstance(subject, ReviewThread):
        thread = {
            "node_id": subject.node_id,
            "comments": [review_comment_json(world, c) for c in subject.comments],
        }
        return {
            "action": change.action,
            "thread": thread,
            "pull_request": pr_simple_json(world, subject.pr),
            **common,
        }
    raise TypeError(f"no webhook payload for {type(subject).__name__}")


def _status_payload(world: World, status: CommitStatus) -> JSON:
    repo = status.repo
    branches = [
        {
            "name": pr.head_ref,
            "commit": {
                "sha": status.sha,
                "url": f"{world.api_url}/repos/{repo.full_name}/commits/{status.sha}",
            },
            "protected": False,
        }
        for pr in world.pulls_of(repo)
        if pr.head_sha == status.sha and pr.head_repo is repo
    ]
    return {
        "id": status.id,
        "sha": status.sha,
        "name": repo.full_name,
        "target_url": status.target_url,
        "context": status.context,
        "description": status.description,
        "state": status.state,
        "commit": {
            "sha": status.sha,
            "url": f"{world.api_url}/repos/{repo.full_name}/commits/{status.sha}",
            "html_url": f"{world.web_url}/{repo.full_name}/commit/{status.sha}",
        },
        "branches": branches,
        "created_at": iso(status.created_at),
        "updated_at": iso(status.updated_at),
    }


class WebhookSender:
    """One repository hook: every world change of a subscribed event becomes a delivery."""

    def __init__(
        self,
        world: World,
        *,
        url: str,
        secret: str,
        client: httpx.AsyncClient,
        events: frozenset[str] | None = None,
        hook_id: int = 1,
    ) -> None:
        self.world, self.url, self.secret, self.client = world, url, secret, client
        self.events, self.hook_id = events, hook_id
        self.pending: list[Delivery] = []
        self.sent: list[tuple[Delivery, int]] = []
        world.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        if self.events is not None and change.event not in self.events:
            return
        payload = payload_for(self.world, change)  # built now: a delivery is a snapshot
        self.pending.append(
            build_delivery(
                change.event, payload, self.secret, hook_id=self.hook_id, target_id=change.repo.id
            )
        )

    async def deliver_pending(self) -> list[httpx.Response]:
        responses = []
        while self.pending:
            delivery = self.pending.pop(0)
            response = await post_delivery(self.client, self.url, delivery)
            self.sent.append((delivery, response.status_code))
            responses.append(response)
        return responses
