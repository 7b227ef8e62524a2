"""Builders the PR-action tests share: a ready PR observation's body, and a fake GitHub
holding that PR at a given head commit."""

from __future__ import annotations

from typing import Any

from adapters.memory import FakeSCMProvider
from orchestrator.domain.model import PRState, ReviewDecision
from orchestrator.domain.scm import PRDetail, RepoRef

PR1 = "https://github.com/acme/app/pull/1"
REPO = RepoRef(owner="acme", name="app")


def ready(url: str = PR1, sha: str = "x1") -> dict[str, Any]:
    """The JSON of an observation that allows a merge at ``sha``."""
    return {
        "url": url,
        "number": 1,
        "ci": "passing",
        "review": "approved",
        "mergeability": "mergeable",
        "headSha": sha,
    }


def provider_with(sha: str) -> FakeSCMProvider:
    """A fake GitHub holding PR1, open, approved and mergeable, with its head at ``sha``."""
    provider = FakeSCMProvider()
    provider.put_pr(
        PRDetail(
            repo=REPO,
            node_id="PR_1",
            number=1,
            url=PR1,
            state=PRState.OPEN,
            head_ref="feat/x",
            head_sha=sha,
            mergeable="MERGEABLE",
            review=ReviewDecision.APPROVED,
        )
    )
    return provider
