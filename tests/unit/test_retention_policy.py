"""The retention policy: its defaults in one place, refusals that name the config key, and
never fewer check runs than the CI brake reads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.domain.errors import ConfigError
from orchestrator.domain.reactions import ReactionPolicy, ci_brake_depth
from orchestrator.domain.retention import RetentionPolicy, RetentionReport


def test_the_defaults_keep_what_the_ci_brake_reads() -> None:
    policy = RetentionPolicy()
    assert policy.check_runs_per_check >= ci_brake_depth(ReactionPolicy())
    assert policy.with_brake_depth(3) is policy
    assert policy.with_brake_depth(50).check_runs_per_check == 50


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("batch_size", 0, "retention.batchSize"),
        ("change_log_max_rows", -1, "retention.changeLogMaxRows"),
        ("notifications_max_rows", -1, "retention.notificationsMaxRows"),
        ("check_runs_per_check", 0, "retention.checkRunsPerCheck"),
        ("interval", timedelta(0), "retention.interval"),
        ("outbox_settled_max_age", timedelta(seconds=-1), "retention.outboxSettledMaxAge"),
        ("terminated_history_max_age", timedelta(0), "retention.terminatedHistoryMaxAge"),
    ],
)
def test_an_unusable_value_is_refused_naming_its_key(field: str, value: object, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        RetentionPolicy(**{field: value})  # type: ignore[arg-type]


def test_a_report_totals_its_tables() -> None:
    report = RetentionReport(change_log=1, outbox=2, notifications=3, check_runs=4, comments=5)
    assert report.total == 15
    assert RetentionReport().total == 0
