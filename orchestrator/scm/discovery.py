"""Which sessions the observer watches for: one read of the store per scan.

A live session with a branch, in a project whose repository is on the watched host, claims
the PRs whose head is that branch. PRs the store already gives a live session are tracked
as they are, and no listing may hand them to another session: moving a PR between sessions
is an explicit claim, never a side effect of polling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.domain.model import ProjectId, SessionId
from orchestrator.domain.scm import BranchClaim, PRRef, RepoRef
from orchestrator.domain.scm_rules import parse_pr_url, project_repo
from orchestrator.ports import SCMSessionReader
from orchestrator.scm.tracking import repo_key


@dataclass
class SessionScan:
    """``claims`` and ``repos`` by repository key; ``known``: the open PRs the store gives
    each live session; ``owners``: every PR URL of a live session, and whose it is."""

    live: set[SessionId] = field(default_factory=set)
    repos: dict[str, RepoRef] = field(default_factory=dict)
    claims: dict[str, list[BranchClaim]] = field(default_factory=dict)
    known: list[tuple[SessionId, PRRef, str]] = field(default_factory=list)
    owners: dict[str, SessionId] = field(default_factory=dict)


async def scan_sessions(
    reader: SCMSessionReader, *, host: str, explicit_repos: Mapping[ProjectId, str]
) -> SessionScan:
    """Read the live sessions, their projects' repositories and their PRs.

    ``explicit_repos``: ``owner/name`` per project, where the config names one; other
    projects use their origin URL (https or ssh)."""
    scan = SessionScan()
    projects = {p.id: p for p in await reader.list_projects(include_archived=True)}
    for session in await reader.list_sessions():
        if session.lifecycle.state.is_terminal:
            continue
        scan.live.add(session.id)
        project = projects.get(session.project_id)
        repo = None
        if project is not None:
            explicit = explicit_repos.get(project.id, "")
            repo = project_repo(project.repo_origin_url, explicit, host=host)
        if repo is not None and session.metadata.branch:
            key = repo_key(repo)
            scan.repos.setdefault(key, repo)
            claim = BranchClaim(
                session_id=session.id,
                branch=session.metadata.branch,
                repo=repo,
                kind=session.kind,
            )
            scan.claims.setdefault(key, []).append(claim)
        for facts in await reader.list_pr_facts(session.id):
            scan.owners[facts.url] = session.id
            ref = parse_pr_url(facts.url) if facts.is_open else None
            if ref is not None and ref.repo.host == host.lower():
                scan.known.append((session.id, ref, facts.url))
    return scan
