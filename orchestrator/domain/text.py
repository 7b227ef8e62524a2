"""Untrusted text made safe to show a human or type into a terminal.

Text from outside (CI logs, review comments, tool error output, agent messages) can carry
terminal escape sequences, control characters and bidirectional overrides. Shown in a
terminal, a desktop pop-up, a log line or pasted into an agent's pane, these can recolour
or hide text, move the cursor, set the window title, end a bracketed paste early, talk to
tmux (DCS passthrough), or make text read differently from how it is stored ("Trojan
Source"). ``clean_text`` removes all of them and leaves every other character alone.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["clean_strings", "clean_text"]

# Whole escape sequences go first, so their parameters do not survive as stray text:
# - CSI, 7-bit (ESC [) or 8-bit (U+009B): parameters, intermediates, one final byte;
# - OSC, up to BEL or ST; DCS, SOS, PM and APC up to ST, their body may hold doubled ESCs
#   (tmux passthrough). A body stops at the next ESC or C1 introducer, so an
#   unterminated one costs linear time, not quadratic;
# - any other escape: ESC, intermediates, one final byte (ESC c, ESC 7, ESC ( B ...).
_ESCAPE_SEQUENCE: Final = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x90\x98\x9c-\x9f]*(?:\x07|\x1b\\|\x9c)"
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])(?:[^\x1b\x90\x98\x9c-\x9f]|\x1b\x1b)*(?:\x1b\\|\x9c)"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]"
)

# Then every single character that is not text: C0 controls but tab and newline (so CR
# too: a carriage return never forges a line break, and CR LF becomes LF), DEL, the C1
# range, and the bidirectional embeddings, overrides and isolates.
_NOT_TEXT: Final = frozenset(
    (*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F))
).union(range(0x2066, 0x206A))
_DELETE: Final = dict.fromkeys(_NOT_TEXT)


def clean_text(text: str) -> str:
    """``text`` without escape sequences, control characters (newline and tab stay) and
    bidirectional overrides. Idempotent; text without any of those is returned as is."""
    return _ESCAPE_SEQUENCE.sub("", text).translate(_DELETE)


def clean_strings(value: object) -> Any:
    """``value`` (decoded JSON: dicts, lists, strings, numbers) with every string, keys
    included, passed through ``clean_text``."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_strings(item) for item in value]
    return value
