"""How the GitHub observer paces itself. Every value comes from the config file
(``scm.github``), where the defaults live; nothing here has one."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config.schema import GitHubConfig


@dataclass(frozen=True, kw_only=True, slots=True)
class ObserverSettings:
    """Seconds, unless named otherwise.

    ``repo_interval``: the open-PR listing of each watched repository (and the re-read of
    sessions). ``pending_interval``, ``settled_interval``, ``draft_interval``: a PR's CI
    guards while its CI is pending (or GitHub is still computing mergeability), once it
    settled, and while it is a draft. ``max_age``: the unconditional detail backstop, for
    what no guard shows (a base branch that moved under the PR). ``review_interval``:
    reviews re-read while changes are requested or threads are open. ``kick_debounce``:
    kicks within this window coalesce into one poll. ``batch_size``: PRs per detail query.
    ``host``: the web host repositories are on (``github.com``, or an Enterprise host)."""

    repo_interval: float
    pending_interval: float
    settled_interval: float
    draft_interval: float
    max_age: float
    review_interval: float
    kick_debounce: float
    batch_size: int
    host: str

    def __post_init__(self) -> None:
        intervals = (
            self.repo_interval,
            self.pending_interval,
            self.settled_interval,
            self.draft_interval,
            self.max_age,
            self.review_interval,
        )
        if min(intervals) <= 0 or self.kick_debounce < 0:
            raise ValueError("observer intervals must be positive")
        if self.batch_size < 1:
            raise ValueError("the batch size must be at least 1")

    @classmethod
    def of(cls, github: GitHubConfig) -> ObserverSettings:
        """The settings the config's ``scm.github`` section gives."""
        poll = github.poll
        return cls(
            repo_interval=poll.repo.total_seconds(),
            pending_interval=poll.pending.total_seconds(),
            settled_interval=poll.settled.total_seconds(),
            draft_interval=poll.draft.total_seconds(),
            max_age=poll.max_age.total_seconds(),
            review_interval=github.review_interval.total_seconds(),
            kick_debounce=github.kick_debounce.total_seconds(),
            batch_size=github.batch_size,
            host=github.host,
        )
