"""What of the outbox is due: the dispatcher's one read, kept apart from the store's plain
selects because it carries a rule, each session's order across restarts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.sqlite import tables as t
from adapters.sqlite.tables import encode_ts


def due_outbox_query(now: datetime, limit: int) -> Any:
    """Undelivered, unfailed rows whose next attempt is due (or unset), oldest first,
    leaving out every row queued behind an earlier open row of its session that waits for
    a retry (next attempt later than ``now``): a session's rows go in order, even when the
    dispatcher that requeued that row is gone."""
    o, earlier = t.outbox, t.outbox.alias("earlier")
    stamp = encode_ts(now)
    # Written to match idx_outbox_retrying (migration 0006): it holds only requeued rows.
    waiting = sa.exists().where(
        earlier.c.session_id == o.c.session_id,
        earlier.c.id < o.c.id,
        earlier.c.delivered_at.is_(None),
        earlier.c.failed_at.is_(None),
        earlier.c.next_attempt_at > stamp,
    )
    return (
        sa.select(o)
        .where(
            o.c.delivered_at.is_(None),
            o.c.failed_at.is_(None),
            sa.or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= stamp),
            ~waiting,
        )
        .order_by(o.c.id)
        .limit(limit)
    )


__all__ = ["due_outbox_query"]
