"""CI log tails: cleaned line by line, bounded in lines and bytes however large the log,
and the same whichever way the log arrives in chunks."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.model import CheckStatus
from orchestrator.domain.scm import CheckKind, SCMCheck
from orchestrator.domain.scm_rules import LogTail, clean_log_line, log_unavailable, wants_log_tail

FAILED_ACTIONS_RUN = SCMCheck(
    name="test",
    commit="sha1",
    status=CheckStatus.FAILED,
    conclusion="failure",
    provider_id=77,
    app="github-actions",
)


def test_only_a_finished_failed_actions_run_has_a_log_worth_fetching() -> None:
    assert wants_log_tail(FAILED_ACTIONS_RUN)


@pytest.mark.parametrize(
    "change",
    [
        {"status": CheckStatus.PASSED, "conclusion": "success"},
        {"status": CheckStatus.IN_PROGRESS, "conclusion": None},
        {"app": "circleci-checks"},  # another app's check run has no job behind it
        {"app": None},
        {"provider_id": None},
        {"kind": CheckKind.STATUS},
    ],
)
def test_no_log_tail_for_other_checks(change: dict[str, object]) -> None:
    assert not wants_log_tail(msgspec.structs.replace(FAILED_ACTIONS_RUN, **change))


def tail_of(text: bytes, **limits: int) -> str:
    tail = LogTail(**limits)
    tail.feed(text)
    return tail.text()


def test_a_log_line_loses_its_timestamp_colours_and_control_characters() -> None:
    raw = "\ufeff2026-03-01T12:00:00.1234567Z \x1b[31mError:\x1b[0m boom\x07"
    assert clean_log_line(raw) == "Error: boom"
    assert clean_log_line("2026-03-01T12:00:00Z plain") == "plain"
    assert clean_log_line("progress 10%\rprogress 100%\r") == "progress 100%"
    assert clean_log_line("\ttabs stay") == "\ttabs stay"


def test_the_tail_keeps_the_last_lines_of_a_huge_log() -> None:
    tail = LogTail(max_lines=3, max_bytes=1000)
    for i in range(100_000):
        tail.feed(f"2026-03-01T12:00:00.0000000Z line {i}\n".encode())
    assert tail.text() == "line 99997\nline 99998\nline 99999"


def test_the_tail_is_bounded_in_bytes_at_a_line_boundary() -> None:
    text = b"".join(b"%d %s\n" % (i, b"x" * 30) for i in range(10))
    tail = tail_of(text, max_lines=10, max_bytes=100)
    assert len(tail.encode()) <= 100
    assert tail.splitlines()[0] == "7 " + "x" * 30  # three whole lines fit in 100 bytes
    assert tail.endswith("9 " + "x" * 30)


def test_one_enormous_line_keeps_its_end() -> None:
    tail = tail_of(b"a" * 100_000 + b"THE END", max_lines=5, max_bytes=64)
    assert tail.endswith("THE END")
    assert len(tail.encode()) <= 64


def test_a_garbled_log_still_gives_clean_text() -> None:
    tail = tail_of(b"ok\n\xff\xfe broken \x00\x1b[1mbold\x1b[0m\n\xe2\x82", max_lines=5)
    assert tail.splitlines()[0] == "ok"
    assert "broken" in tail
    assert "bold" in tail
    assert "\x00" not in tail
    assert "\x1b" not in tail


@given(
    st.binary(max_size=2000),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=16, max_value=400),
)
def test_the_tail_is_clean_bounded_and_independent_of_chunking(
    data: bytes, cuts: list[int], lines: int, max_bytes: int
) -> None:
    whole = tail_of(data, max_lines=lines, max_bytes=max_bytes)
    pieces = LogTail(max_lines=lines, max_bytes=max_bytes)
    start = 0
    for cut in sorted(cuts):
        pieces.feed(data[start:cut])
        start = max(start, cut)
    pieces.feed(data[start:])
    assert pieces.text() == whole
    assert len(whole.encode()) <= max_bytes
    assert len(whole.split("\n")) <= lines
    assert not any(ord(c) < 32 and c not in "\n\t" for c in whole)
    assert "\x1b" not in whole


def test_an_unavailable_log_is_one_short_line() -> None:
    note = log_unavailable("GET /logs: 404\nNot Found\x1b[0m")
    assert note == "log unavailable: GET /logs: 404 Not Found"
    assert "\n" not in log_unavailable("x\n" * 500)
    assert len(log_unavailable("x" * 1000)) < 250
