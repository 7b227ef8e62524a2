"""The shared strategies cover every field of every domain struct, and fail loudly when
they cannot."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from orchestrator.domain.model import Lifecycle, SessionMetadata, SessionRecord
from orchestrator.domain.records import CommitUnit, OutboxEntry
from tests.strategies import DOMAIN_STRUCTS, STRATEGIES, Vocabulary, models

# Generation only: no shrinking (which is slow on nested structs), no example database.
DRAWS = settings(
    max_examples=60,
    phases=[Phase.generate],
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def test_every_domain_struct_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(DOMAIN_STRUCTS)
    # The discovery found the structs of both modules (and nested ones are among them).
    assert {Lifecycle, SessionRecord, CommitUnit, OutboxEntry} <= set(DOMAIN_STRUCTS)


@pytest.mark.parametrize("struct", DOMAIN_STRUCTS, ids=lambda s: s.__name__)
def test_every_field_of_every_domain_struct_varies(struct: type[Any]) -> None:
    """Each field takes more than one value over a run: it is generated, not left at a
    default (a new field with no rule fails when the strategy is built, see below)."""
    seen: dict[str, set[str]] = {name: set() for name in struct.__struct_fields__}

    @DRAWS
    @given(STRATEGIES[struct])
    def draw(value: Any) -> None:
        for name, values in seen.items():
            values.add(repr(getattr(value, name)))

    draw()
    constant = sorted(name for name, values in seen.items() if len(values) < 2)
    assert constant == []


def test_a_field_override_replaces_that_field_only() -> None:
    record = find(
        models(SessionRecord, issue_id=st.just("ISSUE-1")),
        lambda r: r.lifecycle.activity is not None and r.metadata.agent != "",
        settings=DRAWS,
    )
    assert record.issue_id == "ISSUE-1"


def test_a_vocabulary_applies_to_nested_fields() -> None:
    texts = st.sampled_from(["", "a"])
    strategy = models(SessionRecord, vocabulary=Vocabulary(texts=texts, max_items=0))
    record = find(strategy, lambda r: r.metadata.agent == "a", settings=DRAWS)
    for name in SessionMetadata.__struct_fields__:
        assert getattr(record.metadata, name) in ("", "a")
    unit = find(models(CommitUnit, vocabulary=Vocabulary(max_items=0)), lambda u: True)
    assert (unit.changed, unit.outbox) == (frozenset(), ())


def test_an_unknown_field_override_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Lifecycle has no field\(s\) \['status'\]"):
        models(Lifecycle, status=st.just("x"))


class Unsupported(msgspec.Struct, frozen=True):
    ratio: complex


def test_a_field_type_without_a_rule_is_an_error_not_a_default() -> None:
    with pytest.raises(TypeError, match=r"no strategy for Unsupported\.ratio"):
        models(Unsupported)
