"""The one terminal-text sanitiser: what it removes, what it keeps, and that it is stable."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from orchestrator.domain.text import clean_text

ESC = "\x1b"
BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


def is_forbidden(ch: str) -> bool:
    """What must never reach a terminal: controls but newline and tab, DEL, C1, bidi."""
    code = ord(ch)
    if ch in "\n\t":
        return False
    return code < 0x20 or 0x7F <= code <= 0x9F or ch in BIDI


# Text built from the characters that make up escape sequences, so they occur often.
escape_heavy = st.text(
    alphabet=st.sampled_from(
        [
            *(ESC, "\x9b", "\x9d", "\x90", "\x9c", "\x07", "[", "]", "P", "\\", ";", "0", "1"),
            *("m", "~", "(", "B", "\r", "\n", "\t", "a", " ", "\x00", "\x7f", "\u202e", "\u2066"),
        ]
    )
)
any_text = st.text() | escape_heavy
plain_text = st.text(alphabet=st.characters(exclude_categories=["Cc"])).filter(
    lambda t: not any(is_forbidden(ch) for ch in t)
)


@given(any_text)
@example(ESC + ESC + "[0m[31m")
@example("\x9b" + "\x9d" * 3)
def test_output_holds_no_control_escape_or_bidi_character(text: str) -> None:
    assert not any(is_forbidden(ch) for ch in clean_text(text))


@given(any_text)
def test_cleaning_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


@given(plain_text)
def test_plain_text_is_untouched(text: str) -> None:
    assert clean_text(text) == text


@given(any_text)
def test_cleaning_never_adds_a_line_break(text: str) -> None:
    assert clean_text(text).count("\n") <= text.count("\n")


@given(st.text().filter(lambda t: ESC not in t and not any("\x80" <= ch <= "\x9f" for ch in t)))
def test_without_escapes_only_the_forbidden_characters_go(text: str) -> None:
    assert clean_text(text) == "".join(ch for ch in text if not is_forbidden(ch))


def test_keeps_newlines_tabs_and_unicode() -> None:
    text = "fix:\n\tthe\ttest ✓ ünïcode 日本語 👩‍💻 e\u0301"
    assert clean_text(text) == text


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        pytest.param("\x1b[31mFAIL\x1b[0m x", "FAIL x", id="sgr-colour"),
        pytest.param("a\x1b[2J\x1b[1;1Hb", "ab", id="clear-and-move"),
        pytest.param("a\x1b[?2004lb", "ab", id="private-mode"),
        pytest.param("pasted\x1b[201~more", "pastedmore", id="end-of-bracketed-paste"),
        pytest.param("a\x9b31mb", "ab", id="8-bit-csi"),
        pytest.param("\x1b]0;owned\x07title", "title", id="osc-title-bel"),
        pytest.param(
            "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\", "click", id="osc-8-link"
        ),
        pytest.param("a\x9d0;t\x9cb", "ab", id="8-bit-osc-st"),
        pytest.param("a\x1bPtmux;\x1b\x1b]52;c;x\x07\x1b\\b", "ab", id="dcs-tmux-passthrough"),
        pytest.param("a\x1b_apc\x1b\\b\x1b^pm\x1b\\c\x1bXsos\x1b\\d", "abcd", id="apc-pm-sos"),
        pytest.param("a\x1bcb\x1b7c\x1b(Bd", "abcd", id="two-byte-escapes"),
        pytest.param("a\x1b]0;no end", "a0;no end", id="unterminated-osc-loses-its-introducer"),
        pytest.param("a\x1b", "a", id="trailing-esc"),
        pytest.param("a\x03b\x04c\x07d\x08e\x7ff\x00g", "abcdefg", id="c0-and-del"),
        pytest.param("a\x85b\x9fc", "abc", id="c1"),
        pytest.param("one\r\ntwo\r\n", "one\ntwo\n", id="crlf-becomes-lf"),
        pytest.param("ok\rFAKE", "okFAKE", id="lone-cr-is-no-line-break"),
        pytest.param("x = 1 \u202e// ;0 = x\u202c", "x = 1 // ;0 = x", id="bidi-override"),
        pytest.param("\u2066a\u2067b\u2068c\u2069", "abc", id="bidi-isolates"),
    ],
)
def test_removes(dirty: str, clean: str) -> None:
    assert clean_text(dirty) == clean


def test_long_runs_of_unterminated_introducers_stay_fast() -> None:
    # Untrusted text (a review comment) must not make the sanitiser quadratic.
    for introducer in (ESC + "]", "\x9d", ESC + "P"):
        assert clean_text(introducer * 50_000 + "x").endswith("x")
