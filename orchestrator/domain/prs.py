"""Which PR speaks for a session, and a check's run history as of an observation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from orchestrator.domain.model import CheckStatus, PRCheck, PRFacts, PRObservation


def select_pr_facts(newest_first: Sequence[PRFacts]) -> PRFacts:
    """Reference §6.7: the most recently updated open or draft PR, else the most recently
    updated closed or merged one, else no PR."""
    for facts in newest_first:
        if facts.exists and not facts.closed and not facts.merged:
            return facts
    return newest_first[0] if newest_first else NO_PR


NO_PR: Final = PRFacts()


def with_observation(newest_first: Sequence[PRFacts], observation: PRObservation) -> list[PRFacts]:
    """A session's PRs, newest first, after ``observation`` was written (it is now newest)."""
    return [observation.facts(), *(f for f in newest_first if f.url != observation.url)]


def runs_with_observation(
    stored_newest_first: Sequence[PRCheck], check: PRCheck
) -> list[CheckStatus]:
    """A check's recent statuses, newest first by first-seen time, after ``check`` is upserted.

    A commit seen before keeps its place (first-seen time is kept) and takes the new
    status; a new commit is the newest run."""
    runs = list(stored_newest_first)
    for index, run in enumerate(runs):
        if run.commit == check.commit:
            runs[index] = msgspec.structs.replace(run, status=check.status)
            break
    else:
        runs.insert(0, check)
    return [CheckStatus(run.status) for run in runs]
