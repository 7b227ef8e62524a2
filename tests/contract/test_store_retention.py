"""Retention: every table is bounded, and what must stay durable stays, the same from
every store."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.domain.model import (
    CheckStatus,
    NotificationEvent,
    PRComment,
    Priority,
    ReactionKey,
    SessionRecord,
    SessionState,
)
from orchestrator.domain.records import CommitUnit, Tracker
from orchestrator.domain.retention import RetentionPolicy, RetentionReport
from tests.contract.support import (
    PR1,
    PR2,
    ContractStore,
    at,
    changes,
    check,
    moved,
    observation,
    outbox_item,
    session,
    unit_for,
)

FAILED, PASSED = CheckStatus.FAILED, CheckStatus.PASSED
FOREVER = timedelta(days=100_000)
# Nothing goes unless a test shortens its rule.
KEEP_ALL = RetentionPolicy(
    change_log_max_age=FOREVER,
    outbox_settled_max_age=FOREVER,
    notification_read_max_age=FOREVER,
    terminated_history_max_age=FOREVER,
    check_runs_per_check=1000,
)


def keeping(**rules: object) -> RetentionPolicy:
    fields = {name: getattr(KEEP_ALL, name) for name in KEEP_ALL.__struct_fields__}
    return RetentionPolicy(**{**fields, **rules})


async def outbox_ids(store: ContractStore) -> list[int]:
    return [e.id for e in await store.list_outbox()]


# --- outbox ------------------------------------------------------------------------------------


async def test_settled_outbox_rows_go_after_their_age(store: ContractStore) -> None:
    record = await session(store)
    items = tuple(outbox_item(record, f"k{n}") for n in range(1, 4))
    await store.commit(CommitUnit(session_id=record.id, at=at(1), outbox=items))
    await store.mark_delivered(1, at=at(10), notification=None)
    await store.mark_failed(2, at=at(20), error="gone")
    policy = keeping(outbox_settled_max_age=timedelta(seconds=100))

    report = await store.apply_retention(policy, now=at(115))  # settled before at(15) go
    assert report == RetentionReport(outbox=1)
    assert await outbox_ids(store) == [2, 3]
    assert (await store.apply_retention(policy, now=at(121))).outbox == 1
    assert await outbox_ids(store) == [3]


async def test_undelivered_outbox_rows_survive_any_age(store: ContractStore) -> None:
    record = await session(store)
    items = (outbox_item(record, "due"), outbox_item(record, "retrying"))
    await store.commit(CommitUnit(session_id=record.id, at=at(1), outbox=items))
    await store.record_attempt(2, error="timeout", next_attempt_at=at(30))
    policy = RetentionPolicy(outbox_settled_max_age=timedelta(seconds=1))
    report = await store.apply_retention(policy, now=at(1) + timedelta(days=3650))
    assert report.outbox == 0
    assert await outbox_ids(store) == [1, 2]
    assert [e.id for e in await store.pending_outbox(now=at(30), limit=10)] == [1, 2]


async def test_a_trimmed_rows_dedup_key_may_be_queued_again(store: ContractStore) -> None:
    record = await session(store)
    await store.commit(
        CommitUnit(session_id=record.id, at=at(1), outbox=(outbox_item(record, "k"),))
    )
    await store.mark_delivered(1, at=at(2), notification=None)
    await store.apply_retention(keeping(outbox_settled_max_age=timedelta(seconds=1)), now=at(10))
    await store.commit(
        CommitUnit(session_id=record.id, at=at(11), outbox=(outbox_item(record, "k"),))
    )
    assert [(e.id, e.item.dedup_key) for e in await store.list_outbox()] == [(2, "k")]


# --- notifications ---------------------------------------------------------------------------


async def notifications(store: ContractStore, record: SessionRecord, count: int) -> None:
    """``count`` notifications (ids 1..count), each created at at(id)."""
    items = tuple(outbox_item(record, f"n{n}") for n in range(1, count + 1))
    await store.commit(CommitUnit(session_id=record.id, at=at(0), outbox=items))
    for n in range(1, count + 1):
        event = NotificationEvent(
            type=ReactionKey.AGENT_STUCK.event_type,
            priority=Priority.URGENT,
            session_id=record.id,
            project_id=record.project_id,
            message=f"page {n}",
        )
        await store.mark_delivered(n, at=at(n), notification=event)


async def notification_ids(store: ContractStore) -> list[int]:
    return [n.id for n in await store.list_notifications(limit=1000)]


async def test_read_and_resolve_marks_report_whether_the_notification_exists(
    store: ContractStore,
) -> None:
    record = await session(store)
    await notifications(store, record, 2)
    assert await store.mark_notification_read(1, at(10)) is True
    assert await store.resolve_notification(2, at(11)) is True
    assert await store.mark_notification_read(99, at(12)) is False
    assert await store.resolve_notification(99, at(12)) is False
    marks = [(n.id, n.read, n.resolved) for n in await store.list_notifications()]
    assert marks == [(2, False, True), (1, True, False)]
    before = len(await changes(store))
    assert await store.mark_notification_read(1, at(20)) is True  # again: still there
    assert len(await changes(store)) == before  # marks are not change-log events


async def test_read_or_resolved_notifications_go_after_their_age_unread_ones_stay(
    store: ContractStore,
) -> None:
    record = await session(store)
    await notifications(store, record, 4)
    await store.mark_notification_read(1, at(10))
    await store.mark_notification_read(1, at(90))  # the first read counts
    await store.resolve_notification(2, at(10))
    await store.mark_notification_read(3, at(50))
    policy = keeping(notification_read_max_age=timedelta(seconds=100))

    assert (await store.apply_retention(policy, now=at(109))).notifications == 0
    assert (await store.apply_retention(policy, now=at(111))).notifications == 2
    assert await notification_ids(store) == [4, 3]
    far = at(4) + timedelta(days=3650)
    assert (await store.apply_retention(policy, now=far)).notifications == 1
    assert await notification_ids(store) == [4]  # never read: kept whatever its age


async def test_notifications_beyond_the_row_cap_go_oldest_first(store: ContractStore) -> None:
    record = await session(store)
    await notifications(store, record, 5)
    report = await store.apply_retention(keeping(notifications_max_rows=2), now=at(10))
    assert report.notifications == 3
    assert await notification_ids(store) == [5, 4]
    await store.apply_retention(keeping(notifications_max_rows=0), now=at(10))
    assert await notification_ids(store) == []


# --- check runs -------------------------------------------------------------------------------


async def test_each_check_keeps_its_newest_runs_which_the_ci_brake_reads(
    store: ContractStore,
) -> None:
    record = await session(store)
    for n in range(1, 7):
        runs = [check(f"c{n}", FAILED, created_at=at(n))]
        if n <= 2:
            runs.append(check(f"c{n}", PASSED, name="lint", created_at=at(n)))
        await store.write_pr_observation(record.id, observation(checks=tuple(runs)), at(n))
    await store.write_pr_observation(
        record.id, observation(PR2, number=2, checks=(check("x", FAILED),)), at(7)
    )
    brake_before = await store.recent_check_runs(PR1, "ci", 3)

    report = await store.apply_retention(keeping(check_runs_per_check=3), now=at(100))
    assert report == RetentionReport(check_runs=3)
    assert [c.commit for c in await store.recent_check_runs(PR1, "ci", 10)] == ["c6", "c5", "c4"]
    assert await store.recent_check_runs(PR1, "ci", 3) == brake_before
    assert [c.commit for c in await store.recent_check_runs(PR1, "lint", 10)] == ["c2", "c1"]
    assert len(await store.list_checks(PR2)) == 1


async def test_runs_recorded_after_a_pass_are_trimmed_by_the_next(store: ContractStore) -> None:
    record = await session(store)

    async def run(n: int, url: str = PR1) -> None:
        obs = observation(url, checks=(check(f"c{n}", FAILED, created_at=at(n)),))
        await store.write_pr_observation(record.id, obs, at(n))

    for n in range(1, 4):
        await run(n)
        await run(n, PR2)
    policy = keeping(check_runs_per_check=3)
    assert (await store.apply_retention(policy, now=at(10))).check_runs == 0
    await run(4)
    assert (await store.apply_retention(policy, now=at(11))).check_runs == 1
    assert [c.commit for c in await store.recent_check_runs(PR1, "ci", 10)] == ["c4", "c3", "c2"]
    # A lower cap applies to every check, not only to those that just ran.
    assert (
        await store.apply_retention(keeping(check_runs_per_check=1), now=at(12))
    ).check_runs == 4
    assert [c.commit for c in await store.recent_check_runs(PR2, "ci", 10)] == ["c3"]


# --- sessions terminated long ago --------------------------------------------------------------


async def with_history(store: ContractStore, project_id: str) -> SessionRecord:
    """A session with a PR (two check runs, a comment) and two trackers, at(1)."""
    record = await session(store, project_id)
    url = f"https://github.com/acme/{project_id}/pull/1"
    obs = observation(
        url,
        checks=(check("a", FAILED, created_at=at(1)), check("b", FAILED, created_at=at(1))),
        comments=(PRComment(id="c1", author="ann", body="nit"),),
    )
    trackers = (
        Tracker(key="entry", reaction=ReactionKey.AGENT_IDLE, attempts=1, first_at=at(1)),
        Tracker(key=f"ci:{url}:ci", reaction=ReactionKey.CI_FAILED, seen=("a", "b")),
    )
    working, changed = moved(record, at(1), state=SessionState.WORKING)
    await store.commit(unit_for(working, changed, pr=obs, trackers_upsert=trackers))
    stored = await store.get_session(record.id)
    assert stored is not None
    return stored


async def terminate(store: ContractStore, record: SessionRecord, when: float) -> None:
    ended, changed = moved(record, at(when), state=SessionState.TERMINATED, is_alive=False)
    await store.commit(unit_for(ended, changed))


async def test_a_long_terminated_session_loses_its_trackers_checks_and_comments(
    store: ContractStore,
) -> None:
    live = await with_history(store, "live")
    ended = await with_history(store, "ended")
    await terminate(store, ended, 10)
    ended_pr = "https://github.com/acme/ended/pull/1"
    policy = keeping(terminated_history_max_age=timedelta(seconds=100))

    assert (await store.apply_retention(policy, now=at(109))).total == 0  # not long enough
    report = await store.apply_retention(policy, now=at(111))
    assert report == RetentionReport(check_runs=2, comments=1, trackers=2)
    assert await store.list_trackers(ended.id) == []
    assert await store.list_checks(ended_pr) == []
    assert await store.list_pr_comments(ended_pr) == []
    (facts,) = await store.list_pr_facts(ended.id)  # its PR row stays, for listings
    assert (facts.url, facts.review_comments) == (ended_pr, False)
    assert len(await store.list_trackers(live.id)) == 2


async def test_a_live_sessions_trackers_and_history_survive_any_age(store: ContractStore) -> None:
    live = await with_history(store, "live")
    stuck = await with_history(store, "stuck")
    stuck_now, changed = moved(stuck, at(2), state=SessionState.STUCK)
    await store.commit(unit_for(stuck_now, changed))
    policy = RetentionPolicy(terminated_history_max_age=timedelta(seconds=1))
    report = await store.apply_retention(policy, now=at(1) + timedelta(days=3650))
    assert (report.trackers, report.comments, report.check_runs) == (0, 0, 0)
    for record in (live, stuck):
        assert len(await store.list_trackers(record.id)) == 2
        url = f"https://github.com/acme/{record.project_id}/pull/1"
        assert len(await store.list_checks(url)) == 2
        assert len(await store.list_pr_comments(url)) == 1


# --- the change log ---------------------------------------------------------------------------


async def flips(store: ContractStore, record: SessionRecord, count: int) -> None:
    """``count`` state flips at at(1), at(2)…: one change-log row each."""
    current = record
    for n in range(1, count + 1):
        state = SessionState.IDLE if n % 2 else SessionState.WORKING
        current, changed = moved(current, at(n), state=state)
        await store.commit(unit_for(current, changed))


async def test_the_change_log_keeps_its_newest_rows_and_its_recent_prefix(
    store: ContractStore,
) -> None:
    record = await session(store)  # seq 1 at T0
    await flips(store, record, 9)  # seq 2..10 at at(1)..at(9)
    report = await store.apply_retention(keeping(change_log_max_rows=6), now=at(10))
    assert report == RetentionReport(change_log=4)
    assert [e.seq for e in await changes(store)] == list(range(5, 11))
    aged = keeping(change_log_max_age=timedelta(seconds=3))
    assert (await store.apply_retention(aged, now=at(9))).change_log == 2  # at(4), at(5)
    assert [e.seq for e in await changes(store)] == list(range(7, 11))
    assert await store.max_change_seq() == 10
