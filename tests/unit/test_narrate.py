"""``orchestrator events`` in words: each change-log event is one line saying what changed,
with payloads as the daemon's triggers write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from rich.console import Console

from orchestrator.api import EventOut
from orchestrator.cli.narrate import REACTIONS, EventNarrator, pr_name, words
from orchestrator.domain.model import ReactionKey

AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PR = "https://github.com/me/my-app/pull/12"


def ev(kind: str, payload: object, *, seq: int = 1, session: str = "my-app-1") -> EventOut:
    return EventOut(
        seq=seq,
        project_id="my-app",
        session_id=session,
        type=kind,
        payload=msgspec.Raw(msgspec.json.encode(payload)),
        created_at=AT,
    )


def session(state: str, activity: str = "", reason: str = "", alive: int = 1) -> dict[str, object]:
    return {
        "id": "my-app-1",
        "state": state,
        "terminationReason": reason,
        "isAlive": alive,
        "activity": activity,
    }


def pr(
    ci: str = "pending", state: str = "open", review: str = "none", merge: str = "unknown"
) -> dict[str, object]:
    return {
        "url": PR,
        "session": "my-app-1",
        "state": state,
        "ci": ci,
        "review": review,
        "mergeability": merge,
    }


def story(*events: EventOut) -> list[str]:
    narrator = EventNarrator()
    return [narrator.describe(event).plain for event in events]


def test_a_session_lifecycle_reads_as_a_story() -> None:
    assert story(
        ev("session_created", session("not_started", alive=0)),
        ev("session_updated", session("not_started")),
        ev("session_updated", session("working", "active")),
        ev("session_updated", session("needs_input", "waiting_input")),
        ev("session_updated", session("needs_input", "blocked")),
        ev("session_updated", session("terminated", "blocked", "manually_killed", 0)),
        ev("session_updated", session("not_started", "blocked", "", 1)),
    ) == [
        "session created (not started)",
        "runtime up",
        "not started → working (agent active)",
        "working → needs input (agent waiting for input)",
        "agent blocked",
        "needs input → terminated: killed",
        "terminated → not started, runtime up",
    ]


def test_a_session_first_met_mid_stream_is_described_by_its_state() -> None:
    assert story(ev("session_updated", session("stuck", "idle"))) == ["now stuck (agent idle)"]
    assert story(ev("session_updated", session("terminated", "", "runtime_lost", 0))) == [
        "now terminated: runtime lost"
    ]


def test_sessions_are_remembered_apart() -> None:
    other = {**session("idle"), "id": "my-app-2"}
    assert story(
        ev("session_updated", session("working")),
        ev("session_updated", other, session="my-app-2"),
        ev("session_updated", session("idle")),
    ) == ["now working", "now idle", "working → idle"]


def test_pr_changes_name_the_pr_and_what_moved() -> None:
    assert story(
        ev("pr_created", pr()),
        ev(
            "pr_check_recorded",
            {"pr": PR, "name": "lint", "commit": "abc123def456", "status": "failed"},
        ),
        ev("pr_updated", pr(ci="failing")),
        ev("pr_updated", pr(ci="passing", review="approved", merge="mergeable")),
        ev("pr_updated", pr(ci="passing", state="merged", review="approved", merge="mergeable")),
    ) == [
        "PR #12 open, checks running",
        "PR #12 check lint failed at abc123de",
        "PR #12 checks failing",
        "PR #12 checks passing, approved, mergeable",
        "PR #12 merged",
    ]
    assert story(ev("pr_updated", pr(ci="failing", merge="conflicting"))) == [
        "PR #12 open, checks failing, merge conflicts"
    ]


def test_notifications_show_priority_and_message_on_one_line() -> None:
    payload = {
        "id": 3,
        "sessionId": "my-app-1",
        "type": "reaction.ci-failed",
        "priority": "urgent",
        "message": "CI failed\n  twice:\tlint",
    }
    assert story(ev("notification_created", payload)) == [
        "notification (urgent): CI failed twice: lint"
    ]


def test_an_unknown_event_type_shows_its_fields_not_json() -> None:
    payload = {"kind": "nudge", "reaction": "ci-failed", "attempt": 2}
    assert story(ev("outbox_delivered", payload)) == [
        "outbox delivered: kind=nudge, reaction=ci-failed, attempt=2"
    ]
    assert story(ev("something_new", {})) == ["something_new"]


def test_a_payload_that_is_not_an_object_is_still_one_line() -> None:
    event = ev("mystery", [1, 2])
    assert story(event) == ["mystery: value=[1, 2]"]
    broken = msgspec.structs.replace(event, payload=msgspec.Raw(b"{not json"))
    assert story(broken) == ["mystery"]


@pytest.mark.parametrize(
    ("url", "name"),
    [
        (PR, "PR #12"),
        ("https://gitlab.com/g/p/-/merge_requests/7", "PR #7"),
        ("https://example.com/review/abc", "PR https://example.com/review/abc"),
    ],
)
def test_pr_names(url: str, name: str) -> None:
    assert pr_name(url) == name


def test_words() -> None:
    assert words("needs_input", {"needs_input": "needs input"}) == "needs input"
    assert words("changes_requested") == "changes requested"


def test_a_line_is_seq_time_session_and_change_and_fits_80_columns() -> None:
    narrator = EventNarrator()
    long = {"id": 1, "priority": "info", "message": "x " * 100}
    event = msgspec.structs.replace(
        ev("notification_created", long, seq=42),
        created_at=datetime.now(UTC) - timedelta(seconds=5),
    )
    line = narrator.line(event)
    fields = line.plain.split()
    assert fields[0] == "42"
    assert len(fields[1]) == 8  # HH:MM:SS today
    assert fields[2:4] == ["my-app-1", "notification"]
    console = Console(width=80, record=True, soft_wrap=True)
    console.print(line, no_wrap=True, overflow="ellipsis")
    (printed,) = console.export_text().splitlines()
    assert len(printed) == 80
    assert printed.endswith("…")


def test_an_event_of_an_earlier_day_shows_its_date() -> None:
    line = EventNarrator().line(ev("session_updated", session("working"))).plain
    local = AT.astimezone()
    assert f"{local:%m-%d %H:%M}" in line


def delivered(action: str, reaction: str | None, kind: str, priority: str) -> EventOut:
    return ev(
        "reaction_delivered",
        {
            "id": 3,
            "sessionId": "my-app-1",
            "action": action,
            "reaction": reaction,
            "type": kind,
            "priority": priority,
        },
    )


def test_a_delivered_reaction_says_who_got_what() -> None:
    assert story(
        delivered("send-to-agent", "ci-failed", "reaction.ci-failed", "action"),
        delivered("send-to-agent", "review-comments", "reaction.review-comments", "action"),
        delivered("notify", "agent-stuck", "reaction.agent-stuck", "urgent"),
        delivered("notify", "ci-failed", "reaction.escalated", "urgent"),
        delivered("notify", None, "reaction.escalated", "urgent"),
        delivered("notify", "some-new-key", "reaction.some-new-key", "info"),
    ) == [
        "→ agent: CI failing nudge delivered",
        "→ agent: review feedback nudge delivered",
        "page sent: agent stuck (urgent)",
        "page sent: CI failing, escalated (urgent)",
        "page sent: escalation (urgent)",
        "page sent: some-new-key (info)",  # a key this CLI does not know yet: as it is
    ]


def test_a_delivery_with_a_payload_missing_fields_is_still_one_line() -> None:
    assert story(ev("reaction_delivered", {})) == ["page sent: reaction"]


def test_every_reaction_key_has_words() -> None:
    assert set(REACTIONS) == {key.value for key in ReactionKey}
