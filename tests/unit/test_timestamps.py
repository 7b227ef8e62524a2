"""The stored timestamp text: fixed width, UTC, text order = time order, naive refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.sqlite.tables import TS_WIDTH, decode_opt_ts, decode_ts, encode_opt_ts, encode_ts

aware = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ),
)


def test_the_format_is_fixed_width_utc_with_microseconds() -> None:
    assert encode_ts(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "2026-01-02 03:04:05.000000+00:00"
    )
    assert encode_ts(datetime(33, 1, 1, 0, 0, 0, 7, tzinfo=UTC)) == (
        "0033-01-01 00:00:00.000007+00:00"
    )
    berlin = timezone(timedelta(hours=1))
    assert encode_ts(datetime(2026, 1, 1, 0, 30, tzinfo=berlin)) == (
        "2025-12-31 23:30:00.000000+00:00"
    )


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        encode_ts(datetime(2026, 1, 1))


def test_decode_refuses_other_text() -> None:
    for text in ("2026-01-01", "2026-01-01 00:00:00+00:00", "2026-01-01 00:00:00.000000+01:00"):
        with pytest.raises(ValueError, match="not a stored timestamp"):
            decode_ts(text)


def test_optional_values() -> None:
    assert encode_opt_ts(None) is None
    assert decode_opt_ts(None) is None
    now = datetime(2026, 5, 5, tzinfo=UTC)
    assert decode_opt_ts(encode_opt_ts(now)) == now


def test_repeated_encoding_of_one_object_is_stable() -> None:
    a = datetime(2026, 1, 1, tzinfo=UTC)
    b = datetime(2027, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    assert [encode_ts(a), encode_ts(a), encode_ts(b), encode_ts(b), encode_ts(a)] == [
        "2026-01-01 00:00:00.000000+00:00",
        "2026-01-01 00:00:00.000000+00:00",
        "2026-12-31 22:00:00.000000+00:00",
        "2026-12-31 22:00:00.000000+00:00",
        "2026-01-01 00:00:00.000000+00:00",
    ]


@given(aware)
def test_round_trip_is_the_same_instant_in_utc(value: datetime) -> None:
    text = encode_ts(value)
    assert len(text) == TS_WIDTH
    decoded = decode_ts(text)
    assert decoded == value
    assert decoded.tzinfo is UTC


@given(aware, aware)
def test_text_order_is_time_order(a: datetime, b: datetime) -> None:
    assert (encode_ts(a) < encode_ts(b)) == (a < b)
    assert (encode_ts(a) == encode_ts(b)) == (a == b)


@given(st.lists(aware, min_size=1, max_size=20))
def test_encoding_agrees_with_the_standard_library(values: list[datetime]) -> None:
    # encode_ts caches by second and by identity; neither may leak into another value.
    for value in values + values[::-1]:
        assert encode_ts(value) == value.astimezone(UTC).isoformat(" ", "microseconds")
