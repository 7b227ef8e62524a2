"""Write plans: a ``CommitUnit`` or a PR observation turned into statement parameters in
the caller's task, then run by the group-commit writer as one op.

A unit applies, in order: the session UPDATE (a missing row is a ``StoreError``), the PR
write (PR upsert, check upserts, comment replacement; a PR another live session owns is a
``ConflictError`` naming it), tracker deletes, tracker upserts (so
delete + upsert of one key keeps the new tracker), outbox inserts. A session UPDATE sets
only the columns of the fields named in ``CommitUnit.changed`` (plus ``updated_at``),
never the key. Units of different sessions can be merged by the writer into one
``executemany`` per statement (``UnitWrite.apply_merged``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec
import sqlalchemy as sa

from adapters.sqlite import tables as t
from adapters.sqlite.statements import (
    DELETE_COMMENTS,
    DELETE_TRACKER,
    INSERT_OUTBOX,
    INSERT_OUTBOX_UNGUARDED,
    PR_OWNER,
    UPSERT_CHECK,
    UPSERT_COMMENT,
    UPSERT_PR,
    UPSERT_TRACKER,
    compile_sql,
)
from adapters.sqlite.tables import encode_opt_ts, encode_ts
from orchestrator.domain.errors import ConflictError, StoreError
from orchestrator.domain.model import (
    NotificationEvent,
    PRObservation,
    SessionId,
    SessionRecord,
)
from orchestrator.domain.records import CommitUnit, Tracker

# --- the session row: the columns of each changeable field ---------------------------------------

_Getter = Callable[[SessionRecord], tuple[Any, ...]]


def _get_state(r: SessionRecord) -> tuple[Any, ...]:
    return (str(r.lifecycle.state),)


def _get_reason(r: SessionRecord) -> tuple[Any, ...]:
    return (str(r.lifecycle.termination_reason),)


def _get_alive(r: SessionRecord) -> tuple[Any, ...]:
    return (int(r.lifecycle.is_alive),)


def _get_activity(r: SessionRecord) -> tuple[Any, ...]:
    a = r.lifecycle.activity
    if a is None:
        return ("", "", "")
    return (str(a.state), encode_ts(a.last_activity_at), str(a.source))


def _get_detecting(r: SessionRecord) -> tuple[Any, ...]:
    d = r.lifecycle.detecting
    if d is None:
        return (None, None, None)
    return (d.attempts, encode_ts(d.started_at), d.evidence_hash)


def _get_harness(r: SessionRecord) -> tuple[Any, ...]:
    return (str(r.lifecycle.harness),)


def _get_metadata(r: SessionRecord) -> tuple[Any, ...]:
    m = r.metadata
    return (
        m.branch,
        m.workspace_path,
        m.runtime_handle_id,
        m.runtime_name,
        m.agent_session_id,
        m.prompt,
        m.agent,
    )


# CommitUnit.changed name -> (columns, values); the SET clause follows this order.
_CHANGED_FIELDS: Final[dict[str, tuple[tuple[str, ...], _Getter]]] = {
    "state": (("session_state",), _get_state),
    "termination_reason": (("termination_reason",), _get_reason),
    "is_alive": (("is_alive",), _get_alive),
    "activity": (("activity_state", "activity_last_at", "activity_source"), _get_activity),
    "detecting": (
        ("detecting_attempts", "detecting_started_at", "detecting_evidence_hash"),
        _get_detecting,
    ),
    "harness": (("harness",), _get_harness),
    "metadata": (
        (
            "branch",
            "workspace_path",
            "runtime_handle_id",
            "runtime_name",
            "agent_session_id",
            "prompt",
            "agent",
        ),
        _get_metadata,
    ),
}
CHANGEABLE_FIELDS: Final = frozenset(_CHANGED_FIELDS)


def session_row(record: SessionRecord) -> dict[str, Any]:
    """Every column of ``record``'s row by name, for the session INSERT."""
    row: dict[str, Any] = {
        "id": record.id,
        "project_id": record.project_id,
        "num": record.num,
        "issue_id": record.issue_id,
        "kind": str(record.kind),
        "created_at": encode_ts(record.created_at),
        "updated_at": encode_ts(record.updated_at),
    }
    for columns, get in _CHANGED_FIELDS.values():
        row.update(zip(columns, get(record), strict=True))
    return row


# --- the session UPDATE: only the columns of the changed fields ---------------------------------

_update_plans: dict[frozenset[str], tuple[str, tuple[_Getter, ...]]] = {}


