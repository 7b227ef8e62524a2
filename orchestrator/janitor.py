"""The retention janitor: one pass of every retention rule each ``policy.interval``.

The store does the deleting, in short batches so live writes interleave
(docs/design.md, "Storage"); this task only paces it and reports. A failing pass (a full
disk, say) is logged once when the episode begins and once when passes succeed again,
never once per interval: a janitor that retries every ten minutes must not fill the log
of a daemon that is already short of disk.
"""

from __future__ import annotations

import logging

import trio

from orchestrator.domain.errors import OrchestratorError
from orchestrator.domain.reactions import ReactionPolicy, ci_brake_depth
from orchestrator.domain.retention import RetentionPolicy, RetentionReport
from orchestrator.ports import Clock, StoreUpkeep

log = logging.getLogger("orchestrator.janitor")


def janitor_policy(retention: RetentionPolicy, reactions: ReactionPolicy) -> RetentionPolicy:
    """The configured retention, keeping at least the check runs the CI brake reads
    (docs/design.md, D-3): a user who lowers ``checkRunsPerCheck`` below the brake's
    depth must not silence it."""
    return retention.with_brake_depth(ci_brake_depth(reactions))


def describe(report: RetentionReport) -> str:
    """``change_log=120 outbox=3``: the tables that lost rows, and how many."""
    counts = ((name, getattr(report, name)) for name in report.__struct_fields__)
    return " ".join(f"{name}={count}" for name, count in counts if count)


async def run_janitor(store: StoreUpkeep, policy: RetentionPolicy, clock: Clock) -> None:
    """Apply ``policy`` now and then every ``policy.interval``, until cancelled."""
    failing = False
    while True:
        try:
            report = await store.apply_retention(policy, now=clock.now())
        except OrchestratorError as error:
            if not failing:
                log.warning(
                    "retention pass failed (retrying every %gs; logged once until it works): %s",
                    policy.interval.total_seconds(),
                    error,
                )
            failing = True
        else:
            if failing:
                log.info("retention passes work again")
            failing = False
            if report.total:
                log.info("retention: deleted %d rows (%s)", report.total, describe(report))
        await trio.sleep(policy.interval.total_seconds())


__all__ = ["describe", "janitor_policy", "run_janitor"]
