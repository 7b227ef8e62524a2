"""The reaction table in force: the defaults, and the user's overrides merged over them.

Users override per key with ``reactions.<key>: {auto, action, message, priority, retries,
escalateAfter}``, deep-merged over the defaults: writing only ``retries`` keeps every
other default of that key (docs/behaviour.md, "Reactions"). ``action: auto-merge`` is
accepted for ``approved-and-green`` only (off by default). Every default a reaction has
lives in ``DEFAULT_REACTIONS`` (its message in ``reaction_text``); the planner reads them
from the policy and never repeats them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Annotated, Final

import msgspec

from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import Priority, ReactionAction, ReactionKey
from orchestrator.domain.reaction_text import DEFAULT_MESSAGES


class ReactionConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The effective settings of one reaction key.

    ``retries``: for ``review-comments`` the nudges per PR before one escalation;
    for ``ci-failed`` the nudges before the brake, which trips when the last
    ``retries + 1`` runs of a check all failed. ``escalate_after``: how long an
    entry reaction may stay in its state before a human is paged.
    """

    auto: bool = True
    action: ReactionAction
    message: str
    priority: Priority
    retries: int | None = None
    escalate_after: timedelta | None = None


_15_MINUTES: Final = timedelta(minutes=15)
_APPROVED_AND_GREEN: Final = ReactionKey.APPROVED_AND_GREEN
_AUTO_MERGE: Final = ReactionAction.AUTO_MERGE

DEFAULT_REACTIONS: Final[Mapping[ReactionKey, ReactionConfig]] = MappingProxyType(
    {
        ReactionKey.CI_FAILED: ReactionConfig(
            action=ReactionAction.SEND_TO_AGENT,
            priority=Priority.ACTION,
            message=DEFAULT_MESSAGES[ReactionKey.CI_FAILED],
            retries=2,
        ),
        ReactionKey.REVIEW_COMMENTS: ReactionConfig(
            action=ReactionAction.SEND_TO_AGENT,
            priority=Priority.ACTION,
            message=DEFAULT_MESSAGES[ReactionKey.REVIEW_COMMENTS],
            retries=3,
        ),
        ReactionKey.MERGE_CONFLICTS: ReactionConfig(
            action=ReactionAction.SEND_TO_AGENT,
            priority=Priority.ACTION,
            message=DEFAULT_MESSAGES[ReactionKey.MERGE_CONFLICTS],
            escalate_after=_15_MINUTES,
        ),
        ReactionKey.AGENT_IDLE: ReactionConfig(
            action=ReactionAction.SEND_TO_AGENT,
            priority=Priority.INFO,
            message=DEFAULT_MESSAGES[ReactionKey.AGENT_IDLE],
            escalate_after=_15_MINUTES,
        ),
        ReactionKey.APPROVED_AND_GREEN: ReactionConfig(
            action=ReactionAction.NOTIFY,
            priority=Priority.ACTION,
            message=DEFAULT_MESSAGES[ReactionKey.APPROVED_AND_GREEN],
        ),
        ReactionKey.AGENT_STUCK: ReactionConfig(
            action=ReactionAction.NOTIFY,
            priority=Priority.URGENT,
            message=DEFAULT_MESSAGES[ReactionKey.AGENT_STUCK],
        ),
        ReactionKey.AGENT_NEEDS_INPUT: ReactionConfig(
            action=ReactionAction.NOTIFY,
            priority=Priority.URGENT,
            message=DEFAULT_MESSAGES[ReactionKey.AGENT_NEEDS_INPUT],
        ),
        ReactionKey.AGENT_EXITED: ReactionConfig(
            action=ReactionAction.NOTIFY,
            priority=Priority.URGENT,
            message=DEFAULT_MESSAGES[ReactionKey.AGENT_EXITED],
        ),
        ReactionKey.PR_CLOSED: ReactionConfig(
            action=ReactionAction.NOTIFY,
            priority=Priority.ACTION,
            message=DEFAULT_MESSAGES[ReactionKey.PR_CLOSED],
        ),
        ReactionKey.PR_MERGED: ReactionConfig(
            action=ReactionAction.NOTIFY,
            priority=Priority.INFO,
            message=DEFAULT_MESSAGES[ReactionKey.PR_MERGED],
        ),
    }
)


