"""The retention rules over ``MemoryStore``'s tables: the same rows go as from the SQLite
store (``adapters/sqlite/retention.py`` states the rules; the contract tests hold both to
them). Memory has no writer to be fair to, so each pass is one swap of the tables."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator.domain.retention import RetentionPolicy, RetentionReport

if TYPE_CHECKING:
    from adapters.memory_tables import _CheckRow, _Tables

_NEVER = datetime.min.replace(tzinfo=UTC)


def apply_retention(t: _Tables, policy: RetentionPolicy, now: datetime) -> RetentionReport:
    """Delete from ``t`` (a draft the caller swaps in) what ``policy`` no longer keeps."""
    terminated_runs, comments, trackers = _trim_terminated(
        t, now - policy.terminated_history_max_age
    )
    return RetentionReport(
        change_log=_trim_change_log(t, now - policy.change_log_max_age, policy.change_log_max_rows),
        outbox=_trim_outbox(t, now - policy.outbox_settled_max_age),
        notifications=_trim_notifications(
            t, now - policy.notification_read_max_age, policy.notifications_max_rows
        ),
        check_runs=_trim_check_runs(t, policy.check_runs_per_check) + terminated_runs,
        comments=comments,
        trackers=trackers,
    )


def _trim_change_log(t: _Tables, older_than: datetime, keep_max_rows: int) -> int:
    """The longest prefix of rows each beyond the newest ``keep_max_rows`` seqs or older
    than ``older_than``."""
    over_cap = (t.change_log[-1].seq - keep_max_rows) if t.change_log else 0
    cut = 0
    for event in t.change_log:
        if event.seq > over_cap and event.created_at >= older_than:
            break
        cut += 1
    del t.change_log[:cut]
    return cut


def _trim_outbox(t: _Tables, settled_before: datetime) -> int:
    gone = [
        entry_id
        for entry_id, entry in t.outbox.items()
        if (settled := entry.delivered_at or entry.failed_at) is not None
        and settled < settled_before
    ]
    for entry_id in gone:
        # The key goes with its row, as the unique index entry does in SQLite.
        t.dedup_keys.discard(t.outbox.pop(entry_id).item.dedup_key)
    return len(gone)


def _trim_notifications(t: _Tables, done_before: datetime, keep_max_rows: int) -> int:
    def stays(notification_id: int) -> bool:
        read_at, resolved_at = t.notification_marks.get(notification_id, (None, None))
        return all(at is None or at >= done_before for at in (read_at, resolved_at))

    before = len(t.notifications)
    kept = [n for n in t.notifications if stays(n.id)]
    newest_first = sorted((n.id for n in kept), reverse=True)
    if len(newest_first) > keep_max_rows:  # the oldest beyond the cap go, unread ones too
        edge = newest_first[keep_max_rows]
        kept = [n for n in kept if n.id > edge]
    t.notifications = kept
    live = {n.id for n in kept}
    t.notification_marks = {k: v for k, v in t.notification_marks.items() if k in live}
    return before - len(kept)


def _newest_first(row: _CheckRow) -> tuple[datetime, int]:
    return (row.check.created_at or _NEVER, row.order)


def _trim_check_runs(t: _Tables, keep: int) -> int:
    runs: defaultdict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for key in t.checks:
        runs[key[0], key[1]].append(key)
    deleted = 0
    for keys in runs.values():
        keys.sort(key=lambda k: _newest_first(t.checks[k]), reverse=True)
        for key in keys[keep:]:
            del t.checks[key]
            deleted += 1
    return deleted


def _trim_terminated(t: _Tables, ended_before: datetime) -> tuple[int, int, int]:
    """Check runs, comments and trackers of sessions terminal since before ``ended_before``."""
    ended = {
        s.id
        for s in t.sessions.values()
        if s.lifecycle.state.is_terminal and s.updated_at < ended_before
    }
    urls = {row.url for row in t.prs.values() if row.session_id in ended}
    runs = [key for key in t.checks if key[0] in urls]
    for key in runs:
        del t.checks[key]
    comments = sum(len(t.comments.pop(url, [])) for url in urls)
    trackers = sum(len(t.trackers.pop(sid, {})) for sid in ended)
    return len(runs), comments, trackers