def _set_value(column: str, merged: set[str]) -> Any:
    """``?`` for most columns; metadata merges: ``COALESCE(NULLIF(?, ''), column)`` keeps
    the stored value when the incoming one is empty (CommitUnit, SessionMetadata)."""
    value: Any = sa.bindparam(column)
    if column in merged:
        return sa.func.coalesce(
            sa.func.nullif(value, sa.literal_column("''")), t.sessions.c[column]
        )
    return value


def _update_plan(changed: frozenset[str]) -> tuple[str, tuple[_Getter, ...]]:
    """The UPDATE for exactly these changed fields (cached per set)."""
    plan = _update_plans.get(changed)
    if plan is not None:
        return plan
    unknown = changed - CHANGEABLE_FIELDS
    if unknown:
        raise ValueError(
            f"unknown changed field(s) {sorted(unknown)}; expected some of {sorted(CHANGEABLE_FIELDS)}"
        )
    fields = [name for name in _CHANGED_FIELDS if name in changed]
    columns = [col for name in fields for col in _CHANGED_FIELDS[name][0]] + ["updated_at"]
    merged = set(_CHANGED_FIELDS["metadata"][0])
    stmt = (
        sa.update(t.sessions)
        .where(t.sessions.c.id == sa.bindparam("b_id"))
        .ordered_values(*[(t.sessions.c[col], _set_value(col, merged)) for col in columns])
    )
    plan = (compile_sql(stmt, *columns, "b_id"), tuple(_CHANGED_FIELDS[n][1] for n in fields))
    _update_plans[changed] = plan
    return plan


# --- writer ops ---------------------------------------------------------------------------------


class PRWrite:
    """One PR observation: PR upsert (first, so the check and comment triggers can find the
    session), check upserts (first-seen time kept), then the comment set replaced. The
    upsert lands only for the PR's owner, or once its owner has ended: a PR belongs to one
    session, and moving it from a live one is a claim."""

    __slots__ = ("checks", "comments", "pr_row", "session_id", "url")

    def __init__(self, session_id: SessionId, obs: PRObservation, at: str) -> None:
        url = obs.url
        self.url = url
        self.session_id = session_id
        self.pr_row = (
            url,
            session_id,
            obs.number,
            str(obs.state),
            str(obs.review),
            str(obs.ci),
            str(obs.mergeability),
            at,
            obs.head_sha,
        )
        self.checks = [
            (
                url,
                c.name,
                c.commit,
                str(c.status),
                c.url,
                c.log_tail,
                at if c.created_at is None else encode_ts(c.created_at),
            )
            for c in obs.checks
        ]
        self.comments = [
            (
                url,
                c.id,
                c.author,
                c.file,
                c.line,
                c.body,
                int(c.resolved),
                at if c.created_at is None else encode_ts(c.created_at),
            )
            for c in obs.comments
        ]

    def __call__(self, cur: sqlite3.Cursor) -> None:
        cur.execute(UPSERT_PR, self.pr_row)
        if cur.rowcount == 0:
            (owner,) = cur.execute(PR_OWNER, (self.url,)).fetchone()
            raise pr_owned_error(self.url, owner, self.session_id)
        if self.checks:
            cur.executemany(UPSERT_CHECK, self.checks)
        cur.execute(DELETE_COMMENTS, (self.url,))
        if self.comments:
            cur.executemany(UPSERT_COMMENT, self.comments)


