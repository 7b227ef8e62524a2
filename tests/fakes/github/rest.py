"""The REST endpoints a PR observer calls: open-PR listing (with ``head=`` for a per-branch
lookup), one PR, merging, check runs and suites and the combined status for a ref, a job's
log redirect, review comments and reviews, ``/user`` and ``/rate_limit``.

Every repository route also answers under ``/repositories/{id}/...``, the form GitHub uses
in ``Link`` headers and rename redirects; a renamed repository's old name answers 301 there.
Lists are paged (``per_page`` ≤ 100, default 30) with GitHub's ``Link`` header; JSON GETs get
ETags. Unknown query parameters are ignored, as GitHub ignores them (``since`` on pulls)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from tests.fakes.github import bodies
from tests.fakes.github.blobs import LogBlobs
from tests.fakes.github.derived import combined_state
from tests.fakes.github.gateway import ApiError, ApiResult, Caller, Gateway
from tests.fakes.github.model import PullRequest, Repo
from tests.fakes.github.rest_json import (
    check_run_json,
    check_suite_json,
    pr_full_json,
    pr_simple_json,
    repo_json,
    review_comment_json,
    review_json,
    status_json,
    user_json,
)
from tests.fakes.github.world import MergeRefusedError, World

T = TypeVar("T")
PULLS_DOCS = "https://docs.github.com/rest/pulls/pulls"
MERGE_DOCS = f"{PULLS_DOCS}#merge-a-pull-request"
RepoHandler = Callable[[Request, Caller, Repo], Awaitable[ApiResult]]


class RestApi:
    def __init__(self, world: World, gateway: Gateway, blobs: LogBlobs) -> None:
        self.world, self.gateway, self.blobs = world, gateway, blobs

    def routes(self) -> list[BaseRoute]:
        repo_routes: list[tuple[str, RepoHandler, str]] = [
            ("/pulls", self.list_pulls, "GET"),
            ("/pulls/{number:int}", self.get_pull, "GET"),
            ("/pulls/{number:int}/merge", self.merge_pull, "PUT"),
            ("/pulls/{number:int}/comments", self.list_review_comments, "GET"),
            ("/pulls/{number:int}/reviews", self.list_reviews, "GET"),
            ("/commits/{ref:path}/check-runs", self.list_check_runs, "GET"),
            ("/commits/{ref:path}/check-suites", self.list_check_suites, "GET"),
            ("/commits/{ref:path}/status", self.combined_status, "GET"),
            ("/actions/jobs/{job_id:int}/logs", self.job_logs, "GET"),
        ]
        routes: list[BaseRoute] = [
            Route("/user", self.gateway.endpoint(self.get_user), methods=["GET"]),
            Route(
                "/rate_limit", self.gateway.endpoint(self.rate_limit, free=True), methods=["GET"]
            ),
        ]
        for suffix, handler, method in repo_routes:
            endpoint = self.gateway.endpoint(self._in_repo(handler))
            routes.append(Route(f"/repos/{{owner}}/{{repo}}{suffix}", endpoint, methods=[method]))
            routes.append(
                Route(f"/repositories/{{repo_id:int}}{suffix}", endpoint, methods=[method])
            )
        return routes

    async def not_found(self, request: Request, caller: Caller) -> ApiResult:
        return ApiResult(404, bodies.not_found())

    # -- plumbing ------------------------------------------------------------------------

    def _in_repo(self, handler: RepoHandler) -> Callable[[Request, Caller], Awaitable[ApiResult]]:
        async def resolved(request: Request, caller: Caller) -> ApiResult:
            repo = self._repo(request, caller)
            return await handler(request, caller, repo)

        return resolved

    def _repo(self, request: Request, caller: Caller) -> Repo:
        params = request.path_params
        if "repo_id" in params:
            repo = self.world.repo_by_id(params["repo_id"])
            moved = False
        else:
            found = self.world.find_repo(params["owner"], params["repo"])
            repo, moved = found if found else (None, False)
        if repo is None or (repo.private and caller.account is None):
            raise ApiError(404, bodies.not_found())
        if moved:
            location = f"{self.world.api_url}/repositories/{repo.id}{_suffix(request)}"
            if request.url.query:
                location += f"?{request.url.query}"
            body = {
                "message": "Moved Permanently",
                "url": location,
                "documentation_url": bodies.REST_DOCS,
            }
            raise ApiError(301, body, headers={"location": location})
        return repo

    def _pull(self, request: Request, repo: Repo) -> PullRequest:
        pr = self.world.pull(repo, request.path_params["number"])
        if pr is None:
            raise ApiError(404, bodies.not_found(PULLS_DOCS))
        return pr

    def _sha(self, request: Request, repo: Repo) -> str:
        ref: str = request.path_params["ref"]
        sha = self.world.resolve_ref(repo, ref)
        if sha is None:
            raise ApiError(422, bodies.rest_error(422, f"No commit found for SHA: {ref}"))
        return sha

    def _page(
        self, request: Request, repo: Repo, items: Sequence[T]
    ) -> tuple[list[T], dict[str, str]]:
        """One page of ``items`` and its ``Link`` header (none when everything fits)."""
        per_page = min(100, max(1, _int(request.query_params.get("per_page"), 30)))
        page = max(1, _int(request.query_params.get("page"), 1))
        last = max(1, -(-len(items) // per_page))
        chunk = list(items[(page - 1) * per_page : page * per_page])
        if last == 1:
            return chunk, {}

        def url(number: int) -> str:
            query = {**request.query_params, "per_page": str(per_page), "page": str(number)}
            return (
                f"{self.world.api_url}/repositories/{repo.id}{_suffix(request)}?{urlencode(query)}"
            )

        links = []
        if page > 1:
            links.append(f'<{url(min(page - 1, last))}>; rel="prev"')
        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
        return chunk, {"link": ", ".join(links)}

    # -- endpoints -------------------------------------------------------------------------

    async def get_user(self, request: Request, caller: Caller) -> ApiResult:
        if caller.account is None:
            return ApiResult(401, bodies.requires_authentication())
        return ApiResult(body=user_json(self.world, caller.account), conditional=True)

    async def rate_limit(self, request: Request, caller: Caller) -> ApiResult:
        resources = {}
        for resource in ("core", "graphql"):
            bucket = self.world.rate_limits.bucket(caller.identity, resource)
            resources[resource] = {
                "limit": bucket.limit,
                "used": bucket.used,
                "remaining": bucket.remaining,
                "reset": bucket.reset_epoch,
            }
        return ApiResult(body={"resources": resources, "rate": resources["core"]}, points=0)

    async def list_pulls(self, request: Request, caller: Caller, repo: Repo) -> ApiResult:
        query = request.query_params
        state = query.get("state", "open")
        pulls = [pr for pr in self.world.pulls_of(repo) if state == "all" or pr.state == state]
        if "head" in query:
            owner, _, ref = query["head"].partition(":")
            pulls = [
                pr
                for pr in pulls
                if pr.head_repo.owner.login.lower() == owner.lower() and pr.head_ref == ref
            ]
        if "base" in query:
            pulls = [pr for pr in pulls if pr.base_ref == query["base"]]
        sort = query.get("sort", "created")
        descending = query.get("direction", "desc" if sort == "created" else "asc") == "desc"
        if sort == "updated":
            pulls.sort(key=lambda pr: (pr.updated_at, pr.number), reverse=descending)
        else:
            pulls.sort(key=lambda pr: (pr.created_at, pr.number), reverse=descending)
        page, links = self._page(request, repo, pulls)
        body = [pr_simple_json(self.world, pr) for pr in page]
        return ApiResult(body=body, headers=links, conditional=True)

    async def get_pull(self, request: Request, caller: Caller, repo: Repo) -> ApiResult:
        pr = self._pull(request, repo)
        return ApiResult(body=pr_full_json(self.world, pr), conditional=True)

    async def merge_pull(self, request: Request, caller: Caller, repo: Repo) -> ApiResult:
        if caller.account is None:
            return ApiResult(401, bodies.requires_authentication())
        pr = self._pull(request, repo)
        raw = await request.body()
        try:
            options = json.loads(raw) if raw else {}
        except ValueError:
            return ApiResult(400, bodies.rest_error(400, "Problems parsing JSON", MERGE_DOCS))
        method = options.get("merge_method", "merge")
        if method not in {"merge", "squash", "rebase"}:
            return ApiResult(422, bodies.rest_error(422, "Validation Failed", MERGE_DOCS))
        try:
            sha = self.world.merge(pr, sha=options.get("sha"), by=caller.account)
        except MergeRefusedError as refused:
            return ApiResult(
                refused.status, bodies.rest_error(refused.status, refused.message, MERGE_DOCS)
            )
        return ApiResult(
            body={"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
        )

    async def list_review_comments(self, request: Request, caller: Caller, repo: Repo) -> ApiResult:
        pr = self._pull(request, repo)
        comments = sorted((c for t in pr.threads for c in t.comments), key=lambda c: c.id)
        page, links = self._page(request, repo, comments)
        return ApiResult(
            body=[review_comment_json(self.world, c) for c in page], headers=links, conditional=True
        )

    async def list_reviews(self, request: Request, caller: Caller, repo: Repo) -> ApiResult:
        pr = self._pull(request, repo)
        page, links = self._page(request, repo, pr.reviews)
        return ApiResult(
            body=[review_json(self.world, r) for r in page], headers=links, conditional=True
        )

    async def list_check_runs(self, request: Request, caller: Caller, repo: Repo) -> ApiResult:
        query = request.query_params
        sha = self._sha(request, repo)
        runs = self.world.runs_for(repo, sha)
        if query.get("filter", "latest") == "latest":
            runs = self.world.latest_runs(repo, sha)
        if "check_name" in query:
            runs = [run for run in runs if run.name == query["check_name"]]
        if "status" in query:
            runs = [run for run in runs if run.status == query["status"]]
        if "app_id" in query:
            runs = [run for run in runs if str(run.app.id) == query["app_id"]]
        page, links = self._page(request, repo, runs)
        body = {
            "total_count": len(runs),
            "check_runs": [check_run_json(self.world, r) for r in page],
        }
        return ApiResult(body=body, headers=links, conditional=True)

    async def list_check_suites(self, request: Request, caller: Caller, repo: Repo) -> ApiResult:
        suites = self.world.suites_for(repo, self._sha(request, repo))
        page, links = self._page(request, repo, suites)
        body = {
            "total_count": len(suites),
            "check_suites": [check_suite_json(self.world, s) for s in page],
        }
        return ApiResult(body=body, headers=links, conditional=True)

    async def combined_status(self, request: Request, caller: Caller, repo: Repo) -> ApiResult:
        sha = self._sha(request, repo)
        statuses = self.world.latest_statuses(repo, sha)
        page, links = self._page(request, repo, statuses)
        api = f"{self.world.api_url}/repos/{repo.full_name}/commits/{sha}"
        body = {
            "state": combined_state(statuses),
            "statuses": [status_json(self.world, s) for s in page],
            "sha": sha,
            "total_count": len(statuses),
            "repository": repo_json(self.world, repo),
            "commit_url": api,
            "url": f"{api}/status",
        }
        return ApiResult(body=body, headers=links, conditional=True)

    async def job_logs(self, request: Request, caller: Caller, repo: Repo) -> ApiResult:
        """302 to the blob origin for a finished GitHub Actions job; 404 while it runs, for an
        app's check run (no job behind it) and once the log is gone."""
        run = self.world.job(repo, request.path_params["job_id"])
        if (
            run is None
            or run.app is not self.world.actions
            or run.status != "completed"
            or run.log is None
        ):
            return ApiResult(
                404,
                bodies.not_found(
                    "https://docs.github.com/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run"
                ),
            )
        return ApiResult(302, headers={"location": self.blobs.signed_url(run)})


def _suffix(request: Request) -> str:
    """The path after ``/repos/{owner}/{repo}`` or ``/repositories/{id}``."""
    parts = request.url.path.split("/")
    return "/" + "/".join(parts[3:] if parts[1] == "repositories" else parts[4:])


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
