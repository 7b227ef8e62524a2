"""Webhook deliveries: signed like GitHub's, one per world change, with GitHub's payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.github import FakeGitHub, WebhookSender, build_delivery, signature_256
from tests.fakes.github.model import Account, Repo

SECRET = "It's a Secret to Everybody"


class Receiver:
    """A webhook endpoint that verifies signatures the way a receiver should."""

    def __init__(self) -> None:
        self.accepted: list[tuple[str, str, Any]] = []  # event, delivery id, payload
        self.app = Starlette(routes=[Route("/hooks/github", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-hub-signature-256", "")):
            return Response(status_code=401)
        event, delivery = request.headers["x-github-event"], request.headers["x-github-delivery"]
        self.accepted.append((event, delivery, json.loads(body)))
        return Response(status_code=204)


@asynccontextmanager
async def hooked(
    fake: FakeGitHub,
    receiver: Receiver,
    *,
    secret: str = SECRET,
    events: frozenset[str] | None = None,
) -> AsyncIterator[WebhookSender]:
    """A repository hook on ``fake``'s world that delivers to ``receiver``."""
    transport = httpx.ASGITransport(app=receiver.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://daemon.test") as client:
        yield WebhookSender(
            fake.world,
            url="http://daemon.test/hooks/github",
            secret=secret,
            client=client,
            events=events,
        )


def test_the_signature_is_the_documented_hmac() -> None:
    delivery = build_delivery("ping", {}, SECRET)

    # GitHub's documented example: this secret and body give this signature.
    assert signature_256(SECRET, b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )
    assert delivery.headers["X-Hub-Signature-256"] == (
        "sha256=" + hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    )
    assert delivery.headers["X-GitHub-Event"] == "ping"
    assert len(delivery.headers["X-GitHub-Delivery"]) == 36


async def test_world_changes_become_signed_deliveries(
    fake: FakeGitHub, repo: Repo, alice: Account
) -> None:
    receiver = Receiver()
    async with hooked(fake, receiver) as sender:
        bob = fake.world.add_user("bob")
        pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
        before = pr.head_sha
        after = fake.world.push(pr)
        run = fake.world.add_check_run(pr, "test")
        fake.world.finish_check(run, "failure")
        fake.world.set_status(pr, "ci/jenkins", "error")
        fake.world.add_review(pr, bob, state="CHANGES_REQUESTED", body="No")

        responses = await sender.deliver_pending()

    assert [r.status_code for r in responses] == [204] * 7
    assert [(event, payload.get("action")) for event, _, payload in receiver.accepted] == [
        ("pull_request", "opened"),
        ("pull_request", "synchronize"),
        ("check_run", "created"),
        ("check_run", "completed"),
        ("check_suite", "completed"),
        ("status", None),
        ("pull_request_review", "submitted"),
    ]
    payloads = [payload for _, _, payload in receiver.accepted]
    assert (payloads[1]["before"], payloads[1]["after"]) == (before, after)
    assert payloads[3]["check_run"]["conclusion"] == "failure"
    assert payloads[3]["check_run"]["pull_requests"][0]["number"] == pr.number
    assert payloads[4]["check_suite"]["conclusion"] == "failure"
    assert (payloads[5]["state"], payloads[5]["sha"], payloads[5]["context"]) == (
        "error",
        after,
        "ci/jenkins",
    )
    assert payloads[6]["review"]["state"] == "changes_requested"
    assert all(p["repository"]["full_name"] == "acme/api" for p in payloads)
    assert len({delivery for _, delivery, _ in receiver.accepted}) == 7
    assert sender.pending == []


async def test_a_hook_can_subscribe_to_some_events_and_a_bad_secret_is_refused(
    fake: FakeGitHub, repo: Repo, alice: Account
) -> None:
    receiver = Receiver()
    async with hooked(fake, receiver, secret="wrong", events=frozenset({"pull_request"})) as sender:
        pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
        fake.world.add_check_run(pr, "test")
        fake.world.merge(pr)

        responses = await sender.deliver_pending()

    assert [d.event for d, _ in sender.sent] == ["pull_request", "pull_request"]
    assert json.loads(sender.sent[1][0].body)["pull_request"]["merged"] is True
    assert [r.status_code for r in responses] == [401, 401]
    assert receiver.accepted == []


async def test_thread_resolution_is_announced_though_it_changes_no_listing(
    fake: FakeGitHub, repo: Repo, alice: Account
) -> None:
    receiver = Receiver()
    async with hooked(fake, receiver) as sender:
        pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
        thread = fake.world.add_review_thread(pr, alice, path="a.py", line=1, body="hm")
        updated = pr.updated_at
        fake.world.resolve_thread(thread)
        await sender.deliver_pending()

    events = [(event, payload.get("action")) for event, _, payload in receiver.accepted]
    assert events[-2:] == [
        ("pull_request_review_comment", "created"),
        ("pull_request_review_thread", "resolved"),
    ]
    assert pr.updated_at == updated
