"""What the dashboard's cards and board show (adapters/http/dashboard/views.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from markupsafe import Markup

from adapters.http.dashboard.reads import CardFacts, latest_runs
from adapters.http.dashboard.templating import CardCache, safe_url
from adapters.http.dashboard.views import (
    DONE_SHOWN,
    REASON_LABELS,
    STATUS_LABELS,
    ago,
    build_board,
    build_card,
    card_title,
)
from orchestrator.domain.model import (
    Activity,
    ActivityState,
    CheckStatus,
    CIState,
    Lifecycle,
    Mergeability,
    PRCheck,
    PRFacts,
    PRState,
    ReactionKey,
    ReviewDecision,
    SessionMetadata,
    SessionRecord,
    SessionState,
    SessionStatus,
    TerminationReason,
)
from orchestrator.domain.records import Tracker
from orchestrator.domain.zones import Zone

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
URL = "https://github.com/o/r/pull/5"


def record(num: int = 1, **lifecycle: object) -> SessionRecord:
    return SessionRecord(
        id=f"p-{num}",
        project_id="p",
        num=num,
        lifecycle=Lifecycle(is_alive=True, **lifecycle),  # type: ignore[arg-type]
        metadata=SessionMetadata(branch=f"b{num}", prompt="\n  Fix it\nthen more"),
        created_at=NOW,
        updated_at=NOW + timedelta(seconds=num),
    )


def pr(**fields: object) -> PRFacts:
    defaults: dict[str, object] = {
        "url": URL,
        "number": 5,
        "state": PRState.OPEN,
        "ci": CIState.PASSING,
        "review": ReviewDecision.NONE,
        "mergeability": Mergeability.UNKNOWN,
        "review_comments": False,
    }
    return PRFacts.of_pr(**{**defaults, **fields})  # type: ignore[arg-type]


def failed(name: str, commit: str) -> PRCheck:
    return PRCheck(name=name, commit=commit, status=CheckStatus.FAILED)


def test_titles_fall_back_from_issue_to_prompt_to_branch_to_id() -> None:
    assert card_title(issue_id="42", prompt="p", branch="b", session_id="s") == "Issue 42"
    assert card_title(issue_id="", prompt="\n\n  do X \nY", branch="b", session_id="s") == "do X"
    assert card_title(issue_id="", prompt=" \n", branch="b", session_id="s") == "b"
    assert card_title(issue_id="", prompt="", branch="", session_id="s") == "s"
    long = card_title(issue_id="", prompt="x" * 500, branch="", session_id="s")
    assert len(long) == 120
    assert long.endswith("…")


def test_ages() -> None:
    assert ago(NOW - timedelta(seconds=42), NOW) == "42s ago"
    assert ago(NOW - timedelta(minutes=5, seconds=59), NOW) == "5m ago"
    assert ago(NOW - timedelta(hours=3), NOW) == "3h ago"
    assert ago(NOW - timedelta(days=2), NOW) == "2d ago"
    assert ago(NOW + timedelta(seconds=5), NOW) == "0s ago"
    assert ago(None, NOW) == "never"


def test_every_status_and_reason_has_a_label() -> None:
    assert set(STATUS_LABELS) == set(SessionStatus)
    assert set(REASON_LABELS) == set(TerminationReason)


def test_failing_ci_shows_the_notified_tick_per_commit_then_the_brake() -> None:
    trackers = (
        Tracker(key=f"ci:{URL}:unit", reaction=ReactionKey.CI_FAILED, attempts=1, seen=("c1",)),
    )
    facts = CardFacts(
        record=record(state=SessionState.WORKING),
        pr=pr(ci=CIState.FAILING),
        failing_checks=(failed("unit", "c1"), failed("lint", "c1")),
        trackers=trackers,
    )
    card = build_card(facts)
    assert card.status is SessionStatus.CI_FAILED
    assert card.zone is Zone.WORKING
    assert [(c.name, c.notified) for c in card.failing_checks] == [("unit", True), ("lint", False)]
    assert not card.ci_braked
    braked = Tracker(
        key=f"ci:{URL}:unit", reaction=ReactionKey.CI_FAILED, escalated=True, seen=("c1",)
    )
    card = build_card(CardFacts(facts.record, facts.pr, facts.failing_checks, (braked,)))
    assert card.ci_braked
    assert card.zone is Zone.NEEDS_YOU
    # Another PR's brake says nothing about this one.
    elsewhere = Tracker(
        key="ci:https://x/pull/1:unit", reaction=ReactionKey.CI_FAILED, escalated=True
    )
    card = build_card(CardFacts(facts.record, facts.pr, facts.failing_checks, (elsewhere,)))
    assert not card.ci_braked


def test_review_ticks_and_actions() -> None:
    review = Tracker(key=f"review:{URL}", reaction=ReactionKey.REVIEW_COMMENTS, attempts=2)
    card = build_card(
        CardFacts(
            record=record(state=SessionState.WORKING),
            pr=pr(review=ReviewDecision.CHANGES_REQUESTED),
            failing_checks=(),
            trackers=(review,),
        )
    )
    assert card.zone is Zone.NEEDS_YOU
    assert card.review_notified
    assert not card.review_escalated
    assert (card.can_send, card.can_kill, card.can_restore, card.can_merge) == (
        True,
        True,
        False,
        False,
    )
    ready = build_card(
        CardFacts(
            record(state=SessionState.WORKING), pr(mergeability=Mergeability.MERGEABLE), (), ()
        )
    )
    assert ready.can_merge
    assert ready.zone is Zone.READY_TO_MERGE
    ended = build_card(
        CardFacts(
            record(
                state=SessionState.TERMINATED,
                termination_reason=TerminationReason.MANUALLY_KILLED,
            ),
            pr(mergeability=Mergeability.MERGEABLE),
            (),
            (),
        )
    )
    assert (ended.can_send, ended.can_kill, ended.can_restore, ended.can_merge) == (
        False,
        False,
        True,
        False,
    )
    assert ended.reason_label == "killed by a person"


def test_the_activity_dot() -> None:
    def dot(activity: ActivityState | None) -> str:
        active = None if activity is None else Activity(state=activity, last_activity_at=NOW)
        return build_card(CardFacts(record(activity=active), PRFacts(), (), ())).dot

    assert dot(None) == "none"
    assert dot(ActivityState.ACTIVE) == "active"
    assert dot(ActivityState.IDLE) == "idle"  # grey, not Working's green
    assert dot(ActivityState.WAITING_INPUT) == "waiting"
    assert dot(ActivityState.EXITED) == "exited"


def test_the_board_groups_orders_and_limits_done() -> None:
    killed = {
        "state": SessionState.TERMINATED,
        "termination_reason": TerminationReason.MANUALLY_KILLED,
    }
    cards = [build_card(CardFacts(record(n, **killed), PRFacts(), (), ())) for n in range(1, 61)]
    cards.append(
        build_card(CardFacts(record(99, state=SessionState.NEEDS_INPUT), PRFacts(), (), ()))
    )
    cards.append(build_card(CardFacts(record(98, state=SessionState.WORKING), PRFacts(), (), ())))
    board = build_board(cards)
    assert [c.zone for c in board.columns] == [
        Zone.NEEDS_YOU,
        Zone.WORKING,
        Zone.IN_REVIEW,
        Zone.READY_TO_MERGE,
    ]
    assert [c.id for c in board.columns[0].cards] == ["p-99"]
    assert board.needs_you == 1
    assert board.done_total == 60
    assert len(board.done) == DONE_SHOWN
    assert board.done[0].id == "p-60"  # most recently ended first
    assert not board.empty
    assert build_board([]).empty


def test_latest_run_of_each_check() -> None:
    runs = [
        failed("a", "1"),
        PRCheck(name="a", commit="2", status=CheckStatus.PASSED),
        failed("b", "1"),
    ]
    assert [(r.name, r.commit) for r in latest_runs(runs)] == [("a", "2"), ("b", "1")]


def test_safe_url_keeps_only_http() -> None:
    assert safe_url("https://github.com/o/r/pull/1") == "https://github.com/o/r/pull/1"
    assert safe_url("http://ci/run/1") == "http://ci/run/1"
    for bad in ("javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "", "//x"):
        assert safe_url(bad) == "#", bad


def test_the_card_cache_hits_only_on_the_same_card_and_age() -> None:
    cache = CardCache(size=2)
    active = Activity(state=ActivityState.ACTIVE, last_activity_at=NOW)
    card = build_card(
        CardFacts(record(activity=active, state=SessionState.WORKING), PRFacts(), (), ())
    )
    first = cache(card, NOW + timedelta(seconds=5))
    assert isinstance(first, Markup)
    assert "5s ago" in first
    assert cache(card, NOW + timedelta(seconds=5)) is first
    later = cache(card, NOW + timedelta(seconds=6))
    assert "6s ago" in later
    stuck = build_card(
        CardFacts(record(activity=active, state=SessionState.STUCK), PRFacts(), (), ())
    )
    assert "Stuck" in cache(stuck, NOW + timedelta(seconds=6))
    assert cache(card, NOW + timedelta(seconds=5)) is not first  # evicted: size 2


def test_card_text_is_escaped() -> None:
    hostile = record(state=SessionState.WORKING)
    hostile = msgspec.structs.replace(
        hostile, metadata=SessionMetadata(prompt="<script>x()</script>", branch="<b>")
    )
    html = CardCache()(build_card(CardFacts(hostile, PRFacts(), (), ())), NOW)
    assert "<script>" not in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "&lt;b&gt;" in html
