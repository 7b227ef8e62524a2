"""Builders the PR-action tests share: an observation that allows a merge, and a fake
GitHub holding that PR at a given head commit."""

from __future__ import annotations

from typing import Any

import msgspec

from adapters.memory import FakeSCMProvider
from orchestrator.domain.model import CIState, Mergeability, PRObservation, PRState, ReviewDecision
from orchestrator.domain.scm import PRDetail, RepoRef

PR1 = "https://github.com/acme/app/pull/1"
REPO = RepoRef(owner="acme", name="app")


def ready_observation(sha: str = "x1", *, url: str = PR1, number: int = 1) -> PRObservation:
    """An observation that allows a merge at ``sha``: open, CI passing, approved, mergeable."""
    return PRObservation(
        url=url,
        number=number,
        ci=CIState.PASSING,
        review=ReviewDecision.APPROVED,
        mergeability=Mergeability.MERGEABLE,
        head_sha=sha,
    )


def ready(url: str = PR1, sha: str = "x1") -> dict[str, Any]:
    """``ready_observation`` as the JSON body of ``POST /sessions/{id}/pr``."""
    body: dict[str, Any] = msgspec.to_builtins(ready_observation(sha, url=url))
    return body


def provider_with(sha: str, *, url: str = PR1, number: int = 1) -> FakeSCMProvider:
    """A fake GitHub holding the PR, open, approved and mergeable, with its head at ``sha``."""
    provider = FakeSCMProvider()
    provider.put_pr(
        PRDetail(
            repo=REPO,
            node_id=f"PR_{number}",
            number=number,
            url=url,
            state=PRState.OPEN,
            head_ref="feat/x",
            head_sha=sha,
            mergeable="MERGEABLE",
            review=ReviewDecision.APPROVED,
        )
    )
    return provider
