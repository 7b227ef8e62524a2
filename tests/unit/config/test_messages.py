"""Turning msgspec's and the domain's errors into messages that name the key the way the
user wrote it (orchestrator.config.messages), without a config file in between."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.config.messages import describe, explain, quote


class Inner(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    max_rows: int = 1
    names: list[str] = []


class Section(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    inner: Inner | None = None
    counts: dict[str, int] = {}


class Required(msgspec.Struct):
    path: str


def error_of(raw: object, kind: type) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(raw, kind)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "where", "message"),
    [
        ({"inner": {"maxRows": "x"}}, "store", "store.inner.maxRows: expected an integer, got a string"),
        ({"inner": "x"}, "store", "store.inner: expected a mapping, got a string"),
        ({"inner": {"names": [1]}}, "", "inner.names[0]: expected a string, got an integer"),
        ({"counts": {"a": "b"}}, "store", "store.counts: expected an integer, got a string"),
        ({"counts": {1: 2}}, "store", "store.counts: every key must be a string"),
        ({"inner": {"rows": 1}}, "store", "store.inner.rows: unknown key (known keys: maxRows, names)"),
        ({"bogus": 1}, "", "bogus: unknown key (known keys: inner, counts)"),
    ],
)  # fmt: skip
def test_a_msgspec_error_names_the_key_as_written(raw: object, where: str, message: str) -> None:
    assert explain(error_of(raw, Section), where, Section) == message


def test_a_missing_key_names_its_section() -> None:
    error = error_of({}, Required)
    assert explain(error, "projects.app", Required) == 'projects.app: missing required key "path"'
    assert explain(error, "", Required) == '(top level): missing required key "path"'


def test_an_unknown_key_without_a_struct_lists_no_keys() -> None:
    assert explain(error_of({"bogus": 1}, Section), "store") == "store.bogus: unknown key"


def test_an_unknown_reaction_field_lists_the_reaction_keys() -> None:
    error = ValueError("Object contains unknown field `threshold` - at `reactions.ci-failed`")
    assert explain(error, "reactions") == (
        "reactions.ci-failed.threshold: unknown key "
        "(known keys: auto, action, message, priority, retries, escalateAfter)"
    )


def test_a_hint_replaces_msgspec_words_for_known_keys() -> None:
    error = ValueError("Expected `array`, got `str` - at `$.mine.command`")
    assert explain(error, "agents") == "agents.mine.command: expected a list of strings"


def test_a_message_that_already_names_its_key_is_kept() -> None:
    error = ValueError('reactions.agent-idle.escalateAfter: "1h30" is not a duration')
    assert explain(error, "reactions") == str(error)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "nothing"),
        (True, "true or false"),
        ("x", "a string"),
        (3, "an integer"),
        (1.5, "a number"),
        ([1], "a list"),
        ({"a": 1}, "a mapping"),
        (b"x", "bytes"),
    ],
)
def test_describe_words_a_yaml_value(value: object, words: str) -> None:
    assert describe(value) == words


def test_quote_puts_strings_in_double_quotes_only() -> None:
    assert quote('say "hi"') == '"say \\"hi\\""'
    assert quote(5) == "5"
    assert quote(True) == "True"
