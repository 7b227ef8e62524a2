"""REST representations, field-level as GitHub's REST API (2022-11-28) sends them, for the
fields a client could read. Webhook payloads reuse them, as GitHub's do."""

from __future__ import annotations

from tests.fakes.github import derived
from tests.fakes.github.clock import iso, iso_or_none
from tests.fakes.github.model import (
    Account,
    App,
    CheckRun,
    CheckSuite,
    CommitStatus,
    PullRequest,
    Repo,
    Review,
    ReviewComment,
)
from tests.fakes.github.world import World

JSON = dict[str, object]


def account_json(world: World, account: Account) -> JSON:
    return {
        "login": account.login,
        "id": account.id,
        "node_id": account.node_id,
        "avatar_url": f"https://avatars.githubusercontent.com/u/{account.id}?v=4",
        "gravatar_id": "",
        "url": f"{world.api_url}/users/{account.login}",
        "html_url": f"{world.web_url}/{account.login}",
        "type": str(account.type),
        "site_admin": False,
        "user_view_type": "public",
    }


def user_json(world: World, account: Account) -> JSON:
    """``GET /user``: the account plus its profile."""
    return {
        **account_json(world, account),
        "name": account.name,
        "created_at": iso(account.created_at),
    }


def repo_json(world: World, repo: Repo) -> JSON:
    return {
        "id": repo.id,
        "node_id": repo.node_id,
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": account_json(world, repo.owner),
        "html_url": f"{world.web_url}/{repo.full_name}",
        "description": None,
        "fork": repo.parent is not None,
        "url": f"{world.api_url}/repos/{repo.full_name}",
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.updated_at),
        "default_branch": repo.default_branch,
        "visibility": "private" if repo.private else "public",
        "archived": False,
        "disabled": False,
    }


def _ref_json(world: World, repo: Repo | None, owner: Account, ref: str, sha: str) -> JSON:
    return {
        "label": f"{owner.login}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": account_json(world, owner),
        "repo": None if repo is None else repo_json(world, repo),
    }


def pr_simple_json(world: World, pr: PullRequest) -> JSON:
    """A PR as lists show it: no ``merged``, ``mergeable`` or line counts (GitHub fills
    those only on the single-PR endpoint)."""
    api = f"{world.api_url}/repos/{pr.repo.full_name}"
    return {
        "url": f"{api}/pulls/{pr.number}",
        "id": pr.id,
        "node_id": pr.node_id,
        "html_url": f"{world.web_url}/{pr.repo.full_name}/pull/{pr.number}",
        "diff_url": f"{world.web_url}/{pr.repo.full_name}/pull/{pr.number}.diff",
        "issue_url": f"{api}/issues/{pr.number}",
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": account_json(world, pr.author),
        "body": pr.body or None,
        "created_at": iso(pr.created_at),
        "updated_at": iso(pr.updated_at),
        "closed_at": iso_or_none(pr.closed_at),
        "merged_at": iso_or_none(pr.merged_at),
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "labels": [],
        "draft": pr.draft,
        "statuses_url": f"{api}/statuses/{pr.head_sha}",
        "head": _ref_json(world, pr.head_repository, pr.head_repo.owner, pr.head_ref, pr.head_sha),
        "base": _ref_json(world, pr.repo, pr.repo.owner, pr.base_ref, pr.base_sha),
        "author_association": "OWNER" if pr.author is pr.repo.owner else "CONTRIBUTOR",
        "auto_merge": None,
    }


def pr_full_json(world: World, pr: PullRequest) -> JSON:
    """``GET /pulls/{n}``: ``mergeable`` is null while GitHub is still computing it."""
    verdict = world.mergeable(pr)
    return {
        **pr_simple_json(world, pr),
        "merged": pr.merged,
        "mergeable": None if verdict == "UNKNOWN" else verdict == "MERGEABLE",
        "rebaseable": None if verdict == "UNKNOWN" else verdict == "MERGEABLE",
        "mergeable_state": world.merge_state_status(pr).lower(),
        "merged_by": None if pr.merged_by is None else account_json(world, pr.merged_by),
        "comments": 0,
        "review_comments": sum(len(thread.comments) for thread in pr.threads),
        "maintainer_can_modify": False,
        "commits": len(pr.commits),
        "additions": pr.additions,
        "deletions": pr.deletions,
        "changed_files": pr.changed_files,
    }


def app_json(world: World, app: App) -> JSON:
    return {
        "id": app.id,
        "slug": app.slug,
        "node_id": app.node_id,
        "name": app.name,
        "html_url": f"{world.web_url}/apps/{app.slug}",
        "created_at": iso(app.created_at),
        "updated_at": iso(app.created_at),
    }


