"""The in-memory ETag store: bounded, least recently used out first, forgettable."""

from __future__ import annotations

from adapters.github.etags import LruETagStore
from orchestrator.ports import ETagStore


def test_validators_are_kept_per_key_and_forgotten_on_request() -> None:
    store: ETagStore = LruETagStore()
    store.put(("pulls", "acme/app"), 'W/"1"')
    store.put(("check-runs", "acme/app", "sha1"), 'W/"2"')
    assert store.get(("pulls", "acme/app")) == 'W/"1"'
    assert store.get(("pulls", "acme/other")) is None
    store.put(("pulls", "acme/app"), 'W/"3"')  # a rotated validator replaces the old
    assert store.get(("pulls", "acme/app")) == 'W/"3"'
    store.put(("pulls", "acme/app"), None)
    assert store.get(("pulls", "acme/app")) is None
    store.clear()  # the token changed
    assert store.get(("check-runs", "acme/app", "sha1")) is None


def test_the_least_recently_used_validator_goes_first() -> None:
    store = LruETagStore(capacity=2)
    store.put(("a",), "1")
    store.put(("b",), "2")
    assert store.get(("a",)) == "1"  # a is now the most recently used
    store.put(("c",), "3")
    assert len(store) == 2
    assert store.get(("b",)) is None
    assert (store.get(("a",)), store.get(("c",))) == ("1", "3")
