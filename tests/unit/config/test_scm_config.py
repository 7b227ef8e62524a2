"""The ``scm.github`` section and a project's ``github`` repository: every key, the
defaults, and what is derived (the repository host from the API URL, reserve shares)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.config.schema import GitHubBudgetConfig, GitHubConfig, GitHubPollConfig
from tests.unit.config.support import load

FULL = """
projects:
  app: {path: /src/app, github: Acme/App}
scm:
  github:
    enabled: false
    apiUrl: https://ghe.example.com/api/v3/
    graphqlUrl: https://ghe.example.com/api/graphql
    tokenEnv: GHE_TOKEN
    poll: {repo: 1m, pending: 10s, settled: 2m, draft: 5m, maxAge: 10m}
    reviewInterval: 3m
    kickDebounce: 1s
    batchSize: 10
    logTail: {lines: 50, maxBytes: 4096}
    budget: {backgroundReserve: 25%, kickReserve: 50, maxConcurrency: 4}
    webhookSecret: s3cret
"""


def test_every_github_key(data_dir: Path, env: dict[str, str]) -> None:
    config = load(FULL, data_dir, env)
    github = config.scm.github
    assert config.projects["app"].github == "Acme/App"
    assert not github.enabled
    assert github.api_url == "https://ghe.example.com/api/v3"
    assert github.graphql_url == "https://ghe.example.com/api/graphql"
    assert github.host == "ghe.example.com"  # from the Enterprise API URL
    assert github.token_env == "GHE_TOKEN"
    assert github.poll == GitHubPollConfig(
        repo=timedelta(minutes=1),
        pending=timedelta(seconds=10),
        settled=timedelta(minutes=2),
        draft=timedelta(minutes=5),
        max_age=timedelta(minutes=10),
    )
    assert github.review_interval == timedelta(minutes=3)
    assert github.kick_debounce == timedelta(seconds=1)
    assert github.batch_size == 10
    assert (github.log_tail.lines, github.log_tail.max_bytes) == (50, 4096)
    assert github.budget == GitHubBudgetConfig(
        background_reserve=0.25, kick_reserve=50.0, max_concurrency=4
    )
    assert github.webhook_secret == "s3cret"


def test_without_the_section_github_com_is_watched_with_the_defaults(
    data_dir: Path, env: dict[str, str]
) -> None:
    config = load("scm: {github: {}}\n", data_dir, env)
    assert config.scm.github == GitHubConfig()
    assert config.scm.github.host == "github.com"
    assert config.scm.github.api_url == "https://api.github.com"


@pytest.mark.parametrize(
    ("written", "host"),
    [
        ("apiUrl: https://api.github.com", "github.com"),
        ("apiUrl: http://127.0.0.1:8000", "127.0.0.1"),
        ("{apiUrl: 'http://127.0.0.1:8000', host: GitHub.com}", "github.com"),
    ],
)
def test_the_repository_host_follows_the_api_unless_given(
    written: str, host: str, data_dir: Path, env: dict[str, str]
) -> None:
    text = (
        f"scm:\n  github: {written}\n"
        if written.startswith("{")
        else (f"scm:\n  github:\n    {written}\n")
    )
    assert load(text, data_dir, env).scm.github.host == host


@pytest.mark.parametrize(("written", "reserve"), [("0", 0.0), ("1", 1.0), ("'0%'", 0.0)])
def test_reserves_are_counts_or_shares(
    written: str, reserve: float, data_dir: Path, env: dict[str, str]
) -> None:
    text = f"scm: {{github: {{budget: {{backgroundReserve: {written}}}}}}}\n"
    assert load(text, data_dir, env).scm.github.budget.background_reserve == reserve
