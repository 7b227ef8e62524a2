"""The canonical text of an instant: ``YYYY-MM-DD HH:MM:SS.ffffff+00:00`` in UTC.

Fixed width, so text order is time order. The SQLite store writes every timestamp in this
form and reaction dedup keys embed it, so one function, built for the
hot path, serves both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_last_encoded: tuple[datetime | None, str] = (None, "")
_second_prefixes: dict[int, str] = {}  # seconds since the epoch -> "YYYY-MM-DD HH:MM:SS."


def utc_text(value: datetime) -> str:
    """``value`` as fixed-width UTC text. Raises ``ValueError`` for a naive datetime.

    This runs a few times per committed signal, so it is built for speed: everything up
    to the second comes from a small cache keyed by the second (subtracting the epoch is the
    cheapest exact conversion to UTC), leaving only the microseconds to format.
    One unit usually stamps several columns with the same ``datetime`` object, so the
    last result is also remembered by identity (the cache holds a reference, so the
    identity cannot be reused while cached)."""
    global _last_encoded
    last = _last_encoded
    if last[0] is value:
        return last[1]
    try:
        since_epoch = value - _EPOCH
    except TypeError:  # naive, or a tzinfo that gives no offset
        raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware") from None
    second = since_epoch.days * 86400 + since_epoch.seconds
    prefix = _second_prefixes.get(second)
    if prefix is None:
        prefix = _second_prefix(second)
    text = "%s%06d+00:00" % (prefix, since_epoch.microseconds)  # noqa: UP031 - fastest form
    _last_encoded = (value, text)
    return text


def _second_prefix(second: int) -> str:
    if len(_second_prefixes) >= 4096:  # clocks move forward: old seconds are rarely seen again
        _second_prefixes.clear()
    at = _EPOCH + timedelta(seconds=second)
    prefix = _second_prefixes[second] = "%04d-%02d-%02d %02d:%02d:%02d." % (  # noqa: UP031
        at.year,
        at.month,
        at.day,
        at.hour,
        at.minute,
        at.second,
    )
    return prefix
