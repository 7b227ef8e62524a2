"""How long the store keeps what it no longer needs: one policy, its defaults here and
nowhere else, and the report of one janitor pass (docs/design.md, "Storage").

Every table is bounded. What must stay durable never goes, whatever its age: undelivered
outbox rows (docs/design.md, D-1), and the trackers of sessions that are not terminal
(docs/design.md, D-2: budgets and dedup state). A check's history keeps at least the runs
the CI brake reads (docs/design.md, D-3), see ``with_brake_depth``.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec

from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import Model


class RetentionPolicy(Model, frozen=True, kw_only=True):
    """The janitor's knobs. Ages count back from the time the janitor runs."""

    interval: timedelta = timedelta(minutes=10)
    """How often the janitor runs."""
    batch_size: int = 500
    """Rows deleted per writer transaction, so live writes interleave with a long trim."""
    change_log_max_age: timedelta = timedelta(days=7)
    """The event history kept for replay (``events``, SSE ``Last-Event-ID``)."""
    change_log_max_rows: int = 100_000
    """...and at most this many change-log rows, whatever their age."""
    outbox_settled_max_age: timedelta = timedelta(days=7)
    """A delivered or given-up outbox row is kept this long after it settled."""
    notification_read_max_age: timedelta = timedelta(days=30)
    """A notification is kept this long after it was read or resolved."""
    notifications_max_rows: int = 10_000
    """...and at most this many notifications, unread ones included (the oldest go)."""
    check_runs_per_check: int = 20
    """The newest runs kept of each check on each PR."""
    terminated_history_max_age: timedelta = timedelta(days=14)
    """A session terminal this long loses its reaction trackers, check runs and review
    comments; its own row and its PR rows (the facts a listing shows) stay."""

    def __post_init__(self) -> None:
        for name, least in (
            ("batch_size", 1),
            ("change_log_max_rows", 0),
            ("notifications_max_rows", 0),
            ("check_runs_per_check", 1),
        ):
            if getattr(self, name) < least:
                raise ConfigError(
                    f"retention.{_camel(name)} must be >= {least}, not {getattr(self, name)}"
                )
        for name in (
            "interval",
            "change_log_max_age",
            "outbox_settled_max_age",
            "notification_read_max_age",
            "terminated_history_max_age",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"retention.{_camel(name)} must be a positive duration")

    def with_brake_depth(self, depth: int) -> RetentionPolicy:
        """This policy keeping at least ``depth`` runs per check: the CI brake trips on the
        last ``depth`` runs, so keeping fewer would silence it (D-3)."""
        if self.check_runs_per_check >= depth:
            return self
        return msgspec.structs.replace(self, check_runs_per_check=depth)


class RetentionReport(Model, frozen=True, kw_only=True):
    """Rows one janitor pass deleted, per table."""

    change_log: int = 0
    outbox: int = 0
    notifications: int = 0
    check_runs: int = 0
    comments: int = 0
    trackers: int = 0

    @property
    def total(self) -> int:
        return (
            self.change_log
            + self.outbox
            + self.notifications
            + self.check_runs
            + self.comments
            + self.trackers
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