def _pr_refs(world: World, repo: Repo, sha: str) -> list[JSON]:
    """The open PRs of the same repository whose head is ``sha``; GitHub leaves PRs from
    forks out of a check's ``pull_requests``."""

    def ref(repo_: Repo, ref_: str, sha_: str) -> JSON:
        return {
            "ref": ref_,
            "sha": sha_,
            "repo": {
                "id": repo_.id,
                "url": f"{world.api_url}/repos/{repo_.full_name}",
                "name": repo_.name,
            },
        }

    return [
        {
            "url": f"{world.api_url}/repos/{repo.full_name}/pulls/{pr.number}",
            "id": pr.id,
            "number": pr.number,
            "head": ref(pr.head_repo, pr.head_ref, pr.head_sha),
            "base": ref(pr.repo, pr.base_ref, pr.base_sha),
        }
        for pr in world.pulls_of(repo)
        if pr.state == "open" and pr.head_sha == sha and not pr.is_cross_repository
    ]


def check_run_json(world: World, run: CheckRun) -> JSON:
    repo = run.suite.repo
    return {
        "id": run.id,
        "name": run.name,
        "node_id": run.node_id,
        "head_sha": run.head_sha,
        "external_id": run.external_id or "",
        "url": f"{world.api_url}/repos/{repo.full_name}/check-runs/{run.id}",
        "html_url": f"{world.web_url}/{repo.full_name}/runs/{run.id}",
        "details_url": run.details_url,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": iso_or_none(run.started_at),
        "completed_at": iso_or_none(run.completed_at),
        "output": {
            "title": run.title,
            "summary": run.summary,
            "text": run.text,
            "annotations_count": 0,
            "annotations_url": f"{world.api_url}/repos/{repo.full_name}/check-runs/{run.id}/annotations",
        },
        "check_suite": {"id": run.suite.id},
        "app": app_json(world, run.app),
        "pull_requests": _pr_refs(world, repo, run.head_sha),
    }


def check_suite_json(world: World, suite: CheckSuite) -> JSON:
    api = f"{world.api_url}/repos/{suite.repo.full_name}"
    return {
        "id": suite.id,
        "node_id": suite.node_id,
        "head_branch": suite.head_branch,
        "head_sha": suite.head_sha,
        "status": derived.suite_status(suite),
        "conclusion": derived.suite_conclusion(suite),
        "url": f"{api}/check-suites/{suite.id}",
        "before": None,
        "after": suite.head_sha,
        "pull_requests": _pr_refs(world, suite.repo, suite.head_sha),
        "app": app_json(world, suite.app),
        "created_at": iso(suite.created_at),
        "updated_at": iso(suite.updated_at),
        "latest_check_runs_count": len(derived.latest_runs(suite.runs)),
        "check_runs_url": f"{api}/check-suites/{suite.id}/check-runs",
    }


def status_json(world: World, status: CommitStatus) -> JSON:
    return {
        "url": f"{world.api_url}/repos/{status.repo.full_name}/statuses/{status.sha}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{status.creator.id}?v=4",
        "id": status.id,
        "node_id": status.node_id,
        "state": status.state,
        "description": status.description,
        "target_url": status.target_url,
        "context": status.context,
        "created_at": iso(status.created_at),
        "updated_at": iso(status.updated_at),
        "creator": account_json(world, status.creator),
    }


def review_json(world: World, review: Review) -> JSON:
    pr = review.pr
    return {
        "id": review.id,
        "node_id": review.node_id,
        "user": account_json(world, review.author),
        "body": review.body,
        "state": review.state,
        "html_url": f"{world.web_url}/{pr.repo.full_name}/pull/{pr.number}#pullrequestreview-{review.id}",
        "pull_request_url": f"{world.api_url}/repos/{pr.repo.full_name}/pulls/{pr.number}",
        "author_association": "CONTRIBUTOR",
        "submitted_at": iso(review.submitted_at),
        "commit_id": review.commit_sha,
    }


def review_comment_json(world: World, comment: ReviewComment) -> JSON:
    thread, pr = comment.thread, comment.thread.pr
    body: JSON = {
        "url": f"{world.api_url}/repos/{pr.repo.full_name}/pulls/comments/{comment.id}",
        "pull_request_review_id": comment.review.id if comment.review else None,
        "id": comment.id,
        "node_id": comment.node_id,
        "diff_hunk": f"@@ -1,3 +1,3 @@ {thread.path}",
        "path": thread.path,
        "commit_id": comment.commit_sha,
        "original_commit_id": thread.comments[0].commit_sha,
        "user": account_json(world, comment.author),
        "body": comment.body,
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.updated_at),
        "html_url": f"{world.web_url}/{pr.repo.full_name}/pull/{pr.number}#discussion_r{comment.id}",
        "pull_request_url": f"{world.api_url}/repos/{pr.repo.full_name}/pulls/{pr.number}",
        "author_association": "CONTRIBUTOR",
        "line": thread.line,
        "original_line": thread.original_line,
        "side": "RIGHT",
        "subject_type": "line",
    }
    if comment.reply_to is not None:  # the thread's first comment, as on GitHub
        body["in_reply_to_id"] = comment.reply_to.id
    return body
