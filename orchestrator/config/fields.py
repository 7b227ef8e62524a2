"""The building blocks of the config loader's strict structs and the checks every section
uses: what a key the file leaves out is (UNSET, so the schema's default applies), and
durations written like ``90s``, checked with a message that shows the format."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from orchestrator.config.messages import quote
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.reactions import DURATION_HINT, parse_duration

__all__ = ["NonEmpty", "Strict", "duration", "given"]


class Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Unknown keys are errors, keys are camelCase, a key left out is UNSET."""


NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


def given(**values: object) -> dict[str, Any]:
    """The values the file set, as keyword arguments: the rest keep the schema's defaults."""
    return {name: value for name, value in values.items() if value is not UNSET}


def duration(raw: object, where: str) -> timedelta | UnsetType:
    if raw is UNSET:
        return UNSET
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: {quote(raw)} is not {DURATION_HINT}")
    try:
        return parse_duration(raw)
    except ValueError:
        if raw.strip() and re.fullmatch(r"[0dhms]+", raw.strip()):
            raise ConfigError(f"{where}: {quote(raw)} must be longer than zero") from None
        raise ConfigError(f"{where}: {quote(raw)} is not {DURATION_HINT}") from None
