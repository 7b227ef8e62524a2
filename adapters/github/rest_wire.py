"""GitHub's REST JSON, typed (only the fields we read), and its translation into domain
values. msgspec decodes straight into these structs and ignores every other field, so a
field GitHub adds never breaks us and one it drops fails loudly at the decode.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from orchestrator.domain.scm import CheckKind, PRSummary, SCMCheck
from orchestrator.domain.scm_rules import check_run_status, pr_state, status_context_status


class _Wire(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    pass


class RestUser(_Wire, frozen=True, kw_only=True):
    login: str = ""
    type: str = ""


class RestRepoName(_Wire, frozen=True, kw_only=True):
    full_name: str = ""


class RestBranch(_Wire, frozen=True, kw_only=True):
    ref: str = ""
    sha: str = ""
    repo: RestRepoName | None = None


class RestPull(_Wire, frozen=True, kw_only=True):
    number: int
    node_id: str = ""
    html_url: str = ""
    title: str = ""
    state: str = "open"
    draft: bool = False
    merged_at: datetime | None = None
    user: RestUser | None = None
    head: RestBranch
    base: RestBranch
    updated_at: datetime | None = None


class RestApp(_Wire, frozen=True, kw_only=True):
    slug: str = ""


class RestCheckRun(_Wire, frozen=True, kw_only=True):
    id: int
    name: str
    head_sha: str = ""
    status: str = ""
    conclusion: str | None = None
    details_url: str | None = None
    html_url: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    app: RestApp | None = None


class RestCheckRuns(_Wire, frozen=True, kw_only=True):
    total_count: int = 0
    check_runs: tuple[RestCheckRun, ...] = ()


class RestStatus(_Wire, frozen=True, kw_only=True):
    context: str
    state: str
    target_url: str | None = None
    created_at: datetime | None = None


class RestCombinedStatus(_Wire, frozen=True, kw_only=True):
    state: str = ""
    sha: str = ""
    total_count: int = 0
    statuses: tuple[RestStatus, ...] = ()


class RestMerge(_Wire, frozen=True, kw_only=True):
    sha: str = ""
    merged: bool = False
    message: str = ""


def summary_from_rest(pull: RestPull) -> PRSummary:
    user = pull.user or RestUser()
    return PRSummary(
        node_id=pull.node_id,
        number=pull.number,
        url=pull.html_url,
        title=pull.title,
        state=pr_state(pull.state, draft=pull.draft, merged=pull.merged_at is not None),
        head_ref=pull.head.ref,
        head_sha=pull.head.sha,
        head_repo=pull.head.repo.full_name if pull.head.repo else None,
        base_ref=pull.base.ref,
        author=user.login,
        author_is_bot=user.type == "Bot",
        updated_at=pull.updated_at,
    )


def checks_from_rest(runs: Iterable[RestCheckRun], commit: str) -> tuple[SCMCheck, ...]:
    return tuple(
        SCMCheck(
            name=run.name,
            commit=run.head_sha or commit,
            status=check_run_status(run.status, run.conclusion),
            conclusion=run.conclusion.lower() if run.conclusion else None,
            url=run.details_url or run.html_url or "",
            provider_id=run.id,
            app=run.app.slug if run.app else None,
            started_at=run.started_at,
            completed_at=run.completed_at,
        )
        for run in runs
    )


def statuses_from_rest(statuses: Iterable[RestStatus], commit: str) -> tuple[SCMCheck, ...]:
    return tuple(
        SCMCheck(
            name=status.context,
            commit=commit,
            status=status_context_status(status.state),
            kind=CheckKind.STATUS,
            conclusion=status.state.lower(),
            url=status.target_url or "",
            started_at=status.created_at,
        )
        for status in statuses
    )
