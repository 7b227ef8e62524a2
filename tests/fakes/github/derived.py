"""Facts GitHub computes from the stored ones: the latest run per check, the combined commit
status, the status-check rollup, a suite's state, the review decision and mergeability."""

from __future__ import annotations

from collections.abc import Iterable

from tests.fakes.github.model import CheckRun, CheckSuite, CommitStatus, PullRequest

# A completed check run with one of these conclusions makes the rollup fail.
FAILING_CONCLUSIONS = frozenset(
    {"action_required", "cancelled", "failure", "startup_failure", "timed_out"}
)


def latest_runs(runs: Iterable[CheckRun]) -> list[CheckRun]:
    """The newest run per (app, name): a re-run replaces its predecessor, as REST's default
    ``filter=latest`` and the rollup show it. Ordered by id."""
    newest: dict[tuple[int, str], CheckRun] = {}
    for run in runs:
        key = (run.app.id, run.name)
        if key not in newest or run.id > newest[key].id:
            newest[key] = run
    return sorted(newest.values(), key=lambda run: run.id)


def latest_statuses(statuses: Iterable[CommitStatus]) -> list[CommitStatus]:
    """The newest status per context (a commit's statuses are a log; each context counts
    once), ordered by when the context first appeared."""
    newest: dict[str, CommitStatus] = {}
    first_seen: dict[str, int] = {}
    for status in statuses:
        first_seen.setdefault(status.context, status.id)
        if status.context not in newest or status.id > newest[status.context].id:
            newest[status.context] = status
    return sorted(newest.values(), key=lambda status: first_seen[status.context])


def combined_state(statuses: list[CommitStatus]) -> str:
    """REST's combined status over the latest status per context: ``failure`` if any is
    error or failure, ``pending`` if any is pending or there are none, else ``success``."""
    states = {status.state for status in statuses}
    if states & {"error", "failure"}:
        return "failure"
    if not states or "pending" in states:
        return "pending"
    return "success"


def run_rollup_state(run: CheckRun) -> str:
    if run.status != "completed":
        return "PENDING"
    if run.conclusion in FAILING_CONCLUSIONS:
        return "FAILURE"
    return "SUCCESS"


def rollup_state(runs: list[CheckRun], statuses: list[CommitStatus]) -> str | None:
    """``statusCheckRollup.state`` over the latest runs and statuses; ``None`` (no rollup)
    while the commit has neither."""
    if not runs and not statuses:
        return None
    states = {run_rollup_state(run) for run in runs} | {s.state.upper() for s in statuses}
    for verdict in ("FAILURE", "ERROR", "PENDING"):
        if verdict in states:
            return verdict
    return "SUCCESS"


def suite_status(suite: CheckSuite) -> str:
    runs = latest_runs(suite.runs)
    if not runs or all(run.status == "completed" for run in runs):
        return "completed" if runs else "queued"
    if any(run.status == "in_progress" for run in runs):
        return "in_progress"
    return "queued"


def suite_conclusion(suite: CheckSuite) -> str | None:
    runs = latest_runs(suite.runs)
    if not runs or suite_status(suite) != "completed":
        return None
    conclusions = [run.conclusion for run in runs]
    for verdict in ("failure", "timed_out", "startup_failure", "action_required", "cancelled"):
        if verdict in conclusions:
            return verdict
    if all(conclusion in {"skipped", "neutral"} for conclusion in conclusions):
        return "neutral" if "neutral" in conclusions else "skipped"
    return "success"


def review_decision(pr: PullRequest, *, review_required: bool) -> str | None:
    """The latest opinionated review per author decides: any CHANGES_REQUESTED wins, then
    APPROVED; otherwise REVIEW_REQUIRED when the base branch requires a review, else null."""
    latest: dict[int, str] = {}
    for review in sorted(pr.reviews, key=lambda r: r.submitted_at):
        if review.state in {"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}:
            latest[review.author.id] = review.state
    verdicts = set(latest.values())
    if "CHANGES_REQUESTED" in verdicts:
        return "CHANGES_REQUESTED"
    if "APPROVED" in verdicts:
        return "APPROVED"
    return "REVIEW_REQUIRED" if review_required else None


def mergeable(pr: PullRequest, now: float) -> str:
    """``MERGEABLE``/``CONFLICTING``, or ``UNKNOWN`` while GitHub is still computing it (after
    a push, or after the base moved) and for a PR that is no longer open."""
    if pr.state != "open" or now < pr.mergeable_known_at:
        return "UNKNOWN"
    return "CONFLICTING" if pr.conflicting else "MERGEABLE"


def merge_state_status(
    pr: PullRequest, now: float, *, rollup: str | None, decision: str | None
) -> str:
    state = mergeable(pr, now)
    if state == "UNKNOWN":
        return "UNKNOWN"
    if state == "CONFLICTING":
        return "DIRTY"
    if pr.merge_state_override is not None:
        return pr.merge_state_override
    if pr.draft or decision in {"CHANGES_REQUESTED", "REVIEW_REQUIRED"}:
        return "BLOCKED"  # github.com reports drafts as BLOCKED, not the deprecated DRAFT
    if rollup in {"FAILURE", "ERROR", "PENDING"}:
        return "UNSTABLE"  # the world has no required checks, which would make it BLOCKED
    return "CLEAN"
