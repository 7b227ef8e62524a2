"""The observer's pure pieces: a PR's web URL, a project's repository, a tracked PR's
cadence tier, when its combined status is guarded, when its reviews are polled, and how a
partial review snapshot adds to what is known."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from orchestrator.config.schema import GitHubConfig, GitHubPollConfig
from orchestrator.domain.model import CheckStatus, PRState, ReviewDecision
from orchestrator.domain.scm import (
    CheckKind,
    PRDetail,
    PRRef,
    RepoRef,
    ReviewComment,
    ReviewSnapshot,
    SCMCheck,
)
from orchestrator.domain.scm_rules import parse_pr_url, project_repo
from orchestrator.scm import ObserverSettings
from orchestrator.scm.tracking import TrackedPR

REPO = RepoRef(owner="acme", name="app")
SETTINGS = ObserverSettings.of(GitHubConfig())  # the config file's defaults


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/app/pull/7", PRRef(repo=REPO, number=7)),
        ("https://github.com/acme/app/pull/7/", PRRef(repo=REPO, number=7)),
        (
            "https://ghe.example.com/acme/app/pull/12",
            PRRef(repo=RepoRef(host="ghe.example.com", owner="acme", name="app"), number=12),
        ),
        ("https://github.com/acme/app/issues/7", None),
        ("https://github.com/acme/app/pull/0", None),
        ("https://github.com/acme/app/pull/7/files", None),
        ("not a url", None),
    ],
)
def test_a_pr_url_names_its_repository_and_number(url: str, expected: PRRef | None) -> None:
    assert parse_pr_url(url) == expected


@pytest.mark.parametrize(
    ("origin", "explicit", "host", "expected"),
    [
        ("https://github.com/acme/app.git", "", "github.com", REPO),
        ("git@github.com:acme/app.git", "", "github.com", REPO),
        ("ssh://git@github.com:22/acme/app", "", "github.com", REPO),
        ("https://gitlab.com/acme/app.git", "", "github.com", None),  # another forge
        ("", "", "github.com", None),
        ("https://gitlab.com/acme/mirror.git", "acme/app", "github.com", REPO),
        (
            "",
            "acme/app",
            "GHE.example.com",
            RepoRef(host="ghe.example.com", owner="acme", name="app"),
        ),
        ("", "acme", "github.com", None),
    ],
)
def test_a_projects_repository(
    origin: str, explicit: str, host: str, expected: RepoRef | None
) -> None:
    assert project_repo(origin, explicit, host=host) == expected


def detail(
    *,
    state: PRState = PRState.OPEN,
    checks: tuple[SCMCheck, ...] = (),
    rollup: str | None = None,
    mergeable: str = "MERGEABLE",
) -> PRDetail:
    return PRDetail(
        repo=REPO,
        node_id="PR_1",
        number=1,
        url="https://github.com/acme/app/pull/1",
        state=state,
        head_ref="feat",
        head_sha="sha1",
        mergeable=mergeable,
        merge_state="CLEAN",
        rollup_state=rollup,
        checks=checks,
    )


def tracked(found: PRDetail | None) -> TrackedPR:
    pr = TrackedPR(ref=PRRef(repo=REPO, number=1), session_id="app-1", head_sha="sha1")
    pr.detail = found
    return pr


PASSED = SCMCheck(name="test", commit="sha1", status=CheckStatus.PASSED, conclusion="success")
RUNNING = SCMCheck(name="test", commit="sha1", status=CheckStatus.IN_PROGRESS)
STATUS = SCMCheck(
    name="ci/jenkins", commit="sha1", status=CheckStatus.PASSED, kind=CheckKind.STATUS
)


@pytest.mark.parametrize(
    ("found", "interval"),
    [
        (None, SETTINGS.pending_interval),  # never read: look soon
        (detail(checks=(RUNNING,), rollup="PENDING"), SETTINGS.pending_interval),
        (
            detail(checks=(PASSED,), rollup="SUCCESS", mergeable="UNKNOWN"),
            SETTINGS.pending_interval,
        ),
        (detail(checks=(PASSED,), rollup="SUCCESS"), SETTINGS.settled_interval),
        (
            detail(state=PRState.DRAFT, checks=(RUNNING,), rollup="PENDING"),
            SETTINGS.draft_interval,
        ),
    ],
)
def test_guards_run_faster_while_ci_runs_and_slower_for_drafts(
    found: PRDetail | None, interval: float
) -> None:
    assert tracked(found).guard_interval(SETTINGS) == interval


def test_settings_are_the_configs_in_seconds() -> None:
    github = msgspec.structs.replace(
        GitHubConfig(),
        poll=GitHubPollConfig(repo=timedelta(minutes=1), max_age=timedelta(minutes=10)),
        review_interval=timedelta(minutes=3),
        batch_size=10,
        host="ghe.example.com",
    )
    settings = ObserverSettings.of(github)
    assert (settings.repo_interval, settings.max_age, settings.pending_interval) == (60, 600, 15)
    assert (settings.review_interval, settings.kick_debounce) == (180, 2)
    assert (settings.batch_size, settings.host) == (10, "ghe.example.com")
    assert (SETTINGS.settled_interval, SETTINGS.draft_interval) == (60, 120)


def guarded(pr: TrackedPR) -> bool:
    return pr.uses_statuses


def test_the_combined_status_is_guarded_while_it_may_still_change() -> None:
    pr = tracked(detail(checks=(PASSED,), rollup="SUCCESS"))
    assert guarded(pr)  # this head's status was never read
    pr.status_sha = "sha1"
    assert not guarded(pr)  # Actions only, and settled
    pr.detail = detail(checks=(PASSED, STATUS), rollup="SUCCESS")
    assert guarded(pr)  # this CI posts statuses
    pr.detail = detail(rollup=None)
    assert guarded(pr)  # nothing reported yet: a status-only CI may still post


def comment(cid: str, *, resolved: bool = False, bot: bool = False) -> ReviewComment:
    return ReviewComment(id=cid, author="bob", body=cid, resolved=resolved, author_is_bot=bot)


def test_reviews_are_polled_while_a_reviewer_is_mid_conversation() -> None:
    pr = tracked(None)
    assert not pr.wants_review_polls()  # nothing read yet: the first read decides
    pr.review = ReviewSnapshot(comments=(comment("c1", resolved=True),))
    assert not pr.wants_review_polls()
    pr.review = ReviewSnapshot(comments=(comment("c1", bot=True),))
    assert not pr.wants_review_polls()  # a bot's open thread is no conversation
    pr.review = ReviewSnapshot(comments=(comment("c1"),))
    assert pr.wants_review_polls()
    pr.review = ReviewSnapshot(decision=ReviewDecision.CHANGES_REQUESTED)
    assert pr.wants_review_polls()


def test_a_partial_review_adds_to_what_is_known_and_a_full_one_replaces_it() -> None:
    pr = tracked(None)
    pr.review = ReviewSnapshot(comments=(comment("old"), comment("kept")))
    newest = ReviewSnapshot(comments=(comment("kept", resolved=True), comment("new")), partial=True)
    merged = pr.merge_review(newest)
    assert [(c.id, c.resolved) for c in merged.comments] == [
        ("old", False),
        ("kept", True),
        ("new", False),
    ]
    assert merged.partial
    full = ReviewSnapshot(comments=(comment("new"),))
    assert pr.merge_review(full) is full
