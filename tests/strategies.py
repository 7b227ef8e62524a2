"""Hypothesis strategies for every domain value, derived from the struct definitions.

``models(SessionRecord)`` draws every field of the struct, nested structs included, from
its type annotation, so a field added to a struct is generated without anyone touching the
tests (``tests/unit/test_strategies.py`` checks that every field of every domain struct
varies). A test narrows what it needs and nothing else:

- per field: ``models(PRObservation, url=st.just(PR_URL))``;
- per primitive type, for every field of that type, nested ones too:
  ``models(SessionMetadata, vocabulary=Vocabulary(texts=st.sampled_from(["", "a"])))``.

A field whose type has no rule here is an error when the strategy is built, never a field
silently left at its default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, TypeVar

import msgspec
from hypothesis import strategies as st

from orchestrator.domain import model, records
from orchestrator.domain.model import (
    Activity,
    ActivityState,
    AgentHarness,
    CheckStatus,
    CIState,
    DetectingState,
    Lifecycle,
    Mergeability,
    Model,
    PRCheck,
    PRComment,
    PRFacts,
    Priority,
    PRObservation,
    ReactionAction,
    ReactionKey,
    ReviewDecision,
    SessionState,
    TerminationReason,
    Trigger,
)
from orchestrator.domain.reaction_planner import ENTRY_TRACKER
from orchestrator.domain.reaction_policy import ReactionPolicy, load_reaction_policy
from orchestrator.domain.records import Tracker

__all__ = [
    "DEFAULT_VOCABULARY",
    "DOMAIN_STRUCTS",
    "STRATEGIES",
    "Vocabulary",
    "counts",
    "models",
    "planner_turns",
    "short_texts",
    "utc_datetimes",
]

S = TypeVar("S", bound=msgspec.Struct)

utc_datetimes: Final = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
short_texts: Final = st.text(max_size=16)
counts: Final = st.integers(min_value=0, max_value=2**31)


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """What each primitive field type is drawn from, and how long collections get."""

    texts: st.SearchStrategy[str] = short_texts
    integers: st.SearchStrategy[int] = counts
    datetimes: st.SearchStrategy[datetime] = utc_datetimes
    max_items: int = 3


DEFAULT_VOCABULARY: Final = Vocabulary()


def models(
    struct: type[S],
    /,
    *,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
    **fields: st.SearchStrategy[Any],
) -> st.SearchStrategy[S]:
    """Instances of ``struct`` with every field drawn; ``fields`` replace single fields'
    strategies (by Python field name), ``vocabulary`` the primitive ones throughout."""
    names = struct.__struct_fields__
    unknown = set(fields) - set(names)
    if unknown:
        raise TypeError(f"{struct.__name__} has no field(s) {sorted(unknown)}")
    hints = typing.get_type_hints(struct)
    drawn = {
        name: fields[name]
        if name in fields
        else _for_type(hints[name], vocabulary, f"{struct.__name__}.{name}")
        for name in names
    }
    return st.builds(struct, **drawn)


def _for_type(hint: Any, vocabulary: Vocabulary, where: str) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return st.one_of([_for_type(arg, vocabulary, where) for arg in args])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        items = _for_type(args[0], vocabulary, where)
        return st.lists(items, max_size=vocabulary.max_items).map(tuple)
    if origin is frozenset:
        items = _for_type(args[0], vocabulary, where)
        return st.frozensets(items, max_size=vocabulary.max_items)
    if origin in (dict, Mapping):
        keys, values = (_for_type(arg, vocabulary, where) for arg in args)
        return st.dictionaries(keys, values, max_size=vocabulary.max_items)
    if hint is type(None):
        return st.none()
    if hint is bool:  # before int: a bool field must not get integers
        return st.booleans()
    if hint is str:
        return vocabulary.texts
    if hint is int:
        return vocabulary.integers
    if hint is datetime:
        return vocabulary.datetimes
    if isinstance(hint, type) and issubclass(hint, Enum):
        return st.sampled_from(hint)
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return models(hint, vocabulary=vocabulary)
    raise TypeError(f"no strategy for {where}: {hint!r}; add a rule to tests/strategies.py")


def _structs_of(*modules: types.ModuleType) -> tuple[type[Model], ...]:
    return tuple(
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Model)
        and value is not Model
        and value.__module__ == module.__name__
    )


DOMAIN_STRUCTS: Final = _structs_of(model, records)
"""Every domain value: the ``Model`` structs defined in the model and records modules."""

STRATEGIES: Final[Mapping[type[Model], st.SearchStrategy[Any]]] = {
    struct: models(struct) for struct in DOMAIN_STRUCTS
}


# --- reaction planner turns ---------------------------------------------------------------
# Narrow vocabularies on purpose: trackers, observations, check histories and PR facts must
# often name the same PR, check and commit, or the planner's interesting branches never run.

# A few URLs and names, so trackers, observations and PR facts often refer to each other.
PLANNER_PR_URLS = ("https://github.com/acme/app/pull/1", "https://github.com/acme/app/pull/2")
PLANNER_CHECK_NAMES = ("test", "lint")

planner_datetimes = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
planner_urls = st.sampled_from(PLANNER_PR_URLS)
planner_short_texts = st.text(alphabet="abc", max_size=3)

planner_lifecycles = st.builds(
    Lifecycle,
    state=st.sampled_from(SessionState),
    termination_reason=st.sampled_from(TerminationReason),
    is_alive=st.booleans(),
    activity=st.none()
    | st.builds(Activity, state=st.sampled_from(ActivityState), last_activity_at=planner_datetimes),
    harness=st.sampled_from(AgentHarness),
    detecting=st.none()
    | st.builds(
        DetectingState,
        attempts=st.integers(1, 3),
        started_at=planner_datetimes,
        evidence_hash=planner_short_texts,
    ),
)

planner_pr_facts = st.builds(
    PRFacts,
    exists=st.booleans(),
    url=planner_urls,
    number=st.integers(0, 3),
    draft=st.booleans(),
    merged=st.booleans(),
    closed=st.booleans(),
    ci=st.sampled_from(CIState),
    review=st.sampled_from(ReviewDecision),
    mergeability=st.sampled_from(Mergeability),
    review_comments=st.booleans(),
)

planner_observations = st.builds(
    PRObservation,
    fetched=st.booleans(),
    url=planner_urls,
    merged=st.booleans(),
    closed=st.booleans(),
    ci=st.sampled_from(CIState),
    review=st.sampled_from(ReviewDecision),
    mergeability=st.sampled_from(Mergeability),
    head_sha=st.sampled_from(["", "abc"]),
    checks=st.lists(
        st.builds(
            PRCheck,
            name=st.sampled_from(PLANNER_CHECK_NAMES),
            commit=planner_short_texts,
            status=st.sampled_from(CheckStatus),
            log_tail=st.text(max_size=20),
        ),
        max_size=3,
    ).map(tuple),
    comments=st.lists(
        st.builds(
            PRComment,
            id=planner_short_texts,
            author=planner_short_texts,
            file=planner_short_texts,
            line=st.integers(0, 9),
            body=st.text(max_size=20),
            resolved=st.booleans(),
        ),
        max_size=3,
    ).map(tuple),
)

planner_check_histories = st.dictionaries(
    st.sampled_from(PLANNER_CHECK_NAMES),
    st.lists(st.sampled_from(CheckStatus), max_size=4),
    max_size=2,
)

planner_tracker_keys = st.sampled_from(
    [
        ENTRY_TRACKER,
        *(f"review:{url}" for url in PLANNER_PR_URLS),
        *(f"ci:{url}:{name}" for url in PLANNER_PR_URLS for name in PLANNER_CHECK_NAMES),
    ]
)


@st.composite
def planner_trackers(draw: st.DrawFn) -> dict[str, Tracker]:
    """Durable trackers as the store returns them: keyed by their own ``key``."""
    keys = draw(st.lists(planner_tracker_keys, max_size=4, unique=True))
    return {
        key: Tracker(
            key=key,
            reaction=draw(st.sampled_from(ReactionKey)),
            attempts=draw(st.integers(0, 4)),
            first_at=draw(st.none() | planner_datetimes),
            escalated=draw(st.booleans()),
            seen=tuple(draw(st.lists(planner_short_texts, max_size=3))),
        )
        for key in keys
    }


def planner_overrides(key: str) -> st.SearchStrategy[dict[str, Any]]:
    """What a user may write under ``reactions.<key>`` (``auto-merge`` for one key only)."""
    actions = [
        a.value
        for a in ReactionAction
        if a is not ReactionAction.AUTO_MERGE or key == ReactionKey.APPROVED_AND_GREEN
    ]
    return st.fixed_dictionaries(
        {},
        optional={
            "auto": st.booleans(),
            "action": st.sampled_from(actions),
            "message": st.text(min_size=1, max_size=10),
            "priority": st.sampled_from([p.value for p in Priority]),
            "retries": st.none() | st.integers(0, 4),
            "escalateAfter": st.none() | st.sampled_from(["90s", "15m", "1h30m"]),
        },
    )


planner_policies = st.one_of(
    st.just(ReactionPolicy()),
    st.lists(st.sampled_from([k.value for k in ReactionKey]), unique=True)
    .flatmap(lambda keys: st.fixed_dictionaries({k: planner_overrides(k) for k in keys}))
    .map(load_reaction_policy),
)


@st.composite
def planner_turns(draw: st.DrawFn) -> dict[str, Any]:
    """Every input ``plan_reactions`` takes. Half the time the PR facts are the ones the
    observation implies, as on the engine's PR turns; otherwise each is drawn on its own."""
    observation = draw(st.none() | planner_observations)
    coherent = observation is not None and draw(st.booleans())
    return {
        "session_id": draw(st.sampled_from(["app-1", "app-2"])),
        "project_id": "app",
        "trigger": draw(st.sampled_from(Trigger)),
        "before": draw(planner_lifecycles),
        "after": draw(planner_lifecycles),
        "pr": observation.facts() if coherent and observation else draw(planner_pr_facts),
        "observation": observation,
        "check_history": draw(planner_check_histories),
        "trackers": draw(planner_trackers()),
        "policy": draw(planner_policies),
        "now": draw(planner_datetimes),
    }
