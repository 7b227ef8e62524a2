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
from orchestrator.domain.model import Model

__all__ = [
    "DEFAULT_VOCABULARY",
    "DOMAIN_STRUCTS",
    "STRATEGIES",
    "Vocabulary",
    "counts",
    "models",
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
