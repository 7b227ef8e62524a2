"""Resolvers from the world to the GraphQL schema subset: one table per GraphQL type,
field name -> function of (source, arguments). Connections, edges, ``PageInfo`` and
``RateLimit`` are plain dicts, resolved by key.

Where GitHub's GraphQL API differs from its REST API the resolvers follow GraphQL: states
are upper-case enums, ``fullDatabaseId`` (a BigInt) is a string, and a bot's ``login`` has
no ``[bot]`` suffix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLResolveInfo

from tests.fakes.github import derived
from tests.fakes.github.clock import iso, iso_or_none
from tests.fakes.github.graphql_connection import Args, GitHubFieldError, connection
from tests.fakes.github.model import (
    Account,
    AccountType,
    App,
    CheckRun,
    CheckSuite,
    Commit,
    CommitStatus,
    PullRequest,
    Repo,
    Review,
    ReviewComment,
    ReviewThread,
)
from tests.fakes.github.world import World

Resolver = Callable[[Any, Args], object]


@dataclass(frozen=True)
class RequestContext:
    viewer: Account
    rate_limit: dict[str, object]  # this query's cost and what is left after it


@dataclass(frozen=True)
class Rollup:
    repo: Repo
    sha: str


@dataclass(frozen=True)
class PrCommit:
    pr: PullRequest
    commit: Commit


class Resolvers:
    def __init__(self, world: World) -> None:
        self.world = world
        web = world.web_url
        account: dict[str, Resolver] = {
            "avatarUrl": lambda a, _: f"https://avatars.githubusercontent.com/u/{a.id}?v=4",
            "createdAt": lambda a, _: iso(a.created_at),
            "databaseId": lambda a, _: a.id,
            "id": lambda a, _: a.node_id,
            "login": lambda a, _: a.login.removesuffix("[bot]"),
            "name": lambda a, _: a.name,
            "repository": lambda a, args: self._repository(a.login, args["name"], args),
            "resourcePath": lambda a, _: f"/{self._account_path(a)}",
            "updatedAt": lambda a, _: iso(a.created_at),
            "url": lambda a, _: f"{web}/{self._account_path(a)}",
        }
        self.tables: dict[str, dict[str, Resolver]] = {
            "Query": {
                "node": lambda _, args: self._node(args["id"]),
                "repository": lambda _, args: self._repository(args["owner"], args["name"], args),
            },
            "User": account,
            "Organization": account,
            "Bot": account,
            "App": {
                "createdAt": lambda a, _: iso(a.created_at),
                "databaseId": lambda a, _: a.id,
                "description": lambda a, _: None,
                "id": lambda a, _: a.node_id,
                "name": lambda a, _: a.name,
                "slug": lambda a, _: a.slug,
                "updatedAt": lambda a, _: iso(a.created_at),
                "url": lambda a, _: f"{web}/apps/{a.slug}",
            },
            "Repository": {
                "createdAt": lambda r, _: iso(r.created_at),
                "databaseId": lambda r, _: r.id,
                "id": lambda r, _: r.node_id,
                "isFork": lambda r, _: r.parent is not None,
                "isPrivate": lambda r, _: r.private,
                "name": lambda r, _: r.name,
                "nameWithOwner": lambda r, _: r.full_name,
                "owner": lambda r, _: r.owner,
                "parent": lambda r, _: r.parent,
                "pullRequest": self._pull_request,
                "pullRequests": self._pull_requests,
                "resourcePath": lambda r, _: f"/{r.full_name}",
                "updatedAt": lambda r, _: iso(r.updated_at),
                "url": lambda r, _: f"{web}/{r.full_name}",
            },
            "PullRequest": self._pull_request_fields(),
            "PullRequestCommit": {
                "commit": lambda c, _: c.commit,
                "id": lambda c, _: f"PURC_{c.pr.node_id}_{c.commit.sha[:12]}",
                "pullRequest": lambda c, _: c.pr,
                "resourcePath": lambda c, _: (
                    f"/{c.pr.repo.full_name}/pull/{c.pr.number}/commits/{c.commit.sha}"
                ),
                "url": lambda c, _: (
                    f"{web}/{c.pr.repo.full_name}/pull/{c.pr.number}/commits/{c.commit.sha}"
                ),
            },
            "Commit": {
                "abbreviatedOid": lambda c, _: c.sha[:7],
                "checkSuites": lambda c, args: connection(
                    self.world.suites_for(c.repo, c.sha), args
                ),
                "id": lambda c, _: c.node_id,
                "oid": lambda c, _: c.sha,
                "repository": lambda c, _: c.repo,
                "resourcePath": lambda c, _: f"/{c.repo.full_name}/commit/{c.sha}",
                "statusCheckRollup": lambda c, _: self._rollup(c.repo, c.sha),
                "url": lambda c, _: f"{web}/{c.repo.full_name}/commit/{c.sha}",
            },
            "StatusCheckRollup": {
                "commit": lambda r, _: self.world.commit(r.repo, r.sha),
                "contexts": self._contexts,
                "id": lambda r, _: f"SCR_{r.repo.node_id}_{r.sha[:12]}",
                "state": lambda r, _: self.world.rollup_state(r.repo, r.sha),
            },
            "StatusContext": {
                "commit": lambda s, _: self.world.commit(s.repo, s.sha),
                "context": lambda s, _: s.context,
                "createdAt": lambda s, _: iso(s.created_at),
                "creator": lambda s, _: s.creator,
                "description": lambda s, _: s.description,
                "id": lambda s, _: s.node_id,
                "state": lambda s, _: s.state.upper(),
                "targetUrl": lambda s, _: s.target_url,
            },
            "CheckRun": {
                "checkSuite": lambda r, _: r.suite,
                "completedAt": lambda r, _: iso_or_none(r.completed_at),
                "conclusion": lambda r, _: r.conclusion.upper() if r.conclusion else None,
                "databaseId": lambda r, _: r.id,
                "detailsUrl": lambda r, _: r.details_url,
                "externalId": lambda r, _: r.external_id,
                "id": lambda r, _: r.node_id,
                "name": lambda r, _: r.name,
                "permalink": lambda r, _: f"{web}/{r.suite.repo.full_name}/runs/{r.id}",
                "repository": lambda r, _: r.suite.repo,
                "resourcePath": lambda r, _: f"/{r.suite.repo.full_name}/runs/{r.id}",
                "startedAt": lambda r, _: iso_or_none(r.started_at),
                "status": lambda r, _: r.status.upper(),
                "summary": lambda r, _: r.summary,
                "text": lambda r, _: r.text,
                "title": lambda r, _: r.title,
                "url": lambda r, _: f"{web}/{r.suite.repo.full_name}/runs/{r.id}",
            },
            "CheckSuite": {
                "app": lambda s, _: s.app,
                "checkRuns": lambda s, args: connection(derived.latest_runs(s.runs), args),
                "commit": lambda s, _: self.world.commit(s.repo, s.head_sha),
                "conclusion": lambda s, _: (derived.suite_conclusion(s) or "").upper() or None,
                "createdAt": lambda s, _: iso(s.created_at),
                "databaseId": lambda s, _: s.id,
                "id": lambda s, _: s.node_id,
                "repository": lambda s, _: s.repo,
                "resourcePath": lambda s, _: (
                    f"/{s.repo.full_name}/commit/{s.head_sha}/checks?check_suite_id={s.id}"
                ),
                "status": lambda s, _: derived.suite_status(s).upper(),
                "updatedAt": lambda s, _: iso(s.updated_at),
                "url": lambda s, _: (
                    f"{web}/{s.repo.full_name}/commit/{s.head_sha}/checks?check_suite_id={s.id}"
                ),
            },
            "PullRequestReview": {
                "author": lambda r, _: r.author,
                "body": lambda r, _: r.body,
                "commit": lambda r, _: self.world.commit(r.pr.repo, r.commit_sha),
                "createdAt": lambda r, _: iso(r.submitted_at),
                "databaseId": lambda r, _: r.id,
                "fullDatabaseId": lambda r, _: str(r.id),
                "id": lambda r, _: r.node_id,
                "pullRequest": lambda r, _: r.pr,
                "resourcePath": lambda r, _: (
                    f"/{r.pr.repo.full_name}/pull/{r.pr.number}#pullrequestreview-{r.id}"
                ),
                "state": lambda r, _: r.state,
                "submittedAt": lambda r, _: iso(r.submitted_at),
                "updatedAt": lambda r, _: iso(r.submitted_at),
                "url": lambda r, _: (
                    f"{web}/{r.pr.repo.full_name}/pull/{r.pr.number}#pullrequestreview-{r.id}"
                ),
            },
            "PullRequestReviewThread": {
                "comments": lambda t, args: connection(t.comments, args),
                "id": lambda t, _: t.node_id,
                "isCollapsed": lambda t, _: t.is_resolved,
                "isOutdated": lambda t, _: t.is_outdated,
                "isResolved": lambda t, _: t.is_resolved,
                "line": lambda t, _: t.line,
                "originalLine": lambda t, _: t.original_line,
                "path": lambda t, _: t.path,
                "pullRequest": lambda t, _: t.pr,
                "repository": lambda t, _: t.pr.repo,
                "resolvedBy": lambda t, _: t.resolved_by,
                "startLine": lambda t, _: None,
            },
            "PullRequestReviewComment": {
                "author": lambda c, _: c.author,
                "body": lambda c, _: c.body,
                "commit": lambda c, _: self.world.commit(c.thread.pr.repo, c.commit_sha),
                "createdAt": lambda c, _: iso(c.created_at),
                "databaseId": lambda c, _: c.id,
                "fullDatabaseId": lambda c, _: str(c.id),
                "id": lambda c, _: c.node_id,
                "line": lambda c, _: c.thread.line,
                "originalLine": lambda c, _: c.thread.original_line,
                "outdated": lambda c, _: c.thread.is_outdated,
                "path": lambda c, _: c.thread.path,
                "pullRequest": lambda c, _: c.thread.pr,
                "pullRequestReview": lambda c, _: c.review,
                "replyTo": lambda c, _: c.reply_to,
                "resourcePath": lambda c, _: (
                    f"/{c.thread.pr.repo.full_name}/pull/{c.thread.pr.number}#discussion_r{c.id}"
                ),
                "updatedAt": lambda c, _: iso(c.updated_at),
                "url": lambda c, _: (
                    f"{web}/{c.thread.pr.repo.full_name}/pull/{c.thread.pr.number}#discussion_r{c.id}"
                ),
            },
        }

    def _pull_request_fields(self) -> dict[str, Resolver]:
        world, web = self.world, self.world.web_url
        return {
            "additions": lambda p, _: p.additions,
            "author": lambda p, _: p.author,
            "baseRefName": lambda p, _: p.base_ref,
            "baseRefOid": lambda p, _: p.base_sha,
            "baseRepository": lambda p, _: p.repo,
            "body": lambda p, _: p.body,
            "changedFiles": lambda p, _: p.changed_files,
            "closed": lambda p, _: p.state == "closed",
            "closedAt": lambda p, _: iso_or_none(p.closed_at),
            "commits": lambda p, args: connection(
                [PrCommit(p, world.commit(p.repo, sha)) for sha in p.commits], args
            ),
            "createdAt": lambda p, _: iso(p.created_at),
            "databaseId": lambda p, _: p.id,
            "deletions": lambda p, _: p.deletions,
            "fullDatabaseId": lambda p, _: str(p.id),
            "headRefName": lambda p, _: p.head_ref,
            "headRefOid": lambda p, _: p.head_sha,
            "headRepository": lambda p, _: p.head_repository,
            "id": lambda p, _: p.node_id,
            "isCrossRepository": lambda p, _: p.is_cross_repository,
            "isDraft": lambda p, _: p.draft,
            "mergeCommit": lambda p, _: (
                world.commit(p.repo, p.merge_commit_sha) if p.merge_commit_sha else None
            ),
            "mergeStateStatus": lambda p, _: world.merge_state_status(p),
            "mergeable": lambda p, _: world.mergeable(p),
            "merged": lambda p, _: p.merged,
            "mergedAt": lambda p, _: iso_or_none(p.merged_at),
            "mergedBy": lambda p, _: p.merged_by,
            "number": lambda p, _: p.number,
            "repository": lambda p, _: p.repo,
            "resourcePath": lambda p, _: f"/{p.repo.full_name}/pull/{p.number}",
            "reviewDecision": lambda p, _: world.review_decision(p),
            "reviewThreads": lambda p, args: connection(p.threads, args),
            "reviews": self._reviews,
            "state": lambda p, _: "MERGED" if p.merged else p.state.upper(),
            "statusCheckRollup": lambda p, _: self._rollup(p.repo, p.head_sha),
            "title": lambda p, _: p.title,
            "updatedAt": lambda p, _: iso(p.updated_at),
            "url": lambda p, _: f"{web}/{p.repo.full_name}/pull/{p.number}",
        }

    # -- resolution ------------------------------------------------------------------------

    def resolve(
        self, source: object, info: GraphQLResolveInfo[RequestContext], **args: Any
    ) -> object:
        if isinstance(source, dict):
            return source.get(info.field_name)
        if info.parent_type.name == "Query" and info.field_name in {"viewer", "rateLimit"}:
            context = info.context
            return context.viewer if info.field_name == "viewer" else context.rate_limit
        return self.tables[info.parent_type.name][info.field_name](source, args)

    def type_name(
        self, value: object, info: GraphQLResolveInfo[RequestContext], abstract: object
    ) -> str:
        if isinstance(value, Account):
            return {AccountType.BOT: "Bot", AccountType.ORGANIZATION: "Organization"}.get(
                value.type, "User"
            )
        names: dict[type, str] = {
            Repo: "Repository",
            PullRequest: "PullRequest",
            CheckRun: "CheckRun",
            CheckSuite: "CheckSuite",
            CommitStatus: "StatusContext",
            Review: "PullRequestReview",
            ReviewThread: "PullRequestReviewThread",
            ReviewComment: "PullRequestReviewComment",
            App: "App",
            Commit: "Commit",
        }
        return names[type(value)]

    # -- fields with logic -----------------------------------------------------------------

    def _account_path(self, account: Account) -> str:
        if account.type is AccountType.BOT:
            return f"apps/{account.login.removesuffix('[bot]')}"
        return account.login

    def _repository(self, owner: str, name: str, args: Args) -> Repo:
        found = self.world.find_repo(owner, name)
        if found is None or (found[1] and not args.get("followRenames", True)):
            raise GitHubFieldError(
                "NOT_FOUND", f"Could not resolve to a Repository with the name '{owner}/{name}'."
            )
        return found[0]

    def _node(self, node_id: str) -> object:
        node = self.world.nodes.get(node_id)
        if node is None:
            raise GitHubFieldError(
                "NOT_FOUND", f"Could not resolve to a node with the global id of '{node_id}'"
            )
        return node

    def _pull_request(self, repo: Repo, args: Args) -> PullRequest:
        pr = self.world.pull(repo, args["number"])
        if pr is None:
            raise GitHubFieldError(
                "NOT_FOUND",
                f"Could not resolve to a PullRequest with the number of {args['number']}.",
            )
        return pr

    def _pull_requests(self, repo: Repo, args: Args) -> dict[str, object]:
        pulls = self.world.pulls_of(repo)
        states = args.get("states")
        if states:
            pulls = [p for p in pulls if ("MERGED" if p.merged else p.state.upper()) in states]
        if args.get("headRefName") is not None:
            pulls = [p for p in pulls if p.head_ref == args["headRefName"]]
        if args.get("baseRefName") is not None:
            pulls = [p for p in pulls if p.base_ref == args["baseRefName"]]
        if args.get("labels"):
            pulls = []  # the world's PRs carry no labels
        order = args.get("orderBy")
        if order:
            key = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at"}.get(
                order["field"], "created_at"
            )
            pulls.sort(
                key=lambda p: (getattr(p, key), p.number), reverse=order["direction"] == "DESC"
            )
        return connection(pulls, args)

    def _reviews(self, pr: PullRequest, args: Args) -> dict[str, object]:
        reviews = pr.reviews
        if args.get("states"):
            reviews = [r for r in reviews if r.state in args["states"]]
        if args.get("author") is not None:
            reviews = [r for r in reviews if r.author.login == args["author"]]
        return connection(reviews, args)

    def _rollup(self, repo: Repo, sha: str) -> Rollup | None:
        return Rollup(repo, sha) if self.world.rollup_state(repo, sha) is not None else None

    def _contexts(self, rollup: Rollup, args: Args) -> dict[str, object]:
        runs = self.world.latest_runs(rollup.repo, rollup.sha)
        statuses = self.world.latest_statuses(rollup.repo, rollup.sha)
        return connection(
            [*runs, *statuses], args, checkRunCount=len(runs), statusContextCount=len(statuses)
        )
