"""Differential test: random sequences of writes leave MemoryStore and SqliteStore in the
same observable state (records, PR facts and their order, check history, comments,
trackers, outbox, notifications) with byte-identical change logs, and refuse the same
writes (a PR another live session owns) with the same error."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from adapters.sqlite.store import open_sqlite_store
from orchestrator.domain.errors import ConflictError
from orchestrator.domain.model import (
    Activity,
    CheckStatus,
    CIState,
    DetectingState,
    Lifecycle,
    PRComment,
    ReactionKey,
    ReviewDecision,
    SessionMetadata,
    SessionRecord,
)
from orchestrator.domain.records import CommitUnit, Tracker
from tests.contract.support import T0, ContractStore, check, observation, outbox_item, project
from tests.strategies import Vocabulary, models

SESSIONS = 3
URLS = ("https://x/pull/1", "https://x/pull/2", "https://x/pull/3")


@dataclass(frozen=True)
class Lifecycled:
    session: int
    lifecycle: Lifecycle


@dataclass(frozen=True)
class Metadata:
    session: int
    metadata: SessionMetadata


@dataclass(frozen=True)
class Observed:
    session: int
    url: int
    flags: tuple[bool, bool, bool]
    ci: CIState
    review: ReviewDecision
    checks: tuple[tuple[str, str, CheckStatus], ...]
    comments: tuple[tuple[str, bool], ...]
    via_commit: bool
    head_sha: str


@dataclass(frozen=True)
class Claimed:
    session: int
    url: int


@dataclass(frozen=True)
class Trackers:
    session: int
    upsert: tuple[tuple[str, ReactionKey, int], ...]
    delete: tuple[str, ...]


@dataclass(frozen=True)
class Queued:
    session: int
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Delivery:
    entry: int
    outcome: str  # "attempt", "delivered", "failed"
    notify: bool


lifecycles = models(
    Lifecycle,
    activity=st.none()
    | models(Activity, last_activity_at=st.integers(0, 5).map(lambda s: T0 + timedelta(seconds=s))),
    detecting=st.none()
    | models(
        DetectingState,
        attempts=st.integers(1, 3),
        started_at=st.just(T0),
        evidence_hash=st.sampled_from(["a", "b"]),
    ),
)
small_text = st.sampled_from(["", "x", "y", 'q"uote\n'])
operations = st.one_of(
    st.builds(Lifecycled, st.integers(0, SESSIONS - 1), lifecycles),
    st.builds(
        Metadata,
        st.integers(0, SESSIONS - 1),
        models(SessionMetadata, vocabulary=Vocabulary(texts=small_text)),
    ),
    st.builds(
        Observed,
        st.integers(0, SESSIONS - 1),
        st.integers(0, len(URLS) - 1),
        st.tuples(st.booleans(), st.booleans(), st.booleans()),
        st.sampled_from(CIState),
        st.sampled_from(ReviewDecision),
        st.lists(
            st.tuples(
                st.sampled_from(["ci", "lint"]),
                st.sampled_from(["c1", "c2", "c3"]),
                st.sampled_from(CheckStatus),
            ),
            max_size=3,
        ).map(tuple),
        st.lists(st.tuples(st.sampled_from(["m1", "m2", "m3"]), st.booleans()), max_size=3).map(
            tuple
        ),
        st.booleans(),
        st.sampled_from(["", "c1", "c2"]),
    ),
    st.builds(Claimed, st.integers(0, SESSIONS - 1), st.integers(0, len(URLS) - 1)),
    st.builds(
        Trackers,
        st.integers(0, SESSIONS - 1),
        st.lists(
            st.tuples(
                st.sampled_from(["entry", "ci:x", "review:x"]),
                st.sampled_from(ReactionKey),
                st.integers(0, 3),
            ),
            max_size=2,
        ).map(tuple),
        st.lists(st.sampled_from(["entry", "ci:x"]), max_size=2).map(tuple),
    ),
    st.builds(
        Queued,
        st.integers(0, SESSIONS - 1),
        st.lists(st.sampled_from(["k1", "k2", "k3", "k4"]), max_size=2).map(tuple),
    ),
    st.builds(
        Delivery,
        st.integers(1, 5),
        st.sampled_from(["attempt", "delivered", "failed"]),
        st.booleans(),
    ),
)
# Time advances by 0 or 1 s per step, so equal timestamps (and their tie-breaks) occur.
steps = st.lists(st.tuples(operations, st.integers(0, 1)), max_size=25)


def changed_fields(before: Lifecycle, after: Lifecycle) -> frozenset[str]:
    return frozenset(
        name
        for name in Lifecycle.__struct_fields__
        if getattr(before, name) != getattr(after, name)
    )


async def apply(
    store: ContractStore, records: list[SessionRecord], op: object, now: datetime
) -> None:
    match op:
        case Lifecycled(session=i, lifecycle=lc):
            old = records[i]
            new = msgspec.structs.replace(old, lifecycle=lc, updated_at=now)
            await store.commit(
                CommitUnit(
                    session_id=old.id,
                    at=now,
                    session=new,
                    changed=changed_fields(old.lifecycle, lc),
                )
            )
        case Metadata(session=i, metadata=meta):
            new = msgspec.structs.replace(records[i], metadata=meta, updated_at=now)
            await store.commit(
                CommitUnit(session_id=new.id, at=now, session=new, changed=frozenset({"metadata"}))
            )
        case Observed() as o:
            merged, closed, draft = o.flags
            obs = observation(
                URLS[o.url],
                number=o.url + 1,
                merged=merged,
                closed=closed,
                draft=draft,
                ci=o.ci,
                review=o.review,
                checks=tuple(check(commit, status, name=name) for name, commit, status in o.checks),
                comments=tuple(PRComment(id=cid, resolved=res) for cid, res in o.comments),
                head_sha=o.head_sha,
            )
            sid = records[o.session].id
            if o.via_commit:
                await store.commit(CommitUnit(session_id=sid, at=now, pr=obs))
            else:
                await store.write_pr_observation(sid, obs, now)
        case Claimed(session=i, url=url):
            await store.claim_pr(records[i].id, URLS[url], number=url + 1, now=now)
        case Trackers(session=i, upsert=upsert, delete=delete):
            trackers = {
                key: Tracker(key=key, reaction=reaction, attempts=n, first_at=now, seen=(key,))
                for key, reaction, n in upsert
            }
            await store.commit(
                CommitUnit(
                    session_id=records[i].id,
                    at=now,
                    trackers_upsert=tuple(trackers.values()),
                    trackers_delete=delete,
                )
            )
        case Queued(session=i, keys=keys):
            items = tuple(outbox_item(records[i], key, message=f"{key}@{now}") for key in keys)
            await store.commit(CommitUnit(session_id=records[i].id, at=now, outbox=items))
        case Delivery(entry=entry_id, outcome=outcome, notify=notify):
            entry = await store.get_outbox_entry(entry_id)
            event = None if entry is None or not notify else entry.item.event()
            if outcome == "attempt":
                await store.record_attempt(entry_id, error="later", next_attempt_at=now)
            elif outcome == "delivered":
                await store.mark_delivered(entry_id, at=now, notification=event)
            else:
                await store.mark_failed(entry_id, at=now, error="gone", notification=event)
        case _:
            raise AssertionError(op)


async def snapshot(store: ContractStore) -> dict[str, Any]:
    sessions = await store.list_sessions()
    state: dict[str, Any] = {
        "sessions": sessions,
        "changes": await store.changes_after(0, limit=10_000),
        "max_seq": await store.max_change_seq(),
        "outbox": await store.list_outbox(),
        "pending": await store.pending_outbox(now=T0 + timedelta(seconds=12), limit=100),
        "notifications": await store.list_notifications(limit=1000),
    }
    for record in sessions:
        state[f"facts {record.id}"] = await store.list_pr_facts(record.id)
        state[f"picked {record.id}"] = await store.pr_facts_for_session(record.id)
        state[f"trackers {record.id}"] = await store.list_trackers(record.id)
    for url in URLS:
        state[f"comments {url}"] = await store.list_pr_comments(url)
        state[f"checks {url}"] = await store.list_checks(url)
        for name in ("ci", "lint"):
            state[f"runs {url} {name}"] = await store.recent_check_runs(url, name, 2)
    return state


async def run(store: ContractStore, script: list[tuple[object, int]]) -> dict[str, Any]:
    await project(store, "mer")
    await project(store, "ao")
    for n in range(SESSIONS):
        await store.create_session("mer" if n % 2 == 0 else "ao", now=T0)
    now = T0
    refusals: list[tuple[int, str]] = []
    for n, (op, step) in enumerate(script):
        now += timedelta(seconds=step)
        records = await store.list_sessions()
        try:
            await apply(store, records, op, now)
        except ConflictError as error:  # a PR another live session owns, an ended claimer
            refusals.append((n, str(error)))
    return {**await snapshot(store), "refusals": refusals}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
async def test_memory_and_sqlite_agree_on_every_sequence(
    script: list[tuple[object, int]],
) -> None:
    expected = await run(MemoryStore(), script)
    with tempfile.TemporaryDirectory() as tmp:
        async with open_sqlite_store(Path(tmp) / "parity.db") as sqlite_store:
            actual = await run(sqlite_store, script)
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key] == expected[key], key