class UnitWrite:
    """A CommitUnit as parameters, in the order the unit is applied (see the module doc).
    Built in the caller's task, so a malformed unit fails before it reaches the writer.
    A ``MergeableOp`` of the writer: units of different sessions may be merged."""

    __slots__ = (
        "merge_key",
        "outbox",
        "pr",
        "session_id",
        "session_params",
        "session_sql",
        "tracker_deletes",
        "tracker_upserts",
    )

    def __init__(self, unit: CommitUnit) -> None:
        sid = unit.session_id
        # Units of different sessions may be merged; two of one session never are.
        self.session_id = self.merge_key = sid
        record = unit.session
        if record is not None:
            if record.id != sid:
                raise ValueError(f"unit.session.id {record.id!r} != unit.session_id {sid!r}")
            sql, getters = _update_plans.get(unit.changed) or _update_plan(unit.changed)
            params: list[Any] = []
            for get in getters:
                params += get(record)
            params.append(encode_ts(record.updated_at))
            params.append(sid)
            self.session_sql: str | None = sql
            self.session_params: list[Any] = params
        elif unit.changed:
            raise ValueError("unit.changed names fields but unit.session is None")
        else:
            self.session_sql = None
            self.session_params = []
        self.pr: PRWrite | None = None
        self.tracker_deletes: list[tuple[Any, ...]] | None = None
        self.tracker_upserts: list[tuple[Any, ...]] | None = None
        self.outbox: list[tuple[Any, ...]] | None = None
        pr = unit.pr
        if pr is None and not (unit.trackers_upsert or unit.trackers_delete or unit.outbox):
            return  # the common case: a session row only
        at = encode_ts(unit.at)
        if pr is not None and pr.fetched:
            self.pr = PRWrite(sid, pr, at)
        if unit.trackers_delete:
            self.tracker_deletes = [(sid, key) for key in unit.trackers_delete]
        if unit.trackers_upsert:
            self.tracker_upserts = [tracker_row(sid, tr) for tr in unit.trackers_upsert]
        if unit.outbox:
            self.outbox = [
                (
                    item.dedup_key,
                    item.session_id,
                    item.project_id,
                    str(item.action),
                    None if item.reaction is None else str(item.reaction),
                    item.event_type,
                    str(item.priority),
                    item.message,
                    at,
                    item.pr_url,
                    item.head_sha,
                )
                for item in unit.outbox
            ]

    def __call__(self, cur: sqlite3.Cursor) -> None:
        if self.session_sql is not None:
            cur.execute(self.session_sql, self.session_params)
            if cur.rowcount != 1:
                raise StoreError(f"session {self.session_id!r} does not exist")
        if self.pr is not None:
            self.pr(cur)
        if self.tracker_deletes is not None:
            cur.executemany(DELETE_TRACKER, self.tracker_deletes)
        if self.tracker_upserts is not None:
            cur.executemany(UPSERT_TRACKER, self.tracker_upserts)
        if self.outbox is not None:
            # The guarded insert skips a known dedup key without using up an id.
            cur.executemany(INSERT_OUTBOX, [(*row, row[0]) for row in self.outbox])

    @classmethod
    def apply_merged(cls, writes: Sequence[UnitWrite], cur: sqlite3.Cursor) -> None:
        """Apply units of distinct sessions with one ``executemany`` per statement: the
        same rows as applying them one by one, at a fraction of the per-call cost. Any
        error fails the whole merge (the writer then applies the units one by one)."""
        updates: dict[str, list[list[Any]]] = {}
        for w in writes:
            if w.session_sql is not None:
                updates.setdefault(w.session_sql, []).append(w.session_params)
        for sql, rows in updates.items():
            cur.executemany(sql, rows)
            if cur.rowcount != len(rows):
                raise StoreError("a session of the batch does not exist")
        for w in writes:
            if w.pr is not None:
                w.pr(cur)
        deletes = [
            row for w in writes if w.tracker_deletes is not None for row in w.tracker_deletes
        ]
        if deletes:
            cur.executemany(DELETE_TRACKER, deletes)
        upserts = [
            row for w in writes if w.tracker_upserts is not None for row in w.tracker_upserts
        ]
        if upserts:
            cur.executemany(UPSERT_TRACKER, upserts)
        outbox = [row for w in writes if w.outbox is not None for row in w.outbox]
        if outbox:
            # Optimistic: the engine never emits a dedup key twice, so a repeat is rare. A
            # skipped row would still have used up an AUTOINCREMENT id, so on any repeat the
            # whole merge is undone and the writer applies the units one by one, whose
            # guarded insert skips a known key without using an id.
            cur.executemany(INSERT_OUTBOX_UNGUARDED, outbox)
            if cur.rowcount != len(outbox):
                raise StoreError("a dedup key of the batch is already queued")


class Execute:
    """One statement as a writer op."""

    __slots__ = ("params", "sql")

    def __init__(self, sql: str, params: Sequence[Any]) -> None:
        self.sql = sql
        self.params = params

    def __call__(self, cur: sqlite3.Cursor) -> None:
        cur.execute(self.sql, self.params)


def pr_owned_error(url: str, owner: SessionId, observer: SessionId) -> ConflictError:
    """Why ``observer`` may not write ``url``: ``owner`` holds it and has not ended."""
    return ConflictError(
        f"PR {url} belongs to session {owner}, which is live: "
        f"claim it for {observer} to move it (orchestrator pr claim {observer} {url})"
    )


def notification_row(event: NotificationEvent | None, stamp: str) -> tuple[Any, ...] | None:
    if event is None:
        return None
    return (
        event.session_id,
        event.project_id,
        event.type,
        str(event.priority),
        event.message,
        stamp,
    )


def tracker_row(session_id: SessionId, tr: Tracker) -> tuple[Any, ...]:
    return (
        session_id,
        tr.key,
        str(tr.reaction),
        tr.attempts,
        encode_opt_ts(tr.first_at),
        int(tr.escalated),
        msgspec.json.encode(tr.seen).decode() if tr.seen else "[]",
    )
