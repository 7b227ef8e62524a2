"""GitHub's GraphQL answers, typed (only the fields our queries select), and their
translation into domain values. Field names are GitHub's camelCase.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from orchestrator.domain.scm import (
    CheckKind,
    PRDetail,
    RepoRef,
    ReviewComment,
    ReviewSnapshot,
    SCMCheck,
)
from orchestrator.domain.scm_rules import (
    check_run_status,
    pr_state,
    review_decision,
    status_context_status,
)


class _Gql(msgspec.Struct, frozen=True, kw_only=True, gc=False, rename="camel"):
    pass


class GqlActor(_Gql, frozen=True, kw_only=True):
    login: str = ""
    typename: str = msgspec.field(default="", name="__typename")


class GqlApp(_Gql, frozen=True, kw_only=True):
    slug: str = ""


class GqlSuite(_Gql, frozen=True, kw_only=True):
    app: GqlApp | None = None


class GqlContext(_Gql, frozen=True, kw_only=True):
    """A ``CheckRun`` or a ``StatusContext``: one struct, told apart by ``__typename``."""

    typename: str = msgspec.field(default="", name="__typename")
    database_id: int | None = None
    name: str | None = None
    status: str | None = None
    conclusion: str | None = None
    details_url: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    check_suite: GqlSuite | None = None
    context: str | None = None
    state: str | None = None
    target_url: str | None = None
    created_at: datetime | None = None


class GqlPageInfo(_Gql, frozen=True, kw_only=True):
    has_next_page: bool = False
    end_cursor: str | None = None
    has_previous_page: bool = False
    start_cursor: str | None = None


class GqlContexts(_Gql, frozen=True, kw_only=True):
    page_info: GqlPageInfo = GqlPageInfo()
    nodes: tuple[GqlContext | None, ...] = ()


class GqlRollup(_Gql, frozen=True, kw_only=True):
    state: str | None = None
    contexts: GqlContexts = GqlContexts()


class GqlCommit(_Gql, frozen=True, kw_only=True):
    oid: str = ""
    status_check_rollup: GqlRollup | None = None


class GqlCommitNode(_Gql, frozen=True, kw_only=True):
    commit: GqlCommit


class GqlCommits(_Gql, frozen=True, kw_only=True):
    nodes: tuple[GqlCommitNode | None, ...] = ()


class GqlRepoName(_Gql, frozen=True, kw_only=True):
    name_with_owner: str = ""


class GqlWithCommits(_Gql, frozen=True, kw_only=True):
    """``commits(last: 1)``: all a page of further check contexts selects of a PR."""

    commits: GqlCommits = GqlCommits()

    def head_commit(self) -> GqlCommit | None:
        nodes = [node for node in self.commits.nodes if node is not None]
        return nodes[-1].commit if nodes else None


class GqlContextsHolder(_Gql, frozen=True, kw_only=True):
    pull_request: GqlWithCommits | None = None


class GqlPullRequest(GqlWithCommits, frozen=True, kw_only=True):
    id: str
    number: int
    url: str = ""
    state: str = "OPEN"
    is_draft: bool = False
    merged: bool = False
    title: str = ""
    head_ref_name: str = ""
    head_ref_oid: str = ""
    base_ref_name: str = ""
    head_repository: GqlRepoName | None = None
    author: GqlActor | None = None
    mergeable: str = "UNKNOWN"
    merge_state_status: str | None = None
    review_decision: str | None = None
    updated_at: datetime | None = None
    merged_at: datetime | None = None
    closed_at: datetime | None = None


class GqlPullRequestHolder(_Gql, frozen=True, kw_only=True):
    """``repository { pullRequest { … } }``: either level may be null (not found)."""

    pull_request: GqlPullRequest | None = None


def contexts_of(pr: GqlWithCommits) -> GqlContexts | None:
    commit = pr.head_commit()
    rollup = commit.status_check_rollup if commit else None
    return rollup.contexts if rollup else None


def checks_from_graphql(nodes: Iterable[GqlContext | None], commit: str) -> tuple[SCMCheck, ...]:
    checks: list[SCMCheck] = []
    for node in nodes:
        if node is None:
            continue
        if node.typename == "StatusContext":
            checks.append(
                SCMCheck(
                    name=node.context or "",
                    commit=commit,
                    status=status_context_status(node.state),
                    kind=CheckKind.STATUS,
                    conclusion=node.state.lower() if node.state else None,
                    url=node.target_url or "",
                    started_at=node.created_at,
                )
            )
        elif node.typename == "CheckRun":
            app = node.check_suite.app if node.check_suite else None
            checks.append(
                SCMCheck(
                    name=node.name or "",
                    commit=commit,
                    status=check_run_status(node.status, node.conclusion),
                    conclusion=node.conclusion.lower() if node.conclusion else None,
                    url=node.details_url or "",
                    provider_id=node.database_id,
                    app=app.slug if app else None,
                    started_at=node.started_at,
                    completed_at=node.completed_at,
                )
            )
    return tuple(checks)


def detail_from_graphql(
    repo: RepoRef,
    pr: GqlPullRequest,
    more_contexts: Iterable[GqlContext | None] = (),
    *,
    complete: bool = True,
) -> PRDetail:
    """``pr`` with its first page of check contexts, plus any pages read after it."""
    commit = pr.head_commit()
    head_sha = pr.head_ref_oid or (commit.oid if commit else "")
    rollup = commit.status_check_rollup if commit else None
    first_page = rollup.contexts.nodes if rollup else ()
    author = pr.author or GqlActor()
    return PRDetail(
        repo=repo,
        node_id=pr.id,
        number=pr.number,
        url=pr.url,
        title=pr.title,
        state=pr_state(pr.state, draft=pr.is_draft, merged=pr.merged),
        head_ref=pr.head_ref_name,
        head_sha=head_sha,
        head_repo=pr.head_repository.name_with_owner if pr.head_repository else None,
        base_ref=pr.base_ref_name,
        author=author.login,
        mergeable=pr.mergeable,
        merge_state=pr.merge_state_status,
        review=review_decision(pr.review_decision),
        rollup_state=rollup.state if rollup else None,
        checks=checks_from_graphql([*first_page, *more_contexts], head_sha),
        checks_complete=complete,
        updated_at=pr.updated_at,
        merged_at=pr.merged_at,
        closed_at=pr.closed_at,
    )


class GqlComment(_Gql, frozen=True, kw_only=True):
    id: str
    url: str = ""
    body: str = ""
    created_at: datetime | None = None
    author: GqlActor | None = None  # null for a deleted account


class GqlComments(_Gql, frozen=True, kw_only=True):
    nodes: tuple[GqlComment | None, ...] = ()


class GqlThread(_Gql, frozen=True, kw_only=True):
    id: str
    is_resolved: bool = False
    is_outdated: bool = False
    path: str | None = None
    line: int | None = None
    comments: GqlComments = GqlComments()


class GqlThreads(_Gql, frozen=True, kw_only=True):
    page_info: GqlPageInfo = GqlPageInfo()
    nodes: tuple[GqlThread | None, ...] = ()


class GqlReview(_Gql, frozen=True, kw_only=True):
    id: str
    state: str = ""
    url: str = ""
    body: str = ""
    submitted_at: datetime | None = None
    author: GqlActor | None = None


class GqlReviews(_Gql, frozen=True, kw_only=True):
    nodes: tuple[GqlReview | None, ...] = ()


class GqlReviewState(_Gql, frozen=True, kw_only=True):
    review_decision: str | None = None
    updated_at: datetime | None = None
    review_threads: GqlThreads = GqlThreads()
    reviews: GqlReviews = GqlReviews()


class GqlReviewHolder(_Gql, frozen=True, kw_only=True):
    pull_request: GqlReviewState | None = None


def _is_bot(actor: GqlActor | None) -> bool:
    return actor is not None and actor.typename == "Bot"


def thread_comments(threads: Iterable[GqlThread | None]) -> list[ReviewComment]:
    return [
        ReviewComment(
            id=comment.id,
            thread_id=thread.id,
            author=_login(comment.author),
            author_is_bot=_is_bot(comment.author),
            file=thread.path or "",
            line=thread.line or 0,
            body=comment.body,
            url=comment.url,
            resolved=thread.is_resolved,
            outdated=thread.is_outdated,
            created_at=comment.created_at,
        )
        for thread in threads
        if thread is not None
        for comment in thread.comments.nodes
        if comment is not None
    ]


def _login(actor: GqlActor | None) -> str:
    return actor.login if actor else ""


def review_comments(reviews: Iterable[GqlReview | None]) -> list[ReviewComment]:
    """A review's own body is feedback too. It stays open while it is its author's
    latest verdict and that verdict is "changes requested"; a later review settles it.
    GitHub lists reviews oldest first."""
    listed = [review for review in reviews if review is not None]
    latest = {_login(review.author): review.id for review in listed}
    return [
        ReviewComment(
            id=review.id,
            author=_login(review.author),
            author_is_bot=_is_bot(review.author),
            body=review.body,
            url=review.url,
            resolved=latest[_login(review.author)] != review.id,
            created_at=review.submitted_at,
        )
        for review in listed
        if review.state == "CHANGES_REQUESTED" and review.body.strip()
    ]


def review_snapshot(
    state: GqlReviewState, threads: Iterable[GqlThread | None], *, partial: bool
) -> ReviewSnapshot:
    comments = [*review_comments(state.reviews.nodes), *thread_comments(threads)]
    return ReviewSnapshot(
        decision=review_decision(state.review_decision),
        comments=tuple(comments),
        partial=partial,
        updated_at=state.updated_at,
    )
