"""Scenario helpers for CI and review: check runs and suites (GitHub Actions by default, with
job logs), commit statuses, reviews and review threads."""

from __future__ import annotations

from tests.fakes.github.joblogs import failing_job_lines, passing_job_lines, render_job_log
from tests.fakes.github.model import (
    CHECK_CONCLUSIONS,
    CHECK_STATUSES,
    REVIEW_STATES,
    STATUS_STATES,
    Account,
    App,
    CheckRun,
    CheckSuite,
    CommitStatus,
    PullRequest,
    Repo,
    Review,
    ReviewComment,
    ReviewThread,
)
from tests.fakes.github.world_state import Change, WorldState


class CiScenarios(WorldState):
    # -- checks and statuses -------------------------------------------------------------

    def add_check_run(
        self,
        target: PullRequest | str,
        name: str,
        *,
        repo: Repo | None = None,
        app: App | None = None,
        status: str = "queued",
        conclusion: str | None = None,
        details_url: str | None = None,
        log: str | list[str] | None = None,
    ) -> CheckRun:
        """A check run on ``target`` (a PR's current head, or a SHA in ``repo``), by GitHub
        Actions unless ``app`` says otherwise. A conclusion implies ``completed``."""
        repo, sha, branch = self._target(target, repo)
        app = app or self.actions
        if status not in CHECK_STATUSES or (conclusion and conclusion not in CHECK_CONCLUSIONS):
            raise ValueError(f"bad check state {status!r}/{conclusion!r}")
        suite = self._suite(repo, sha, branch, app)
        now, number = self._now(), self._new_id()
        done = conclusion is not None
        if app is self.actions and details_url is None:
            details_url = f"{self.web_url}/{repo.full_name}/actions/runs/{suite.id}/job/{number}"
        run = CheckRun(
            id=number,
            node_id=self._node_id("CR", number),
            suite=suite,
            name=name,
            status="completed" if done else status,
            conclusion=conclusion,
            details_url=details_url,
            started_at=now if status != "queued" or done else None,
            completed_at=now if done else None,
        )
        run.log = self._log_for(run, log) if done else None
        suite.runs.append(run)
        suite.updated_at = now
        self.runs[run.id] = run
        self.nodes[run.node_id] = run
        self._emit(Change("check_run", "created", repo, run, self._app_actor(app)))
        if done:
            self._completed(run)
        return run

    def start_check(self, run: CheckRun) -> None:
        """queued -> in_progress (GitHub sends no webhook for this step)."""
        run.status, run.started_at = "in_progress", self._now()

    def finish_check(
        self, run: CheckRun, conclusion: str, *, log: str | list[str] | None = None
    ) -> None:
        if conclusion not in CHECK_CONCLUSIONS:
            raise ValueError(f"unknown conclusion {conclusion!r}")
        now = self._now()
        run.status, run.conclusion, run.completed_at = "completed", conclusion, now
        run.started_at = run.started_at or now
        run.log = self._log_for(run, log)
        self._completed(run)

    def rerun(self, run: CheckRun) -> CheckRun:
        """A re-run: a new queued run (new id, so a new job id) with the same name and suite."""
        self._emit(
            Change("check_run", "rerequested", run.suite.repo, run, self._app_actor(run.app))
        )
        return self.add_check_run(run.head_sha, run.name, repo=run.suite.repo, app=run.app)

    def set_status(
        self,
        target: PullRequest | str,
        context: str,
        state: str,
        *,
        repo: Repo | None = None,
        target_url: str | None = None,
        description: str | None = None,
        creator: Account | None = None,
    ) -> CommitStatus:
        """``POST /statuses/{sha}``: adds to the commit's status log; the newest per context counts."""
        if state not in STATUS_STATES:
            raise ValueError(f"unknown status state {state!r}")
        repo, sha, _ = self._target(target, repo)
        now, number = self._now(), self._new_id()
        status = CommitStatus(
            number,
            self._node_id("SC", number),
            repo,
            sha,
            context,
            state,
            target_url,
            description,
            creator or repo.owner,
            now,
            now,
        )
        self.statuses.append(status)
        self.nodes[status.node_id] = status
        self._emit(Change("status", None, repo, status, status.creator))
        return status

    def _target(self, target: PullRequest | str, repo: Repo | None) -> tuple[Repo, str, str | None]:
        if isinstance(target, PullRequest):
            return target.repo, target.head_sha, target.head_ref
        if repo is None:
            raise ValueError("a bare SHA needs repo=")
        return repo, target, None

    def _suite(self, repo: Repo, sha: str, branch: str | None, app: App) -> CheckSuite:
        for suite in self.suites:
            if suite.repo is repo and suite.head_sha == sha and suite.app is app:
                return suite
        now, number = self._now(), self._new_id()
        suite = CheckSuite(number, self._node_id("CS", number), repo, app, sha, branch, now, now)
        self.suites.append(suite)
        self.nodes[suite.node_id] = suite
        return suite

    def _completed(self, run: CheckRun) -> None:
        suite = run.suite
        suite.updated_at = self._now()
        actor = self._app_actor(run.app)
        self._emit(Change("check_run", "completed", suite.repo, run, actor))
        if all(other.status == "completed" for other in suite.runs):
            self._emit(Change("check_suite", "completed", suite.repo, suite, actor))

    def _log_for(self, run: CheckRun, log: str | list[str] | None) -> str | None:
        if run.app is not self.actions:
            return None  # an app's check run has no job, hence no log
        if isinstance(log, str):
            return log
        lines = log
        if lines is None:
            lines = (
                passing_job_lines(run.name)
                if run.conclusion == "success"
                else failing_job_lines(run.name)
            )
        return render_job_log(lines, started_at=run.started_at or self._now())

    def _app_actor(self, app: App) -> Account:
        login = f"{app.slug}[bot]"
        return self.accounts.get(login.lower()) or self.add_user(login, bot=True)

    # -- reviews -------------------------------------------------------------------------

    def add_review(
        self, pr: PullRequest, author: Account, *, state: str = "APPROVED", body: str = ""
    ) -> Review:
        if state not in REVIEW_STATES:
            raise ValueError(f"unknown review state {state!r}")
        now, number = self._now(), self._new_id()
        review = Review(
            number, self._node_id("PRR", number), pr, author, state, body, pr.head_sha, now
        )
        pr.reviews.append(review)
        pr.updated_at = now
        self.nodes[review.node_id] = review
        self._emit(Change("pull_request_review", "submitted", pr.repo, review, author))
        return review

    def add_review_thread(
        self, pr: PullRequest, author: Account, *, path: str, line: int, body: str
    ) -> ReviewThread:
        number = self._new_id()
        thread = ReviewThread(self._node_id("PRRT", number), pr, path, line, line)
        pr.threads.append(thread)
        self.nodes[thread.node_id] = thread
        self.reply(thread, author, body)
        return thread

    def reply(self, thread: ReviewThread, author: Account, body: str) -> ReviewComment:
        now, number = self._now(), self._new_id()
        first = thread.comments[0] if thread.comments else None  # replies point at the top
        comment = ReviewComment(
            number,
            self._node_id("PRRC", number),
            thread,
            author,
            body,
            thread.pr.head_sha,
            now,
            now,
            reply_to=first,
        )
        thread.comments.append(comment)
        thread.pr.updated_at = now
        self.nodes[comment.node_id] = comment
        self._emit(
            Change("pull_request_review_comment", "created", thread.pr.repo, comment, author)
        )
        return comment

    def resolve_thread(self, thread: ReviewThread, *, by: Account | None = None) -> None:
        thread.is_resolved, thread.resolved_by = True, by or thread.pr.author
        self._emit(
            Change(
                "pull_request_review_thread", "resolved", thread.pr.repo, thread, thread.resolved_by
            )
        )

    def unresolve_thread(self, thread: ReviewThread, *, by: Account | None = None) -> None:
        thread.is_resolved, thread.resolved_by = False, None
        self._emit(
            Change(
                "pull_request_review_thread",
                "unresolved",
                thread.pr.repo,
                thread,
                by or thread.pr.author,
            )
        )

    def mark_outdated(self, thread: ReviewThread) -> None:
        """The lines the thread was on changed: outdated, and no current ``line`` any more."""
        thread.is_outdated, thread.line = True, None
