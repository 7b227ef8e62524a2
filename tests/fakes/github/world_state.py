"""The world's stored state, its plumbing (clock, ids, change listeners, accounts) and the
read-side lookups the REST and GraphQL views share."""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.fakes.github import derived
from tests.fakes.github.clock import Clock, RealClock
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
)
from tests.fakes.github.ratelimit import RateLimits

GITHUB_ACTIONS_APP_ID = 15368  # GitHub Actions' app id on github.com


@dataclass(frozen=True)
class Change:
    """One thing that happened, named as the webhook GitHub would send for it."""

    event: str
    action: str | None
    repo: Repo
    subject: object
    sender: Account
    extra: dict[str, object] = field(default_factory=dict)


class WorldState:
    def __init__(
        self,
        clock: Clock | None = None,
        *,
        api_url: str = "https://api.github.com",
        web_url: str = "https://github.com",
    ) -> None:
        self.clock: Clock = clock or RealClock()
        self.api_url = api_url.rstrip("/")
        self.web_url = web_url.rstrip("/")
        self.rate_limits = RateLimits(self.clock)
        self.mergeability_delay = 0.0  # seconds GitHub takes to recompute after a push
        self._ids = itertools.count(100_001)
        self._shas = itertools.count(1)
        self._listeners: list[Callable[[Change], None]] = []
        self.accounts: dict[str, Account] = {}  # by lower-cased login
        self.tokens: dict[str, Account] = {}
        self.apps: dict[str, App] = {}  # by slug
        self.repos: dict[int, Repo] = {}
        self.repo_names: dict[str, Repo] = {}  # lower-cased full names, old ones included
        self.pulls: dict[int, dict[int, PullRequest]] = {}  # repo id -> number -> PR
        self.suites: list[CheckSuite] = []
        self.runs: dict[int, CheckRun] = {}
        self.statuses: list[CommitStatus] = []
        self.nodes: dict[str, object] = {}
        self._commits: dict[tuple[int, str], Commit] = {}
        self.actions = self.add_app(
            "github-actions", "GitHub Actions", app_id=GITHUB_ACTIONS_APP_ID
        )

    # -- plumbing ------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        self._listeners.append(listener)

    def _emit(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    def _now(self) -> float:
        return self.clock.now()

    def _new_id(self) -> int:
        return next(self._ids)

    def _node_id(self, prefix: str, number: int) -> str:
        packed = base64.urlsafe_b64encode(number.to_bytes(8, "big")).decode().rstrip("=")
        return f"{prefix}_kwDO{packed}"

    def new_sha(self) -> str:
        return hashlib.sha1(
            f"fake-commit-{next(self._shas)}".encode(), usedforsecurity=False
        ).hexdigest()

    # -- accounts, tokens, apps ----------------------------------------------------------

    def add_user(
        self, login: str, *, token: str | None = None, bot: bool = False, name: str | None = None
    ) -> Account:
        kind = AccountType.BOT if bot else AccountType.USER
        account = self._add_account(login, kind, name)
        if token is not None:
            self.tokens[token] = account
        return account

    def issue_token(self, account: Account, token: str) -> str:
        self.tokens[token] = account
        return token

    def revoke_token(self, token: str) -> None:
        self.tokens.pop(token, None)

    def _add_account(self, login: str, kind: AccountType, name: str | None) -> Account:
        if login.lower() in self.accounts:
            raise ValueError(f"account {login!r} exists")
        number = self._new_id()
        prefix = {AccountType.USER: "U", AccountType.BOT: "BOT", AccountType.ORGANIZATION: "O"}
        account = Account(
            number, self._node_id(prefix[kind], number), login, kind, name, self._now()
        )
        self.accounts[login.lower()] = account
        self.nodes[account.node_id] = account
        return account

    def _owner(self, login: str) -> Account:
        return self.accounts.get(login.lower()) or self._add_account(
            login, AccountType.ORGANIZATION, None
        )

    def add_app(self, slug: str, name: str, *, app_id: int | None = None) -> App:
        number = app_id or self._new_id()
        app = App(number, self._node_id("A", number), slug, name, self._now())
        self.apps[slug] = app
        self.nodes[app.node_id] = app
        return app

    # -- lookups -------------------------------------------------------------------------

    def account_for_token(self, token: str) -> Account | None:
        return self.tokens.get(token)

    def account(self, login: str) -> Account | None:
        return self.accounts.get(login.lower())

    def find_repo(self, owner: str, name: str) -> tuple[Repo, bool] | None:
        """The repo and whether ``owner/name`` is a former name of it (renamed, transferred)."""
        repo = self.repo_names.get(f"{owner}/{name}".lower())
        if repo is None or repo.deleted:
            return None
        return repo, repo.full_name.lower() != f"{owner}/{name}".lower()

    def repo_by_id(self, repo_id: int) -> Repo | None:
        repo = self.repos.get(repo_id)
        return None if repo is None or repo.deleted else repo

    def pulls_of(self, repo: Repo) -> list[PullRequest]:
        return sorted(self.pulls.get(repo.id, {}).values(), key=lambda pr: pr.number)

    def pull(self, repo: Repo, number: int) -> PullRequest | None:
        return self.pulls.get(repo.id, {}).get(number)

    def runs_for(self, repo: Repo, sha: str) -> list[CheckRun]:
        """Every run on the commit, superseded re-runs included, by id."""
        return sorted(
            (run for run in self.runs.values() if run.suite.repo is repo and run.head_sha == sha),
            key=lambda run: run.id,
        )

    def suites_for(self, repo: Repo, sha: str) -> list[CheckSuite]:
        return [suite for suite in self.suites if suite.repo is repo and suite.head_sha == sha]

    def statuses_for(self, repo: Repo, sha: str) -> list[CommitStatus]:
        return [s for s in self.statuses if s.repo is repo and s.sha == sha]

    def job(self, repo: Repo, job_id: int) -> CheckRun | None:
        run = self.runs.get(job_id)
        return run if run is not None and run.suite.repo is repo else None

    def resolve_ref(self, repo: Repo, ref: str) -> str | None:
        """A commit SHA for ``ref``: a SHA the repo knows, else a branch (an open PR's head
        branch first, then the repo's own branches)."""
        pulls = self.pulls_of(repo)
        for pr in pulls:
            if ref in pr.commits:
                return ref
        known = ref in repo.branches.values() or self.suites_for(repo, ref)
        if known or self.statuses_for(repo, ref):
            return ref
        for pr in pulls:
            if pr.state == "open" and pr.head_ref == ref and pr.head_repo is repo:
                return pr.head_sha
        return repo.branches.get(ref)

    def commit(self, repo: Repo, sha: str) -> Commit:
        key = (repo.id, sha)
        if key not in self._commits:
            node_id = f"C_kwDO{repo.id:x}{sha[:16]}"
            self._commits[key] = Commit(repo, sha, node_id)
            self.nodes[node_id] = self._commits[key]
        return self._commits[key]

    # -- derived facts, at the world's current time ----------------------------------------

    def latest_runs(self, repo: Repo, sha: str) -> list[CheckRun]:
        return derived.latest_runs(self.runs_for(repo, sha))

    def latest_statuses(self, repo: Repo, sha: str) -> list[CommitStatus]:
        return derived.latest_statuses(self.statuses_for(repo, sha))

    def rollup_state(self, repo: Repo, sha: str) -> str | None:
        return derived.rollup_state(self.latest_runs(repo, sha), self.latest_statuses(repo, sha))

    def review_decision(self, pr: PullRequest) -> str | None:
        return derived.review_decision(pr, review_required=pr.repo.requires_review)

    def mergeable(self, pr: PullRequest) -> str:
        return derived.mergeable(pr, self.clock.now())

    def merge_state_status(self, pr: PullRequest) -> str:
        return derived.merge_state_status(
            pr,
            self.clock.now(),
            rollup=self.rollup_state(pr.repo, pr.head_sha),
            decision=self.review_decision(pr),
        )
