"""Merging a PR: which PR a URL or a number names, and when the engine may merge one.

Pure. A merge is allowed only on facts read at one head commit that show CI passing, the
review approved and GitHub calling the PR mergeable, with no review comment left open; the
merge then names that commit, so a push in between makes GitHub refuse it
(docs/behaviour.md, "Reactions").
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

from orchestrator.domain.model import (
    CIState,
    Mergeability,
    PRFacts,
    PRObservation,
    ProjectId,
    ReactionAction,
    ReactionKey,
    ReviewDecision,
    SessionId,
)
from orchestrator.domain.reaction_policy import ReactionPolicy
from orchestrator.domain.records import OutboxItem
from orchestrator.domain.scm import PRRef, RepoRef

_PR_URL: Final = re.compile(
    r"^https?://(?P<host>[A-Za-z0-9.-]+)(?::\d+)?/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+)"
    r"/pull/(?P<number>[1-9][0-9]{0,17})/?$",
    re.ASCII,
)


def parse_pr_url(url: str) -> PRRef | None:
    """The PR a web URL names (``https://github.com/o/r/pull/7``), or None."""
    match = _PR_URL.match(url)
    if match is None or match["name"] in {".", ".."} or match["owner"] in {".", ".."}:
        return None
    repo = RepoRef(host=match["host"].lower(), owner=match["owner"], name=match["name"])
    return PRRef(repo=repo, number=int(match["number"]))


def pr_url(repo: RepoRef, number: int) -> str:
    """The web URL of PR ``number`` of ``repo``, as GitHub writes it."""
    owner, name = quote(repo.owner, safe=""), quote(repo.name, safe="")
    return f"https://{repo.host}/{owner}/{name}/pull/{number}"


def merge_blocker(facts: PRFacts) -> str | None:
    """Why ``facts`` do not allow a merge, in words; None when they do."""
    if not facts.exists:
        return "the session has no PR"
    if facts.merged:
        return f"{facts.url} is already merged"
    if facts.closed:
        return f"{facts.url} is closed"
    if facts.draft:
        return f"{facts.url} is a draft"
    if not facts.head_sha:
        return f"the head commit of {facts.url} is not known yet"
    if facts.ci is not CIState.PASSING:
        return f"CI of {facts.url} is {facts.ci}, not passing"
    if facts.review is not ReviewDecision.APPROVED:
        return f"the review of {facts.url} is {facts.review}, not approved"
    if facts.mergeability is not Mergeability.MERGEABLE:
        return f"GitHub calls {facts.url} {facts.mergeability}, not mergeable"
    if facts.review_comments:
        return f"{facts.url} has unresolved review comments"
    return None


def merge_dedup_key(url: str, head_sha: str) -> str:
    """The outbox key of an auto-merge: one per PR and head commit, whichever session."""
    return f"merge/{url}@{head_sha}"


_APPROVED_AND_GREEN: Final = ReactionKey.APPROVED_AND_GREEN


def auto_merge_item(
    session_id: SessionId,
    project_id: ProjectId,
    observation: PRObservation,
    policy: ReactionPolicy,
) -> OutboxItem | None:
    """The outbox item that merges the observed PR at its observed head commit, when the
    observation allows a merge; None otherwise. The caller checks that the policy says
    ``auto-merge``."""
    if merge_blocker(observation.facts()) is not None:
        return None
    url, sha = observation.url, observation.head_sha
    return OutboxItem(
        dedup_key=merge_dedup_key(url, sha),
        session_id=session_id,
        project_id=project_id,
        action=ReactionAction.AUTO_MERGE,
        reaction=_APPROVED_AND_GREEN,
        event_type=_APPROVED_AND_GREEN.event_type,
        priority=policy.reactions[_APPROVED_AND_GREEN].priority,
        message=f"Merging {url} at {sha[:12]}: approved, CI passing, mergeable.",
        pr_url=url,
        head_sha=sha,
    )


__all__ = [
    "auto_merge_item",
    "merge_blocker",
    "merge_dedup_key",
    "parse_pr_url",
    "pr_url",
]
