"""Auto-merge in the planner, and the pure merge rules: when a PR may be merged, and which
PR a URL or number names."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from orchestrator.domain.merging import merge_blocker, merge_dedup_key, parse_pr_url, pr_url
from orchestrator.domain.model import (
    CIState,
    Lifecycle,
    Mergeability,
    PRComment,
    PRFacts,
    PRObservation,
    ReactionAction,
    ReactionKey,
    ReviewDecision,
    SessionState,
    TerminationReason,
    Trigger,
)
from orchestrator.domain.reaction_planner import ENTRY_TRACKER, plan_reactions
from orchestrator.domain.reaction_policy import ReactionPolicy, load_reaction_policy
from orchestrator.domain.records import OutboxItem, Tracker
from orchestrator.domain.scm import PRRef, RepoRef

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
URL = "https://github.com/acme/app/pull/7"
WORKING = Lifecycle(state=SessionState.WORKING, is_alive=True)
AUTO_MERGE = load_reaction_policy({"approved-and-green": {"action": "auto-merge"}})
READY = PRObservation(
    url=URL,
    number=7,
    ci=CIState.PASSING,
    review=ReviewDecision.APPROVED,
    mergeability=Mergeability.MERGEABLE,
    head_sha="c0ffee1234567890",
)


def plan(
    observation: PRObservation,
    *,
    policy: ReactionPolicy = AUTO_MERGE,
    after: Lifecycle = WORKING,
    trackers: dict[str, Tracker] | None = None,
    pr: PRFacts | None = None,
    trigger: Trigger = Trigger.PR,
) -> tuple[list[OutboxItem], dict[str, Tracker]]:
    result = plan_reactions(
        session_id="app-1",
        project_id="app",
        trigger=trigger,
        before=WORKING,
        after=after,
        pr=observation.facts() if pr is None else pr,
        observation=observation if trigger is Trigger.PR else None,
        check_history={},
        trackers=trackers or {},
        policy=policy,
        now=T0,
    )
    kept = {**(trackers or {}), **{t.key: t for t in result.upsert}}
    for key in result.delete:
        kept.pop(key, None)
    return list(result.outbox), kept


def test_an_approved_green_mergeable_pr_is_merged_at_its_observed_head() -> None:
    items, trackers = plan(READY)
    assert items == [
        OutboxItem(
            dedup_key=merge_dedup_key(URL, READY.head_sha),
            session_id="app-1",
            project_id="app",
            action=ReactionAction.AUTO_MERGE,
            reaction=ReactionKey.APPROVED_AND_GREEN,
            event_type="reaction.approved-and-green",
            priority=AUTO_MERGE[ReactionKey.APPROVED_AND_GREEN].priority,
            message=f"Merging {URL} at c0ffee123456: approved, CI passing, mergeable.",
            pr_url=URL,
            head_sha=READY.head_sha,
        )
    ]
    # The entry reaction is recorded (it fires once) but says nothing: the merge is the news.
    assert trackers[ENTRY_TRACKER].reaction is ReactionKey.APPROVED_AND_GREEN


def test_the_merge_is_keyed_by_pr_and_head_so_a_repoll_queues_nothing_new() -> None:
    first, trackers = plan(READY)
    again, _ = plan(READY, trackers=trackers)
    assert [i.dedup_key for i in again] == [i.dedup_key for i in first]  # the outbox skips it
    pushed, _ = plan(msgspec.structs.replace(READY, head_sha="beef"), trackers=trackers)
    assert [i.head_sha for i in pushed] == ["beef"]


def test_without_auto_merge_approved_and_green_only_notifies() -> None:
    items, _ = plan(READY, policy=ReactionPolicy())
    assert [(i.action, i.reaction) for i in items] == [
        (ReactionAction.NOTIFY, ReactionKey.APPROVED_AND_GREEN)
    ]


def test_auto_merge_that_is_not_automatic_notifies_instead() -> None:
    manual = load_reaction_policy({"approved-and-green": {"action": "auto-merge", "auto": False}})
    items, _ = plan(READY, policy=manual)
    assert [(i.action, i.reaction, i.pr_url) for i in items] == [
        (ReactionAction.NOTIFY, ReactionKey.APPROVED_AND_GREEN, "")
    ]


BLOCKED = [
    ("ci pending", {"ci": CIState.PENDING}, "CI of"),
    ("ci unknown", {"ci": CIState.UNKNOWN}, "not passing"),
    ("not approved", {"review": ReviewDecision.REVIEW_REQUIRED}, "not approved"),
    ("conflicting", {"mergeability": Mergeability.CONFLICTING}, "not mergeable"),
    ("mergeable unknown", {"mergeability": Mergeability.UNKNOWN}, "not mergeable"),
    ("draft", {"draft": True}, "is a draft"),
    ("closed", {"closed": True}, "is closed"),
    ("merged", {"merged": True}, "already merged"),
    ("no head", {"head_sha": ""}, "not known"),
    ("open comment", {"comments": (PRComment(id="c1"),)}, "unresolved review comments"),
]


@pytest.mark.parametrize(
    ("changes", "reason"), [r[1:] for r in BLOCKED], ids=[r[0] for r in BLOCKED]
)
def test_a_pr_short_of_ready_is_not_merged(changes: dict[str, object], reason: str) -> None:
    observation = msgspec.structs.replace(READY, **changes)
    items, _ = plan(observation)
    assert ReactionAction.AUTO_MERGE not in [i.action for i in items]
    blocker = merge_blocker(observation.facts())
    assert blocker is not None
    assert reason in blocker


def test_a_resolved_comment_does_not_block() -> None:
    resolved = msgspec.structs.replace(READY, comments=(PRComment(id="c1", resolved=True),))
    assert merge_blocker(resolved.facts()) is None
    assert [i.action for i in plan(resolved)[0]] == [ReactionAction.AUTO_MERGE]


def test_only_a_pr_observation_of_the_sessions_own_pr_merges() -> None:
    other = PRFacts(exists=True, url="https://github.com/acme/app/pull/8", number=8)
    assert plan(READY, pr=other)[0] == []  # the observed PR does not speak for the session
    assert plan(READY, trigger=Trigger.ACTIVITY)[0] == []


def test_a_session_that_ended_merges_nothing() -> None:
    ended = Lifecycle(
        state=SessionState.TERMINATED, termination_reason=TerminationReason.RUNTIME_LOST
    )
    items, _ = plan(READY, after=ended)
    assert ReactionAction.AUTO_MERGE not in [i.action for i in items]


def test_the_lean_path_records_the_entry_without_a_note_when_merging_instead() -> None:
    facts = READY.facts()
    items, trackers = plan(READY, trigger=Trigger.ACTIVITY, pr=facts)
    assert items == []
    assert trackers[ENTRY_TRACKER].reaction is ReactionKey.APPROVED_AND_GREEN


def test_no_pr_has_a_blocker() -> None:
    assert merge_blocker(PRFacts()) == "the session has no PR"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (URL, PRRef(repo=RepoRef(owner="acme", name="app"), number=7)),
        ("https://GHE.example.com/Org/My.Repo/pull/12/", PRRef(repo=RepoRef(host="ghe.example.com", owner="Org", name="My.Repo"), number=12)),
        ("http://github.test/acme/api/pull/1", PRRef(repo=RepoRef(host="github.test", owner="acme", name="api"), number=1)),
        ("https://github.com/acme/app/pull/0", None),
        ("https://github.com/acme/app/issues/7", None),
        ("https://github.com/acme/pull/7", None),
        ("https://github.com/../app/pull/7", None),
        ("ftp://github.com/acme/app/pull/7", None),
        ("https://github.com/acme/app/pull/7?x=1", None),
    ],
)  # fmt: skip
def test_a_pr_url_names_its_repository_and_number(url: str, expected: PRRef | None) -> None:
    assert parse_pr_url(url) == expected


def test_a_number_in_a_repository_is_a_pr_url() -> None:
    repo = RepoRef(owner="acme", name="app")
    assert pr_url(repo, 7) == URL
    assert parse_pr_url(pr_url(repo, 7)) == PRRef(repo=repo, number=7)
