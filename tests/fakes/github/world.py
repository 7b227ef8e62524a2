"""The fake GitHub's in-memory world and the scenario helpers tests build it with.

Helpers act as GitHub does: a push moves the head SHA and makes mergeability UNKNOWN for a
while, a merge refuses a stale ``sha``, a re-run adds a new check run under the same name,
statuses accumulate per context. Check runs and statuses do not touch a PR's ``updated_at``
(on GitHub they do not either, which is why a client needs its own CI guards). Every change
is announced to listeners as a :class:`Change`, which the webhook sender turns into a
delivery.

The state and its lookups live in :mod:`world_state`, the CI and review helpers in
:mod:`world_ci`; this module adds repositories and pull requests."""

from __future__ import annotations

from tests.fakes.github.model import MERGE_STATE_STATUSES, Account, PullRequest, Repo
from tests.fakes.github.world_ci import CiScenarios
from tests.fakes.github.world_state import Change


class MergeRefusedError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class World(CiScenarios):
    # -- repositories --------------------------------------------------------------------

    def create_repo(
        self, full_name: str, *, private: bool = False, default_branch: str = "main"
    ) -> Repo:
        owner_login, name = full_name.split("/")
        number, now = self._new_id(), self._now()
        repo = Repo(
            number,
            self._node_id("R", number),
            self._owner(owner_login),
            name,
            private,
            default_branch,
            now,
            now,
        )
        repo.branches[default_branch] = self.new_sha()
        self.repos[number] = repo
        self.repo_names[full_name.lower()] = repo
        self.nodes[repo.node_id] = repo
        return repo

    def fork(self, repo: Repo, owner: str) -> Repo:
        fork = self.create_repo(
            f"{owner}/{repo.name}", private=repo.private, default_branch=repo.default_branch
        )
        fork.parent = repo
        return fork

    def rename_repo(self, repo: Repo, new_full_name: str) -> None:
        """The old name keeps answering: REST with a 301, GraphQL by following the rename."""
        owner_login, name = new_full_name.split("/")
        repo.owner, repo.name = self._owner(owner_login), name
        self.repo_names[new_full_name.lower()] = repo

    def delete_repo(self, repo: Repo) -> None:
        """Gone for every lookup; PRs opened from it (a fork) show no head repository."""
        repo.deleted = True

    # -- pull requests -------------------------------------------------------------------

    def open_pr(
        self,
        repo: Repo,
        *,
        head_ref: str,
        author: Account,
        base_ref: str | None = None,
        title: str | None = None,
        body: str = "",
        draft: bool = False,
        head_repo: Repo | None = None,
        sha: str | None = None,
    ) -> PullRequest:
        number, now = self._new_id(), self._now()
        base = base_ref or repo.default_branch
        base_sha = repo.branches.setdefault(base, self.new_sha())
        pulls = self.pulls.setdefault(repo.id, {})
        pr = PullRequest(
            id=number,
            node_id=self._node_id("PR", number),
            number=len(pulls) + 1,
            repo=repo,
            head_repo=head_repo or repo,
            head_ref=head_ref,
            base_ref=base,
            base_sha=base_sha,
            title=title or f"Work on {head_ref}",
            body=body,
            author=author,
            created_at=now,
            updated_at=now,
            commits=[sha or self.new_sha()],
            draft=draft,
            mergeable_known_at=now + self.mergeability_delay,
        )
        pulls[pr.number] = pr
        self.nodes[pr.node_id] = pr
        self._emit(Change("pull_request", "opened", repo, pr, author))
        return pr

    def push(self, pr: PullRequest, *, sha: str | None = None, force: bool = False) -> str:
        """A new head commit; ``force`` replaces the PR's commits instead of adding one. The old
        head keeps its check runs and statuses; the new one starts with none."""
        before, after, now = pr.head_sha, sha or self.new_sha(), self._now()
        pr.commits = [after] if force else [*pr.commits, after]
        pr.updated_at = now
        pr.mergeable_known_at = now + self.mergeability_delay
        self._emit(
            Change(
                "pull_request",
                "synchronize",
                pr.repo,
                pr,
                pr.author,
                {"before": before, "after": after, "forced": force},
            )
        )
        return after

    def edit_pr(
        self, pr: PullRequest, *, title: str | None = None, body: str | None = None
    ) -> None:
        pr.title = pr.title if title is None else title
        pr.body = pr.body if body is None else body
        pr.updated_at = self._now()
        self._emit(Change("pull_request", "edited", pr.repo, pr, pr.author))

    def set_draft(self, pr: PullRequest, draft: bool) -> None:
        pr.draft, pr.updated_at = draft, self._now()
        action = "converted_to_draft" if draft else "ready_for_review"
        self._emit(Change("pull_request", action, pr.repo, pr, pr.author))

    def set_mergeable(self, pr: PullRequest, *, conflicting: bool, after: float = 0.0) -> None:
        """What GitHub will answer once it has computed it, ``after`` seconds from now."""
        pr.conflicting, pr.mergeable_known_at = conflicting, self._now() + after

    def set_merge_state(self, pr: PullRequest, status: str | None) -> None:
        """Force ``mergeStateStatus`` (BEHIND, HAS_HOOKS, ...) while the PR is mergeable."""
        if status is not None and status not in MERGE_STATE_STATUSES:
            raise ValueError(f"unknown merge state status {status!r}")
        pr.merge_state_override = status

    def close(self, pr: PullRequest, *, by: Account | None = None) -> None:
        now = self._now()
        pr.state, pr.closed_at, pr.updated_at = "closed", now, now
        self._emit(Change("pull_request", "closed", pr.repo, pr, by or pr.author))

    def reopen(self, pr: PullRequest, *, by: Account | None = None) -> None:
        if pr.merged:
            raise ValueError("a merged pull request cannot be reopened")
        pr.state, pr.closed_at, pr.updated_at = "open", None, self._now()
        self._emit(Change("pull_request", "reopened", pr.repo, pr, by or pr.author))

    def merge(self, pr: PullRequest, *, sha: str | None = None, by: Account | None = None) -> str:
        """Merge as ``PUT .../merge`` does: refuse (405) a PR that is not open or mergeable and
        (409) a ``sha`` that is no longer the head. Returns the merge commit's SHA."""
        if pr.state != "open" or pr.draft or (self.mergeable(pr) == "CONFLICTING"):
            raise MergeRefusedError(405, "Pull Request is not mergeable")
        if sha is not None and sha != pr.head_sha:
            raise MergeRefusedError(
                409, "Head branch was modified. Review and try the merge again."
            )
        now, merge_sha = self._now(), self.new_sha()
        pr.state, pr.closed_at, pr.merged_at, pr.updated_at = "closed", now, now, now
        pr.merged_by, pr.merge_commit_sha = by or pr.author, merge_sha
        pr.repo.branches[pr.base_ref] = merge_sha
        for other in self.pulls_of(pr.repo):
            if other.state == "open" and other.base_ref == pr.base_ref:
                other.mergeable_known_at = now + self.mergeability_delay  # its base moved
        self._emit(Change("pull_request", "closed", pr.repo, pr, pr.merged_by))
        return merge_sha

    # -- other consumers -----------------------------------------------------------------

    def consume(self, account: Account, resource: str, points: int) -> None:
        """Spend from ``account``'s bucket as the agents' own ``gh`` calls would."""
        self.rate_limits.charge(account.login, resource, points)
