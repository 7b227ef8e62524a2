"""The retention janitor: its cadence, the CI brake's floor, what it logs, and that a
failing pass neither ends it nor floods the log."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import trio
import trio.testing

from adapters.memory import MemoryStore
from orchestrator.clock import TrioClock
from orchestrator.config import load_config
from orchestrator.domain.errors import StorageUnavailableError
from orchestrator.domain.reactions import ReactionPolicy, load_reaction_policy
from orchestrator.domain.retention import RetentionPolicy, RetentionReport
from orchestrator.janitor import describe, janitor_policy, run_janitor

MINUTE = timedelta(minutes=1)


class ScriptedUpkeep:
    """A store's upkeep port that answers each pass from ``answers`` (an exception is
    raised), then with empty reports; records when each pass ran."""

    def __init__(self, *answers: RetentionReport | Exception) -> None:
        self.answers = list(answers)
        self.passes: list[datetime] = []
        self.policies: list[RetentionPolicy] = []

    def health(self) -> object:
        raise NotImplementedError

    async def apply_retention(self, policy: RetentionPolicy, *, now: datetime) -> RetentionReport:
        self.passes.append(now)
        self.policies.append(policy)
        answer = self.answers.pop(0) if self.answers else RetentionReport()
        if isinstance(answer, Exception):
            raise answer
        return answer


async def run_for(upkeep: ScriptedUpkeep, policy: RetentionPolicy, seconds: float) -> None:
    with trio.move_on_after(seconds):
        await run_janitor(upkeep, policy, TrioClock())  # type: ignore[arg-type]


async def test_a_pass_runs_at_start_then_every_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    upkeep = ScriptedUpkeep()
    policy = RetentionPolicy(interval=10 * MINUTE)
    await run_for(upkeep, policy, 35 * 60)
    start = upkeep.passes[0]
    assert [p - start for p in upkeep.passes] == [n * 10 * MINUTE for n in range(4)]
    assert upkeep.policies == [policy] * 4


async def test_a_failing_pass_is_logged_once_per_episode_and_retried(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    full = StorageUnavailableError("database or disk is full")
    upkeep = ScriptedUpkeep(full, full, full, RetentionReport(change_log=7, outbox=2), full)
    caplog.set_level(logging.INFO, logger="orchestrator.janitor")
    await run_for(upkeep, RetentionPolicy(interval=MINUTE), 4.5 * 60)
    assert len(upkeep.passes) == 5  # the failures did not end the task
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4, messages
    assert messages[0].startswith("retention pass failed (retrying every 60s")
    assert "database or disk is full" in messages[0]
    assert messages[1] == "retention passes work again"
    assert messages[2] == "retention: deleted 9 rows (change_log=7 outbox=2)"
    assert messages[3].startswith("retention pass failed")  # a new episode


async def test_a_pass_that_deletes_nothing_says_nothing(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.janitor")
    await run_for(ScriptedUpkeep(), RetentionPolicy(interval=MINUTE), 3.5 * 60)
    assert caplog.records == []


async def test_the_janitor_runs_over_a_real_store(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryStore()
    with trio.move_on_after(1):
        await run_janitor(store, RetentionPolicy(), TrioClock())
    assert store.health().ok


def test_the_policy_keeps_the_runs_the_ci_brake_reads(tmp_path: Path) -> None:
    file = tmp_path / "orchestrator.yaml"
    file.write_text(
        "retention: {checkRunsPerCheck: 2, interval: 500ms}\nreactions: {ci-failed: {retries: 4}}\n"
    )
    config = load_config(file, env={"ORCHESTRATOR_DATA_DIR": str(tmp_path)})
    policy = janitor_policy(config.retention, config.policy)
    assert policy.check_runs_per_check == 5  # the brake reads the last retries + 1 runs
    assert policy.interval == timedelta(milliseconds=500)
    roomy = RetentionPolicy(check_runs_per_check=50)
    assert janitor_policy(roomy, ReactionPolicy()) is roomy
    assert janitor_policy(RetentionPolicy(), load_reaction_policy({})).check_runs_per_check == 20


def test_describe_names_only_the_tables_that_lost_rows() -> None:
    assert describe(RetentionReport()) == ""
    assert describe(RetentionReport(notifications=3, trackers=1)) == "notifications=3 trackers=1"
