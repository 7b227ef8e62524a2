"""Error messages that name the key the way the user wrote it.

msgspec says ``Expected `int`, got `str` - at `$.reaper.concurrency```; the user wrote
``reaper: {concurrency: many}`` and should read ``reaper.concurrency: expected an integer,
got a string``. ``explain`` does that rewriting; the other helpers word a YAML value.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from typing import Final

import msgspec

__all__ = ["REACTION_FIELDS", "describe", "explain", "quote"]

REACTION_FIELDS: Final = ("auto", "action", "message", "priority", "retries", "escalateAfter")
"""The keys of one reaction, listed for an unknown one (the domain's reaction loader
reports the unknown key without them)."""

# Friendlier words for a wrong value at (or inside) these keys.
_HINTS: Final = (
    (re.compile(r"agents\.[^.]+\.command(\[\d+\])?"), "expected a list of strings"),
    (re.compile(r"agents\.[^.]+\.restoreCommand(\[\d+\])?"), "expected a list of strings or null"),
    (
        re.compile(r"agents\.[^.]+\.env"),
        'expected a mapping of names to strings (quote numbers: PORT: "8080")',
    ),
    (re.compile(r"routing\.[a-z]+(\[\d+\])?"), "expected a list of notifier names"),
    (
        re.compile(r"reactions\.[^.]+\.action"),
        "expected send-to-agent or notify (or auto-merge, for approved-and-green)",
    ),
    (re.compile(r"reactions\.[^.]+\.priority"), "expected urgent, action or info"),
    (re.compile(r"scm\.github\.mergeMethod"), "expected merge, squash or rebase"),
)
_WORDS: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}
_INDEX: Final = re.compile(r"\[\d+\]$")
_NOUNS: Final = {"str": "string", "array": "list", "object": "mapping"}
_MSGSPEC_ERROR: Final = re.compile(
    r"(?P<what>.*?)(?: - at `(?P<where>[^`]*)`(?: in `(?P<outer>[^`]*)`)?)?", re.DOTALL
)


def explain(error: Exception, where: str, kind: type | None = None) -> str:
    """``error`` as ``<key path>: <what is wrong>``. ``where`` is the dotted path of the
    value that was converted (``""`` for the top level) and ``kind`` the struct it was
    converted to, so an unknown key can list the known ones. A message that already starts
    with ``where`` is returned as it is."""
    text = re.sub(r"'([^'\"]*)' (is not|must be)", r'"\1" \2', str(error))  # parse_duration
    match = _MSGSPEC_ERROR.fullmatch(text)
    if match is None or (match["where"] is None and where and text.startswith(where)):
        return text  # already names its key (load_reaction_policy's own messages)
    what: str = match["what"]
    path: str = match["outer"] or match["where"] or where
    if path.startswith("$"):
        path = where + path[1:]
    path = path.replace("[...]", "").strip(".")
    if match["outer"]:  # "- at `key` in `$.projects`": a key of the wrong type
        what = "every key must be a string"
    elif unknown := re.fullmatch(r"Object contains unknown field `(.+)`", what):
        known = _known_keys(kind, path[len(where) :].strip(".")) if kind is not None else ()
        if not known and re.fullmatch(r"reactions\.[^.]+", path):
            known = REACTION_FIELDS
        listed = f" (known keys: {', '.join(known)})" if known else ""
        return f"{_join(path, unknown[1])}: unknown key{listed}"
    elif missing := re.fullmatch(r"Object missing required field `(.+)`", what):
        return f'{path or "(top level)"}: missing required key "{missing[1]}"'
    elif what.startswith(("Expected", "Invalid enum value")):
        if "length" not in what:
            for pattern, hint in _HINTS:
                if pattern.fullmatch(path):
                    return f"{_INDEX.sub('', path)}: {hint}"
        what = re.sub(
            r"Expected `(\w+)` of length >= 1",
            lambda m: f"expected a non-empty {_NOUNS.get(m[1], m[1])}",
            what,
        )
        what = re.sub(r"Expected `([^`]+)`", lambda m: f"expected {_expected(m[1])}", what)
        what = re.sub(r"got `(\w+)`", lambda m: f"got {_WORDS.get(m[1], m[1])}", what)
        what = what.replace("Invalid enum value", "invalid value")
    return f"{path}: {what}" if path else what


def _known_keys(kind: type, path: str) -> tuple[str, ...]:
    """The keys (as written in the file) the struct at ``path`` (dotted, relative to
    ``kind``) accepts."""
    current: object = kind
    for token in path.split(".") if path else ():
        fields = msgspec.structs.fields(current) if isinstance(current, type) else ()
        field = next((f for f in fields if f.encode_name == token), None)
        if field is None:
            return ()
        options = typing.get_args(field.type) or (field.type,)
        current = next(
            (t for t in options if isinstance(t, type) and issubclass(t, msgspec.Struct)), None
        )
    if not (isinstance(current, type) and issubclass(current, msgspec.Struct)):
        return ()
    return tuple(f.encode_name for f in msgspec.structs.fields(current))


def _expected(types: str) -> str:
    """``object | null`` → ``a mapping`` (an empty section already means the defaults)."""
    names = [_WORDS.get(t, t) for t in types.split(" | ") if t != "null"] or ["nothing"]
    return " or ".join(names)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def describe(value: object) -> str:
    """What kind of YAML value ``value`` is, in the file's words: ``a list``, ``nothing``…"""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def quote(value: object) -> str:
    """A string in double quotes (JSON-escaped), anything else as Python prints it."""
    return msgspec.json.encode(value).decode() if isinstance(value, str) else str(value)
