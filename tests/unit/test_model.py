"""The domain model: wire shape (msgspec JSON round-trips, camelCase), and its small helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain import model
from orchestrator.domain.model import (
    Activity,
    ActivityState,
    CIState,
    Lifecycle,
    Mergeability,
    Model,
    PRComment,
    PRFacts,
    PRObservation,
    PRState,
    ReactionKey,
    ReviewDecision,
    SessionMetadata,
    SessionState,
    SpawnOutcome,
    TerminationReason,
)
from tests.strategies import STRATEGIES as SHARED_STRATEGIES
from tests.strategies import models

T0 = datetime(2026, 5, 31, 12, tzinfo=UTC)

metadata = models(SessionMetadata)
spawn_outcomes = models(SpawnOutcome)

# One strategy per Struct in model.py; test_every_model_struct_has_a_strategy keeps it so.
STRATEGIES: dict[type[Model], st.SearchStrategy[Any]] = {
    struct: strategy
    for struct, strategy in SHARED_STRATEGIES.items()
    if struct.__module__ == model.__name__
}


def test_every_model_struct_has_a_strategy() -> None:
    structs = {
        value
        for value in vars(model).values()
        if isinstance(value, type)
        and issubclass(value, Model)
        and value is not Model
        and value.__module__ == model.__name__
    }
    assert structs == set(STRATEGIES)


@pytest.mark.parametrize("struct_type", list(STRATEGIES), ids=lambda t: t.__name__)
@given(data=st.data())
def test_json_round_trip(struct_type: type[Model], data: st.DataObject) -> None:
    value = data.draw(STRATEGIES[struct_type])
    decoded = msgspec.json.decode(msgspec.json.encode(value), type=struct_type)
    assert decoded == value


def test_wire_names_are_camel_case_and_enums_are_their_values() -> None:
    lc = Lifecycle(
        state=SessionState.TERMINATED,
        termination_reason=TerminationReason.RUNTIME_LOST,
        activity=Activity(state=ActivityState.ACTIVE, last_activity_at=T0),
        detecting=None,
    )
    assert msgspec.to_builtins(lc) == {
        "state": "terminated",
        "terminationReason": "runtime_lost",
        "isAlive": False,
        "activity": {
            "state": "active",
            "lastActivityAt": "2026-05-31T12:00:00Z",
            "source": "none",
        },
        "harness": "",
        "detecting": None,
    }


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="Object contains unknown field"):
        msgspec.json.decode(b'{"state":"working","bogus":1}', type=Lifecycle)


def test_off_enum_values_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="Invalid enum value"):
        msgspec.json.decode(b'{"terminationReason":"eaten_by_grue"}', type=Lifecycle)


def test_structs_are_frozen() -> None:
    lc = Lifecycle()
    with pytest.raises(AttributeError):
        lc.state = SessionState.WORKING  # type: ignore[misc]


# --- SessionMetadata.merged_with ----------------------------------------------------------


def test_merged_with_non_empty_incoming_wins_and_empty_never_clears() -> None:
    stored = SessionMetadata(branch="feat/a", workspace_path="/w/a", prompt="fix it")
    incoming = SessionMetadata(branch="feat/b", runtime_handle_id="%3", prompt="")
    assert stored.merged_with(incoming) == SessionMetadata(
        branch="feat/b", workspace_path="/w/a", runtime_handle_id="%3", prompt="fix it"
    )


@given(stored=metadata, incoming=metadata)
def test_merged_with_field_by_field(stored: SessionMetadata, incoming: SessionMetadata) -> None:
    merged = stored.merged_with(incoming)
    for name in SessionMetadata.__struct_fields__:
        expected = getattr(incoming, name) or getattr(stored, name)
        assert getattr(merged, name) == expected


@given(stored=metadata)
def test_merging_empty_metadata_changes_nothing(stored: SessionMetadata) -> None:
    assert stored.merged_with(SessionMetadata()) == stored
    assert SessionMetadata().merged_with(stored) == stored


@given(outcome=spawn_outcomes)
def test_spawn_outcome_metadata_copies_every_field(outcome: SpawnOutcome) -> None:
    produced = outcome.metadata()
    for name in SessionMetadata.__struct_fields__:
        assert getattr(produced, name) == getattr(outcome, name)


# --- PRObservation.state and facts() ------------------------------------------------------


@pytest.mark.parametrize(
    ("merged", "closed", "draft", "expected"),
    [
        (False, False, False, PRState.OPEN),
        (False, False, True, PRState.DRAFT),
        (False, True, False, PRState.CLOSED),
        (False, True, True, PRState.CLOSED),
        (True, False, False, PRState.MERGED),
        (True, False, True, PRState.MERGED),
        (True, True, False, PRState.MERGED),
        (True, True, True, PRState.MERGED),
    ],
    ids=str,
)
def test_pr_observation_state_collapses_merged_closed_draft_open(
    merged: bool, closed: bool, draft: bool, expected: PRState
) -> None:
    observation = PRObservation(url="u", merged=merged, closed=closed, draft=draft)
    assert observation.state is expected


def test_pr_observation_facts() -> None:
    observation = PRObservation(
        url="https://github.com/o/r/pull/7",
        number=7,
        draft=True,
        closed=True,
        ci=CIState.FAILING,
        review=ReviewDecision.CHANGES_REQUESTED,
        mergeability=Mergeability.CONFLICTING,
        comments=(PRComment(id="1", resolved=True), PRComment(id="2", resolved=False)),
    )
    assert observation.facts() == PRFacts(
        exists=True,
        url="https://github.com/o/r/pull/7",
        number=7,
        draft=False,
        merged=False,
        closed=True,
        ci=CIState.FAILING,
        review=ReviewDecision.CHANGES_REQUESTED,
        mergeability=Mergeability.CONFLICTING,
        review_comments=True,
    )


@pytest.mark.parametrize(
    ("comments", "expected"),
    [
        pytest.param((), False, id="none"),
        pytest.param((PRComment(id="1", resolved=True),), False, id="all-resolved"),
        pytest.param((PRComment(id="1"),), True, id="one-unresolved"),
    ],
)
def test_pr_facts_review_comments_means_any_unresolved(
    comments: tuple[PRComment, ...], expected: bool
) -> None:
    assert PRObservation(url="u", comments=comments).facts().review_comments is expected


@given(observation=STRATEGIES[PRObservation])
def test_pr_facts_flags_are_exclusive_and_match_state(observation: PRObservation) -> None:
    facts = observation.facts()
    assert facts.exists
    assert [facts.draft, facts.merged, facts.closed].count(True) <= 1
    assert facts.is_open is (observation.state in (PRState.OPEN, PRState.DRAFT))


# --- small enum and struct helpers --------------------------------------------------------


@pytest.mark.parametrize("state", list(SessionState), ids=str)
def test_is_terminal(state: SessionState) -> None:
    assert state.is_terminal is (state in (SessionState.DONE, SessionState.TERMINATED))


@pytest.mark.parametrize("state", list(ActivityState), ids=str)
def test_is_sticky(state: ActivityState) -> None:
    assert state.is_sticky is (state in (ActivityState.WAITING_INPUT, ActivityState.BLOCKED))


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(PRFacts(), False, id="no-pr"),
        pytest.param(PRFacts(exists=True), True, id="open"),
        pytest.param(PRFacts(exists=True, draft=True), True, id="draft"),
        pytest.param(PRFacts(exists=True, closed=True), False, id="closed"),
        pytest.param(PRFacts(exists=True, merged=True), False, id="merged"),
    ],
)
def test_pr_facts_is_open(facts: PRFacts, expected: bool) -> None:
    assert facts.is_open is expected


@pytest.mark.parametrize("key", list(ReactionKey), ids=str)
def test_reaction_event_type(key: ReactionKey) -> None:
    assert key.event_type == f"reaction.{key.value}"
