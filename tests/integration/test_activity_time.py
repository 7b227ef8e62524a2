"""Activity timestamps from clients, end to end: over HTTP a report stamped beyond the clock
skew is kept at its receipt time (``9999-01-01`` no longer makes a session's activity
recent forever), and in the engine a report older than the last one applied writes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.api import API_PREFIX
from orchestrator.domain.decide import MAX_CLOCK_SKEW, RECENT_ACTIVITY_WINDOW, has_recent_activity
from orchestrator.domain.model import ActivitySignal, ActivityState, SessionState
from orchestrator.ports import Store
from tests.engine_harness import STORES, running_engine
from tests.http_harness import serve_api

P = API_PREFIX


async def test_a_far_future_timestamp_is_kept_at_its_receipt_time() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        before = api.engine.clock.now()
        response = await api.client.post(
            f"{P}/sessions/{sid}/activity",
            json={"state": "waiting_input", "timestamp": "9999-01-01T00:00:00Z"},
        )
        after = api.engine.clock.now()
        assert response.status_code == 204, response.text
        record = await api.engine.state(sid)
        activity = record.lifecycle.activity
        assert activity is not None
        assert record.lifecycle.state is SessionState.NEEDS_INPUT
        assert before <= activity.last_activity_at <= after
        # It ages like any report: a minute later it is no longer recent activity.
        later = after + RECENT_ACTIVITY_WINDOW + timedelta(seconds=1)
        assert not has_recent_activity(activity, later)


async def test_a_timestamp_within_the_skew_is_kept_as_given() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        ahead = api.engine.clock.now() + MAX_CLOCK_SKEW - timedelta(seconds=1)
        response = await api.client.post(
            f"{P}/sessions/{sid}/activity",
            json={"state": "active", "timestamp": ahead.isoformat()},
        )
        assert response.status_code == 204, response.text
        activity = (await api.engine.state(sid)).lifecycle.activity
        assert activity is not None
        assert activity.last_activity_at == ahead


async def test_an_older_timestamp_over_http_does_not_move_the_activity_back() -> None:
    async with serve_api() as api:
        sid = await api.spawn()
        response = await api.client.post(f"{P}/sessions/{sid}/activity", json={"state": "active"})
        assert response.status_code == 204
        record = await api.engine.state(sid)
        head = await api.head()
        stale = api.engine.clock.now() - timedelta(minutes=5)
        response = await api.client.post(
            f"{P}/sessions/{sid}/activity",
            json={"state": "idle", "timestamp": stale.isoformat()},
        )
        assert response.status_code == 204  # accepted, and out of date
        assert await api.engine.state(sid) == record
        assert await api.head() == head  # no change was written


@pytest.fixture(params=sorted(STORES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with STORES[request.param](tmp_path) as opened:
        yield opened


async def test_reports_that_arrive_late_are_ignored_by_the_engine(store: Store) -> None:
    async with running_engine(store) as engine:
        session = await engine.spawn()
        base = engine.clock.now()

        async def report(state: ActivityState, seconds: int) -> None:
            signal = ActivitySignal(state=state, timestamp=base + timedelta(seconds=seconds))
            await engine.manager.apply_activity_signal(session.id, signal)

        await report(ActivityState.ACTIVE, 10)
        await report(ActivityState.WAITING_INPUT, 20)
        applied = await engine.state(session.id)
        head = await store.max_change_seq()
        await report(ActivityState.ACTIVE, 15)  # sent before the waiting_input, arrived after
        assert await engine.state(session.id) == applied
        assert applied.lifecycle.state is SessionState.NEEDS_INPUT
        assert await store.max_change_seq() == head
        await engine.deliver()
        assert engine.notified() == [
            "reaction.agent-needs-input"
        ]  # and nothing for the late report
