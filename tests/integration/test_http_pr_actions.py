"""The PR routes over HTTP: one owner per PR (409 naming it), claims by URL or number,
on-demand merges, PR URL and number validation, and GitHub webhooks (signature, replay,
the kicks they make, off without a secret)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from adapters.http.webhooks import GitHubWebhooks
from adapters.memory import FakeSCMProvider
from orchestrator.api import API_PREFIX, MAX_PR_URL_LENGTH
from orchestrator.domain.records import Project
from orchestrator.domain.scm import MergeMethod, RepoRef
from orchestrator.pr_actions import PRActions, SCMMerger
from tests.engine_harness import Engine
from tests.fakes.github import (
    FakeClock,
    FakeGitHub,
    WebhookSender,
    build_delivery,
    signature_256,
)
from tests.http_harness import Served, serve_api
from tests.pr_support import PR1, provider_with, ready

P = API_PREFIX
SECRET = "It's a Secret to Everybody"
HOOK = f"{P}/webhooks/github"


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    return response.status_code, body["error"]["message"]


# --- one owner per PR, and claims ---------------------------------------------------------


async def test_a_pr_of_another_live_session_is_409_and_a_claim_moves_it() -> None:
    async with serve_api() as api:
        a, b = await api.spawn(), await api.spawn()
        comments = {**ready(), "comments": [{"id": "c1", "body": "fix"}]}
        assert (await api.client.post(f"{P}/sessions/{a}/pr", json=comments)).status_code == 200
        head = await api.head()
        status, message = error_of(await api.client.post(f"{P}/sessions/{b}/pr", json=ready()))
        assert status == 409
        assert f"belongs to session {a}" in message
        assert f"orchestrator pr claim {b} {PR1}" in message
        assert await api.head() == head  # nothing written, a's comments untouched
        assert [c.id for c in await api.store.list_pr_comments(PR1)] == ["c1"]

        response = await api.client.post(f"{P}/sessions/{b}/pr/claim", json={"url": PR1})
        assert response.status_code == 200, response.text
        claimed = response.json()
        assert (claimed["url"], claimed["previousSession"]) == (PR1, a)
        assert claimed["session"]["pr"]["url"] == PR1
        assert claimed["session"]["pr"]["headSha"] == "x1"
        moves = [
            (e.session_id, json.loads(e.payload)["previousSession"])
            for e in await api.store.changes_after(head, limit=100)
        ]
        assert moves == [(a, a), (b, a)]
        assert (await api.client.get(f"{P}/sessions/{a}")).json()["pr"]["exists"] is False
        # Now b reports it and a cannot.
        assert (await api.client.post(f"{P}/sessions/{b}/pr", json=ready())).status_code == 200
        status, message = error_of(await api.client.post(f"{P}/sessions/{a}/pr", json=ready()))
        assert (status, f"belongs to session {b}" in message) == (409, True)
        # Claiming it again is a no-op naming no one.
        again = await api.client.post(f"{P}/sessions/{b}/pr/claim", json={"url": PR1})
        assert again.json()["previousSession"] == ""


async def test_a_claim_by_number_uses_the_projects_repository() -> None:
    async with serve_api() as api:
        await api.store.upsert_project(
            Project(
                id="app",
                path="/repos/app",
                repo_origin_url="git@github.com:acme/app.git",
                registered_at=api.engine.clock.now(),
            )
        )
        sid = await api.spawn("app")
        response = await api.client.post(f"{P}/sessions/{sid}/pr/claim", json={"number": 7})
        assert response.status_code == 200, response.text
        assert response.json()["url"] == "https://github.com/acme/app/pull/7"
        pr = response.json()["session"]["pr"]
        assert (pr["exists"], pr["number"], pr["ci"]) == (True, 7, "unknown")
        plain = await api.spawn("mer")  # a project with no origin URL
        status, message = error_of(
            await api.client.post(f"{P}/sessions/{plain}/pr/claim", json={"number": 7})
        )
        assert (status, "claim the PR by its URL" in message) == (409, True)


async def test_a_claim_for_an_unknown_or_ended_session_is_refused() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        ghost = await api.client.post(f"{P}/sessions/ghost-9/pr/claim", json={"url": PR1})
        assert error_of(ghost)[0] == 404
        await api.client.post(f"{P}/sessions/{sid}/kill")
        status, message = error_of(
            await api.client.post(f"{P}/sessions/{sid}/pr/claim", json={"url": PR1})
        )
        assert (status, "has ended" in message) == (409, True)


LONG_URL = "https://github.com/acme/app/pull/1?" + "x" * MAX_PR_URL_LENGTH

BAD_BODIES = [
    ("claim", {}, "give the PR's `url` or its `number`"),
    ("claim", {"url": PR1, "number": 1}, "not both"),
    ("claim", {"number": 0}, "$.number"),
    ("claim", {"number": -3}, "$.number"),
    ("claim", {"number": "7"}, "$.number"),
    ("claim", {"url": "ftp://github.com/acme/app/pull/1"}, "is not an http(s) URL - at `$.url`"),
    ("claim", {"url": "acme/app#1"}, "is not an http(s) URL"),
    ("claim", {"url": "https://"}, "is not an http(s) URL"),
    ("claim", {"url": "http://[::1/x"}, "is not an http(s) URL"),
    ("claim", {"url": LONG_URL}, f"at most {MAX_PR_URL_LENGTH} characters - at `$.url`"),
    ("observe", {"url": "u"}, "is not an http(s) URL - at `$.url`"),
    ("observe", {"url": LONG_URL}, f"at most {MAX_PR_URL_LENGTH} characters"),
    ("observe", {"url": PR1, "number": -1}, "not negative - at `$.number`"),
]


@pytest.mark.parametrize(("route", "body", "needle"), BAD_BODIES)
async def test_bad_pr_urls_and_numbers_are_400_and_change_nothing(
    route: str, body: dict[str, Any], needle: str
) -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        head = await api.head()
        path = f"{P}/sessions/{sid}/pr" + ("/claim" if route == "claim" else "")
        status, message = error_of(await api.client.post(path, json=body))
        assert status == 400
        assert needle in message
        assert await api.head() == head


async def test_a_hook_token_cannot_claim_or_merge() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        token = api.auth.session_token(sid)
        for action, body in (("claim", {"url": PR1}), ("merge", None)):
            response = await api.anonymous.post(
                f"{P}/sessions/{sid}/pr/{action}", json=body, headers=api.as_token(token)
            )
            assert response.status_code == 403


# --- merge on demand -------------------------------------------------------------------------


def actions_over(provider: FakeSCMProvider) -> Callable[[Engine], PRActions]:
    return lambda engine: PRActions(
        engine.store, engine.manager, merger=SCMMerger(provider, MergeMethod.SQUASH)
    )


async def test_merge_merges_at_the_observed_head_or_says_why_not() -> None:
    provider = provider_with("x1")
    async with serve_api(pr_actions=actions_over(provider)) as api:
        sid = await api.spawn()
        status, message = error_of(await api.client.post(f"{P}/sessions/{sid}/pr/merge"))
        assert (status, message) == (409, "not merging: the session has no PR")
        pending = {**ready(), "ci": "pending"}
        await api.client.post(f"{P}/sessions/{sid}/pr", json=pending)
        status, message = error_of(await api.client.post(f"{P}/sessions/{sid}/pr/merge"))
        assert (status, message) == (409, f"not merging: CI of {PR1} is pending, not passing")
        await api.client.post(f"{P}/sessions/{sid}/pr", json=ready(sha="x0"))
        status, message = error_of(await api.client.post(f"{P}/sessions/{sid}/pr/merge"))
        assert status == 409
        assert message == f"GitHub refused to merge {PR1} at x0: Head branch was modified"
        await api.client.post(f"{P}/sessions/{sid}/pr", json=ready(sha="x1"))
        response = await api.client.post(f"{P}/sessions/{sid}/pr/merge")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "url": PR1,
            "headSha": "x1",
            "mergeSha": "merge-x1",
            "message": "Pull Request merged",
        }
        assert error_of(await api.client.post(f"{P}/sessions/ghost-9/pr/merge"))[0] == 404


async def test_merge_without_github_is_409() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        await api.client.post(f"{P}/sessions/{sid}/pr", json=ready())
        status, message = error_of(await api.client.post(f"{P}/sessions/{sid}/pr/merge"))
        assert (status, message) == (409, "not merging: GitHub is not configured")


# --- GitHub webhooks ---------------------------------------------------------------------------


class RecordingKicker:
    def __init__(self) -> None:
        self.kicks: list[tuple[str, int | None, str | None]] = []

    async def kick(self, repo: RepoRef, pr_number: int | None, head_sha: str | None) -> None:
        self.kicks.append((f"{repo.host}/{repo.full_name}", pr_number, head_sha))


@asynccontextmanager
async def hooked(kicker: RecordingKicker | None) -> AsyncIterator[tuple[Served, FakeGitHub]]:
    """The API with a webhook secret, and a fake GitHub whose repository hook delivers to
    it (over the loopback socket, with no bearer token: GitHub has none)."""

    def webhooks(engine: Engine) -> GitHubWebhooks:
        return GitHubWebhooks(SECRET.encode(), kicker, engine.store, engine.clock)

    async with serve_api(webhooks=webhooks) as api:
        yield api, FakeGitHub(FakeClock())


def sender(api: Served, fake: FakeGitHub, secret: str = SECRET) -> WebhookSender:
    return WebhookSender(fake.world, url=HOOK, secret=secret, client=api.anonymous)


async def test_github_deliveries_kick_their_pr_and_commit() -> None:
    kicker = RecordingKicker()
    async with hooked(kicker) as (api, fake):
        world, hook = fake.world, sender(api, fake)
        alice, bob = world.add_user("alice"), world.add_user("bob")
        repo = world.create_repo("acme/app")
        pr = world.open_pr(repo, head_ref="feat/x", author=alice)
        world.add_check_run(pr, "tests", conclusion="failure", log="boom")
        world.add_review(pr, bob, state="CHANGES_REQUESTED")
        thread = world.add_review_thread(pr, bob, path="a.py", line=3, body="nit")
        world.resolve_thread(thread, by=alice)
        world.set_status(pr, "ci/jenkins", "success")
        events = [d.event for d in hook.pending]
        responses = await hook.deliver_pending()
        assert events == [
            "pull_request",
            "check_run",  # created
            "check_run",  # completed
            "check_suite",
            "pull_request_review",
            "pull_request_review_comment",
            "pull_request_review_thread",
            "status",
        ]
        assert [r.json() for r in responses] == [{"kicked": 1, "ignored": ""}] * len(events)
        head = ("github.com/acme/app", pr.number, pr.head_sha)
        assert kicker.kicks == [head] * 7 + [("github.com/acme/app", None, pr.head_sha)]


async def test_a_fork_check_kicks_its_commit() -> None:
    kicker = RecordingKicker()
    async with hooked(kicker) as (api, _):
        body = json.dumps(
            {
                "action": "completed",
                "check_suite": {"head_sha": "abc", "pull_requests": []},
                "repository": {"full_name": "acme/app", "html_url": "https://ghe.example/acme/app"},
            }
        ).encode()
        delivery = build_delivery("check_suite", json.loads(body), SECRET)
        response = await api.anonymous.post(HOOK, content=delivery.body, headers=delivery.headers)
        assert response.json() == {"kicked": 1, "ignored": ""}
        assert kicker.kicks == [("ghe.example/acme/app", None, "abc")]


async def test_unsigned_or_mis_signed_deliveries_are_401_and_kick_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kicker = RecordingKicker()
    async with hooked(kicker) as (api, fake):
        world = fake.world
        wrong = sender(api, fake, secret="not the secret")
        repo = world.create_repo("acme/app")
        world.open_pr(repo, head_ref="feat/x", author=world.add_user("alice"))
        [delivery] = wrong.pending
        caplog.set_level(logging.WARNING, logger="adapters.http.webhooks")
        [response] = await wrong.deliver_pending()
        assert error_of(response) == (401, "mis-signed webhook delivery")
        unsigned = {k: v for k, v in delivery.headers.items() if "Signature" not in k}
        response = await api.anonymous.post(HOOK, content=delivery.body, headers=unsigned)
        assert error_of(response) == (401, "unsigned webhook delivery")
        tampered = delivery.body.replace(b"feat/x", b"feat/y")
        response = await api.anonymous.post(HOOK, content=tampered, headers=delivery.headers)
        assert error_of(response)[0] == 401
        assert kicker.kicks == []
        records = [r for r in caplog.records if r.name == "adapters.http.webhooks"]
        assert len(records) == 3  # one line per refusal
        assert all(b"feat/" not in r.getMessage().encode() for r in records)  # never the body
        # A refused attempt does not use up its delivery id: the genuine one still counts.
        signed = {**delivery.headers, "X-Hub-Signature-256": signature_256(SECRET, delivery.body)}
        response = await api.anonymous.post(HOOK, content=delivery.body, headers=signed)
        assert response.json() == {"kicked": 1, "ignored": ""}


async def test_a_replayed_delivery_is_200_and_kicks_once() -> None:
    kicker = RecordingKicker()
    async with hooked(kicker) as (api, fake):
        hook = sender(api, fake)
        world = fake.world
        repo = world.create_repo("acme/app")
        world.open_pr(repo, head_ref="feat/x", author=world.add_user("alice"))
        [delivery] = hook.pending
        [first] = await hook.deliver_pending()
        assert first.json() == {"kicked": 1, "ignored": ""}
        again = await api.anonymous.post(HOOK, content=delivery.body, headers=delivery.headers)
        assert again.status_code == 200
        assert "handled already" in again.json()["ignored"]
        assert len(kicker.kicks) == 1


async def test_events_that_change_no_pr_are_ignored() -> None:
    kicker = RecordingKicker()
    async with hooked(kicker) as (api, _):
        ping = build_delivery("ping", {"zen": "Keep it logically awesome."}, SECRET)
        response = await api.anonymous.post(HOOK, content=ping.body, headers=ping.headers)
        assert response.status_code == 200
        assert response.json()["ignored"] == "event 'ping' changes no PR"
        junk = build_delivery("pull_request", {"action": "opened"}, SECRET)
        response = await api.anonymous.post(HOOK, content=junk.body, headers=junk.headers)
        assert error_of(response)[0] == 400
        assert kicker.kicks == []


async def test_without_a_secret_the_webhook_route_is_off() -> None:
    async with serve_api() as api:
        delivery = build_delivery("ping", {}, SECRET)
        response = await api.anonymous.post(HOOK, content=delivery.body, headers=delivery.headers)
        status, message = error_of(response)
        assert (status, "disabled" in message) == (404, True)


async def test_without_an_observer_deliveries_are_acknowledged_and_dropped() -> None:
    async with hooked(None) as (api, fake):
        hook = sender(api, fake)
        world = fake.world
        world.open_pr(world.create_repo("acme/app"), head_ref="x", author=world.add_user("a"))
        [response] = await hook.deliver_pending()
        assert response.json() == {"kicked": 0, "ignored": "the SCM observer is not running"}
