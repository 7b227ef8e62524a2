"""The pure source-control rules: check and CI mapping, mergeability, the failure
fingerprint, PR attribution, repository URLs and the engine's observation. Log tails are
in test_scm_log_tail.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from orchestrator.domain.model import (
    CheckStatus,
    CIState,
    Mergeability,
    PRObservation,
    PRState,
    ReviewDecision,
    SessionKind,
)
from orchestrator.domain.scm import (
    BranchClaim,
    CheckKind,
    PRDetail,
    PRSummary,
    RepoRef,
    ReviewComment,
    ReviewSnapshot,
    SCMCheck,
)
from orchestrator.domain.scm_rules import (
    attribute_pr,
    check_run_status,
    checks_fingerprint,
    failure_fingerprint,
    latest_per_name,
    mergeability,
    parse_repo_url,
    pr_ci,
    pr_mergeability,
    pr_state,
    review_decision,
    status_context_status,
    summarize_ci,
    to_observation,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REPO = RepoRef(owner="acme", name="app")


def check(
    name: str = "test",
    status: CheckStatus = CheckStatus.PASSED,
    *,
    commit: str = "sha1",
    run: int = 1,
    url: str = "",
    conclusion: str | None = None,
    started: datetime | None = None,
) -> SCMCheck:
    return SCMCheck(
        name=name,
        commit=commit,
        status=status,
        conclusion=conclusion,
        url=url or f"https://github.com/acme/app/actions/runs/{run}",
        provider_id=run,
        app="github-actions",
        started_at=started or T0 + timedelta(minutes=run),
    )


# --- check status --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "conclusion", "expected"),
    [
        ("COMPLETED", "SUCCESS", CheckStatus.PASSED),
        ("COMPLETED", "NEUTRAL", CheckStatus.PASSED),
        ("COMPLETED", "FAILURE", CheckStatus.FAILED),
        ("COMPLETED", "TIMED_OUT", CheckStatus.FAILED),
        ("COMPLETED", "ACTION_REQUIRED", CheckStatus.FAILED),
        ("COMPLETED", "STARTUP_FAILURE", CheckStatus.FAILED),
        ("COMPLETED", "CANCELLED", CheckStatus.CANCELLED),
        ("COMPLETED", "SKIPPED", CheckStatus.SKIPPED),
        ("COMPLETED", "STALE", CheckStatus.SKIPPED),
        ("QUEUED", None, CheckStatus.QUEUED),
        ("PENDING", None, CheckStatus.QUEUED),
        ("REQUESTED", None, CheckStatus.QUEUED),
        ("WAITING", None, CheckStatus.QUEUED),
        ("IN_PROGRESS", None, CheckStatus.IN_PROGRESS),
        ("COMPLETED", None, CheckStatus.UNKNOWN),
        ("SOMETHING_NEW", None, CheckStatus.UNKNOWN),
        ("COMPLETED", "SOMETHING_NEW", CheckStatus.UNKNOWN),
        # REST spells the same values in lower case
        ("completed", "failure", CheckStatus.FAILED),
        ("in_progress", None, CheckStatus.IN_PROGRESS),
        # a conclusion wins over a status that has not caught up
        ("IN_PROGRESS", "SUCCESS", CheckStatus.PASSED),
    ],
)
def test_a_check_run_maps_by_conclusion_then_status(
    status: str, conclusion: str | None, expected: CheckStatus
) -> None:
    assert check_run_status(status, conclusion) is expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("SUCCESS", CheckStatus.PASSED),
        ("FAILURE", CheckStatus.FAILED),
        ("ERROR", CheckStatus.FAILED),
        ("PENDING", CheckStatus.IN_PROGRESS),
        ("EXPECTED", CheckStatus.IN_PROGRESS),
        ("error", CheckStatus.FAILED),
        (None, CheckStatus.UNKNOWN),
    ],
)
def test_a_commit_status_maps_by_state(state: str | None, expected: CheckStatus) -> None:
    assert status_context_status(state) is expected


def test_only_the_newest_run_of_each_check_on_the_head_counts() -> None:
    first = check("test", CheckStatus.FAILED, run=1)
    rerun = check("test", CheckStatus.PASSED, run=2)
    lint = check("lint", CheckStatus.PASSED, run=3)
    old_commit = check("build", CheckStatus.FAILED, run=4, commit="old")
    assert latest_per_name([rerun, first, lint, old_commit], "sha1") == [rerun, lint]
    assert latest_per_name([first, rerun]) == [rerun]


# --- CI summary --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rollup", "expected"),
    [
        ("SUCCESS", CIState.PASSING),
        ("FAILURE", CIState.FAILING),
        ("ERROR", CIState.FAILING),
        ("PENDING", CIState.PENDING),
        ("EXPECTED", CIState.PENDING),
        ("WHATEVER", CIState.UNKNOWN),
    ],
)
def test_the_ci_summary_follows_the_rollup(rollup: str, expected: CIState) -> None:
    assert summarize_ci(rollup, [], complete=True) is expected


def test_no_checks_yet_is_unknown_never_failing() -> None:
    assert summarize_ci(None, [], complete=True) is CIState.UNKNOWN
    assert summarize_ci(None, [check(status=CheckStatus.QUEUED)], complete=True) is (
        CIState.PENDING
    )


def test_a_partial_check_set_proves_failure_but_never_success() -> None:
    failed = [check(status=CheckStatus.FAILED)]
    assert summarize_ci("PENDING", failed, complete=False) is CIState.FAILING
    assert summarize_ci("SUCCESS", [check()], complete=False) is CIState.UNKNOWN


def test_a_rerun_that_passes_clears_the_failure() -> None:
    detail = pr_detail(
        rollup_state="SUCCESS",
        checks=(check(status=CheckStatus.FAILED, run=1), check(status=CheckStatus.PASSED, run=2)),
    )
    assert pr_ci(detail) is CIState.PASSING


# --- mergeability, state, decision ---------------------------------------------------


@pytest.mark.parametrize(
    ("mergeable", "merge_state", "state", "ci", "review", "expected"),
    [
        ("MERGEABLE", "CLEAN", PRState.OPEN, CIState.PASSING, ReviewDecision.APPROVED, "mergeable"),
        ("MERGEABLE", "HAS_HOOKS", PRState.OPEN, CIState.PASSING, ReviewDecision.NONE, "mergeable"),
        ("CONFLICTING", "DIRTY", PRState.OPEN, CIState.PASSING, ReviewDecision.NONE, "conflicting"),
        ("UNKNOWN", "DIRTY", PRState.OPEN, CIState.PASSING, ReviewDecision.NONE, "conflicting"),
        ("UNKNOWN", "UNKNOWN", PRState.OPEN, CIState.PASSING, ReviewDecision.NONE, "unknown"),
        (None, None, PRState.OPEN, CIState.PASSING, ReviewDecision.NONE, "unknown"),
        ("MERGEABLE", "BLOCKED", PRState.OPEN, CIState.PASSING, ReviewDecision.NONE, "blocked"),
        ("MERGEABLE", "BEHIND", PRState.OPEN, CIState.PASSING, ReviewDecision.NONE, "blocked"),
        ("MERGEABLE", "DRAFT", PRState.OPEN, CIState.PASSING, ReviewDecision.NONE, "blocked"),
        ("MERGEABLE", "CLEAN", PRState.DRAFT, CIState.PASSING, ReviewDecision.NONE, "blocked"),
        (
            "MERGEABLE",
            "CLEAN",
            PRState.OPEN,
            CIState.PASSING,
            ReviewDecision.CHANGES_REQUESTED,
            "blocked",
        ),
        ("MERGEABLE", "UNSTABLE", PRState.OPEN, CIState.FAILING, ReviewDecision.NONE, "unstable"),
        ("MERGEABLE", "CLEAN", PRState.OPEN, CIState.FAILING, ReviewDecision.NONE, "unstable"),
        ("MERGEABLE", "UNKNOWN", PRState.OPEN, CIState.PASSING, ReviewDecision.NONE, "unknown"),
    ],
)
def test_mergeability_combines_github_state_with_draft_ci_and_review(
    mergeable: str | None,
    merge_state: str | None,
    state: PRState,
    ci: CIState,
    review: ReviewDecision,
    expected: str,
) -> None:
    assert mergeability(mergeable, merge_state, state, ci, review) is Mergeability(expected)


@pytest.mark.parametrize(
    ("state", "draft", "merged", "expected"),
    [
        ("OPEN", False, False, PRState.OPEN),
        ("OPEN", True, False, PRState.DRAFT),
        ("CLOSED", False, False, PRState.CLOSED),
        ("CLOSED", True, False, PRState.CLOSED),
        ("MERGED", False, True, PRState.MERGED),
        ("closed", False, True, PRState.MERGED),  # REST: closed plus merged_at
        ("open", False, False, PRState.OPEN),
    ],
)
def test_pr_state(state: str, draft: bool, merged: bool, expected: PRState) -> None:
    assert pr_state(state, draft=draft, merged=merged) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("APPROVED", ReviewDecision.APPROVED),
        ("CHANGES_REQUESTED", ReviewDecision.CHANGES_REQUESTED),
        ("REVIEW_REQUIRED", ReviewDecision.REVIEW_REQUIRED),
        (None, ReviewDecision.NONE),
        ("", ReviewDecision.NONE),
    ],
)
def test_review_decision(raw: str | None, expected: ReviewDecision) -> None:
    assert review_decision(raw) is expected


# --- fingerprints ------------------------------------------------------------------


def test_a_rerun_on_the_same_commit_keeps_the_failure_fingerprint() -> None:
    failed = check("test", CheckStatus.FAILED, run=1, conclusion="failure")
    rerun = check("test", CheckStatus.FAILED, run=2, conclusion="failure", url="https://x/2")
    passing = check("lint", CheckStatus.PASSED, run=3)
    before = failure_fingerprint("PR_1", "sha1", [failed, passing])
    assert failure_fingerprint("PR_1", "sha1", [rerun]) == before


@pytest.mark.parametrize(
    "changed",
    [
        {"pr": "PR_2"},
        {"sha": "sha2"},
        {"conclusion": "timed_out"},
        {"name": "build"},
    ],
)
def test_the_failure_fingerprint_changes_with_pr_commit_check_or_conclusion(
    changed: dict[str, str],
) -> None:
    base = {"pr": "PR_1", "sha": "sha1", "conclusion": "failure", "name": "test"}
    values = base | changed

    def fingerprint(v: dict[str, str]) -> str:
        failed = check(v["name"], CheckStatus.FAILED, commit=v["sha"], conclusion=v["conclusion"])
        return failure_fingerprint(v["pr"], v["sha"], [failed])

    assert fingerprint(values) != fingerprint(base)


def test_the_checks_fingerprint_sees_a_new_run() -> None:
    first = [check(status=CheckStatus.IN_PROGRESS)]
    assert checks_fingerprint(first) != checks_fingerprint([check(status=CheckStatus.PASSED)])
    assert checks_fingerprint(first) == checks_fingerprint(list(first))


# --- attribution -------------------------------------------------------------------


def summary(head_ref: str, head_repo: str | None = "acme/app") -> PRSummary:
    return PRSummary(
        node_id="PR_1",
        number=1,
        url="https://github.com/acme/app/pull/1",
        state=PRState.OPEN,
        head_ref=head_ref,
        head_sha="sha1",
        head_repo=head_repo,
        base_ref="main",
    )


def claim(session: str, branch: str, kind: SessionKind = SessionKind.WORKER) -> BranchClaim:
    return BranchClaim(session_id=session, branch=branch, repo=REPO, kind=kind)


@pytest.mark.parametrize(
    ("pr", "claims", "stacked", "expected"),
    [
        (summary("feat/login"), [claim("s1", "feat/login")], False, "s1"),
        (summary("feat/login"), [claim("s1", "feat/other")], False, None),
        # a fork's branch of the same name, and a deleted fork, never attach
        (summary("feat/login", "mallory/app"), [claim("s1", "feat/login")], False, None),
        (summary("feat/login", None), [claim("s1", "feat/login")], False, None),
        # names are case-insensitive on GitHub
        (summary("feat/login", "ACME/App"), [claim("s1", "feat/login")], False, "s1"),
        # the default branch never matches, from either side
        (summary("main"), [claim("s1", "main")], False, None),
        (summary("release"), [claim("s1", "main")], True, None),
        # orchestrator sessions never claim
        (
            summary("feat/login"),
            [claim("s1", "feat/login", kind=SessionKind.ORCHESTRATOR)],
            False,
            None,
        ),
        # stacked branches: only when asked; the longest branch wins; exact beats prefix
        (summary("feat/login/part2"), [claim("s1", "feat/login")], False, None),
        (summary("feat/login/part2"), [claim("s1", "feat/login")], True, "s1"),
        (
            summary("feat/login/part2"),
            [claim("s1", "feat"), claim("s2", "feat/login")],
            True,
            "s2",
        ),
        (
            summary("feat/login"),
            [claim("s1", "feat"), claim("s2", "feat/login")],
            True,
            "s2",
        ),
        (summary("feat/loginx"), [claim("s1", "feat/login")], True, None),
        # two equal claims: neither gets it
        (
            summary("feat/login"),
            [claim("s1", "feat/login"), claim("s2", "feat/login")],
            False,
            None,
        ),
        (summary("feat/login"), [claim("s1", "")], True, None),
    ],
)
def test_attribution(
    pr: PRSummary, claims: list[BranchClaim], stacked: bool, expected: str | None
) -> None:
    assert attribute_pr(pr, REPO, claims, default_branch="main", stacked_prefix=stacked) == expected


def test_attribution_needs_the_head_in_the_sessions_push_repo() -> None:
    fork = RepoRef(owner="me", name="app")
    session = BranchClaim(session_id="s1", branch="fix", repo=fork)
    assert attribute_pr(summary("fix", "me/app"), REPO, [session], default_branch="main") == "s1"
    assert attribute_pr(summary("fix", "acme/app"), REPO, [session], default_branch="main") is None


# --- repository URLs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/app", ("github.com", "acme", "app")),
        ("https://github.com/acme/app.git", ("github.com", "acme", "app")),
        ("https://github.com/acme/app/", ("github.com", "acme", "app")),
        ("http://github.com/acme/app.git", ("github.com", "acme", "app")),
        ("https://token@github.com/acme/app.git", ("github.com", "acme", "app")),
        ("git@github.com:acme/app.git", ("github.com", "acme", "app")),
        ("git@github.com:acme/app", ("github.com", "acme", "app")),
        ("ssh://git@github.com/acme/app.git", ("github.com", "acme", "app")),
        ("ssh://git@github.com:22/acme/app.git", ("github.com", "acme", "app")),
        ("git://github.com/acme/app.git", ("github.com", "acme", "app")),
        ("https://GHE.Example.com/Team/my.repo-1.git", ("ghe.example.com", "Team", "my.repo-1")),
        ("git@ghe.example.com:team/svc.git", ("ghe.example.com", "team", "svc")),
        ("  https://github.com/acme/app  ", ("github.com", "acme", "app")),
        ("https://gitlab.com/group/sub/app.git", None),
        ("https://github.com/acme", None),
        ("/home/me/app", None),
        ("file:///home/me/app", None),
        ("", None),
        ("github.com:acme/../x", None),
    ],
)
def test_parse_repo_url(url: str, expected: tuple[str, str, str] | None) -> None:
    parsed = parse_repo_url(url)
    got = (parsed.host, parsed.owner, parsed.name) if parsed else None
    assert got == expected


# --- the engine's observation ------------------------------------------------------


def pr_detail(**changes: object) -> PRDetail:
    base = PRDetail(
        repo=REPO,
        node_id="PR_1",
        number=12,
        url="https://github.com/acme/app/pull/12",
        title="Login",
        state=PRState.OPEN,
        head_ref="feat/login",
        head_sha="sha1",
        head_repo="acme/app",
        base_ref="main",
        mergeable="MERGEABLE",
        merge_state="CLEAN",
        review=ReviewDecision.APPROVED,
        rollup_state="SUCCESS",
        checks=(check(),),
    )
    return msgspec.structs.replace(base, **changes)


def test_the_observation_carries_checks_comments_and_verdicts() -> None:
    failed = check("test", CheckStatus.FAILED, run=5, conclusion="failure")
    failed = msgspec.structs.replace(failed, log_tail="AssertionError: 1 != 2")
    status = SCMCheck(
        name="ci/jenkins",
        commit="sha1",
        status=CheckStatus.IN_PROGRESS,
        kind=CheckKind.STATUS,
        url="https://jenkins/1",
    )
    detail = pr_detail(
        rollup_state="FAILURE",
        review=ReviewDecision.CHANGES_REQUESTED,
        checks=(check("test", CheckStatus.PASSED, run=1), failed, status),
    )
    comment = ReviewComment(
        id="C_1",
        thread_id="T_1",
        author="reviewer",
        file="src/app.py",
        line=42,
        body="Please rename",
        created_at=T0,
    )
    review = ReviewSnapshot(decision=ReviewDecision.CHANGES_REQUESTED, comments=(comment,))
    observation = to_observation(detail, review)
    assert observation.url == detail.url
    assert observation.number == 12
    assert (observation.draft, observation.merged, observation.closed) == (False, False, False)
    assert observation.ci is CIState.FAILING
    assert observation.review is ReviewDecision.CHANGES_REQUESTED
    assert observation.mergeability is Mergeability.BLOCKED
    assert [(c.name, c.commit, c.status, c.url, c.log_tail) for c in observation.checks] == [
        ("test", "sha1", CheckStatus.FAILED, failed.url, "AssertionError: 1 != 2"),
        ("ci/jenkins", "sha1", CheckStatus.IN_PROGRESS, "https://jenkins/1", ""),
    ]
    [only] = observation.comments
    assert (only.id, only.author, only.file, only.line, only.body, only.resolved) == (
        "C_1",
        "reviewer",
        "src/app.py",
        42,
        "Please rename",
        False,
    )
    # It is exactly what the API accepts as a PR observation.
    wire = msgspec.json.encode(observation)
    assert msgspec.json.decode(wire, type=PRObservation) == observation


@pytest.mark.parametrize(
    ("state", "flags"),
    [
        (PRState.OPEN, (False, False, False)),
        (PRState.DRAFT, (True, False, False)),
        (PRState.MERGED, (False, True, False)),
        (PRState.CLOSED, (False, False, True)),
    ],
)
def test_the_observation_state_flags(state: PRState, flags: tuple[bool, bool, bool]) -> None:
    observation = to_observation(pr_detail(state=state), None)
    assert (observation.draft, observation.merged, observation.closed) == flags
    assert observation.state is state
    assert observation.comments == ()


def test_pr_mergeability_uses_the_prs_own_ci() -> None:
    failing = pr_detail(checks=(check(status=CheckStatus.FAILED),), rollup_state="FAILURE")
    assert pr_mergeability(failing) is Mergeability.UNSTABLE
    assert pr_mergeability(pr_detail()) is Mergeability.MERGEABLE
