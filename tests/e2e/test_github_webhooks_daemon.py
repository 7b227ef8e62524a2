"""The real daemon takes GitHub's webhook deliveries when a secret is configured: signed
ones without a bearer token, refused ones with 401; without a secret the route is off."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from orchestrator.api import API_PREFIX
from tests.e2e.harness import running_daemon, write_config
from tests.fakes.github import build_delivery

HOOK = f"{API_PREFIX}/webhooks/github"
SECRET = "e2e-webhook-secret"
PULL_REQUEST: dict[str, object] = {
    "action": "opened",
    "repository": {"full_name": "acme/app", "html_url": "https://github.com/acme/app"},
    "pull_request": {"number": 3, "head": {"sha": "abc"}},
}


def test_a_configured_secret_opens_the_webhook_route(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    extra = f"scm:\n  github:\n    webhookSecret: {json.dumps(SECRET)}\n"
    with running_daemon(data_dir, config=write_config(data_dir, extra=extra)) as daemon:
        signed = build_delivery("pull_request", PULL_REQUEST, SECRET)
        response = httpx.post(
            daemon.base + HOOK, content=signed.body, headers=signed.headers, trust_env=False
        )
        assert response.status_code == 200
        assert response.json() == {"kicked": 1, "ignored": ""}  # the observer takes the kick
        replay = httpx.post(
            daemon.base + HOOK, content=signed.body, headers=signed.headers, trust_env=False
        )
        assert "handled already" in replay.json()["ignored"]
        forged = build_delivery("pull_request", PULL_REQUEST, "guessed")
        response = httpx.post(
            daemon.base + HOOK, content=forged.body, headers=forged.headers, trust_env=False
        )
        assert response.status_code == 401
        assert "refused a mis-signed GitHub webhook" in daemon.log()
        assert '"head"' not in daemon.log()  # the body is never logged


def test_without_a_secret_the_webhook_route_is_off(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "data") as daemon:
        signed = build_delivery("pull_request", PULL_REQUEST, SECRET)
        response = httpx.post(
            daemon.base + HOOK, content=signed.body, headers=signed.headers, trust_env=False
        )
        assert response.status_code == 404