class ReactionPolicy(msgspec.Struct, frozen=True):
    """The reaction table in force: defaults with the user's overrides merged in."""

    reactions: Mapping[ReactionKey, ReactionConfig] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_REACTIONS)
    )

    def __getitem__(self, key: ReactionKey) -> ReactionConfig:
        return self.reactions[key]

    @property
    def auto_merges(self) -> bool:
        """Whether an approved and green PR is merged rather than reported."""
        config = self.reactions[_APPROVED_AND_GREEN]
        return config.auto and config.action is _AUTO_MERGE

    def retries(self, key: ReactionKey) -> int:
        """``key``'s retry budget; the default's when the user cleared it (``retries: null``).

        Raises ``ValueError`` for a key that has no budget at all."""
        retries = self.reactions[key].retries
        if retries is None:
            retries = DEFAULT_REACTIONS[key].retries
            if retries is None:
                raise ValueError(f"reaction {key} has no retries budget")
        return retries


# --- user configuration --------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", re.ASCII)
DURATION_HINT: Final = 'a duration like "90s", "15m", "1h30m" or "1d"'


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``1h30m``, ``1d`` (units in d, h, m, s order)."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not {DURATION_HINT}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if duration <= timedelta(0):
        raise ValueError(f"{text!r} must be longer than zero")
    return duration


class _Override(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"
):
    """What a user may write under ``reactions.<key>``; every field is optional."""

    auto: bool | msgspec.UnsetType = msgspec.UNSET
    action: ReactionAction | msgspec.UnsetType = msgspec.UNSET
    message: Annotated[str, msgspec.Meta(min_length=1)] | msgspec.UnsetType = msgspec.UNSET
    priority: Priority | msgspec.UnsetType = msgspec.UNSET
    retries: Annotated[int, msgspec.Meta(ge=0)] | msgspec.UnsetType | None = msgspec.UNSET
    escalate_after: str | msgspec.UnsetType | None = msgspec.UNSET


def load_reaction_policy(raw: object, *, where: str = "reactions") -> ReactionPolicy:
    """Validate the user's ``reactions`` mapping and deep-merge it over the defaults.

    Raises ``ConfigError`` naming the offending key, e.g. ``reactions.ci-failed.retries``.
    """
    if raw is None:
        return ReactionPolicy()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of reaction keys, got {type(raw).__name__}")
    merged = dict(DEFAULT_REACTIONS)
    known = ", ".join(k.value for k in ReactionKey)
    for name, value in raw.items():
        try:
            key = ReactionKey(name)
        except ValueError:
            raise ConfigError(
                f"{where}.{name}: unknown reaction (known reactions: {known})"
            ) from None
        merged[key] = _merge_override(key, merged[key], value, f"{where}.{key}")
    return ReactionPolicy(merged)


def _merge_override(
    key: ReactionKey, base: ReactionConfig, value: object, where: str
) -> ReactionConfig:
    if value is None:
        return base
    try:
        override = msgspec.convert(value, _Override)
    except msgspec.ValidationError as error:
        # msgspec says "... - at `$.retries`"; name the key the way the user wrote it.
        text = str(error).replace("`$.", f"`{where}.").replace("`$`", f"`{where}`")
        if "- at `" not in text:
            text = f"{text} - at `{where}`"
        raise ConfigError(text) from None
    if override.action is _AUTO_MERGE and key is not _APPROVED_AND_GREEN:
        raise ConfigError(
            f"{where}.action: expected {ReactionAction.SEND_TO_AGENT} or "
            f"{ReactionAction.NOTIFY} ({_AUTO_MERGE} is only for {_APPROVED_AND_GREEN})"
        )
    changes: dict[str, object] = {
        name: getattr(override, name)
        for name in ("auto", "action", "message", "priority", "retries")
        if getattr(override, name) is not msgspec.UNSET
    }
    if override.escalate_after is not msgspec.UNSET:
        if override.escalate_after is None:
            changes["escalate_after"] = None
        else:
            try:
                changes["escalate_after"] = parse_duration(override.escalate_after)
            except ValueError as error:
                raise ConfigError(f"{where}.escalateAfter: {error}") from None
    return msgspec.structs.replace(base, **changes)
