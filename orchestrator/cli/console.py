"""Where the CLI writes: stdout for results, stderr for notes and errors.

Everything shown passes the one sanitiser (``clean_text``) first: names, messages, log
tails and errors come from agents, reviewers and CI, and an escape sequence or bidi override
in them must not recolour, hide or reorder what the user reads. Messages are printed as
plain ``Text``, never parsed as rich markup (a branch like
``fix/[x]`` stays), and soft-wrapped: rich inserts no line breaks of its own, so a long
path or id is never split mid-word and a message stays one line for ``grep`` and logs (the
terminal wraps it). Tables are the exception: they are laid out to the terminal's width.
"""

from __future__ import annotations

from typing import NoReturn

import msgspec
import typer
from rich.console import Console
from rich.text import Text

from orchestrator.domain.text import clean_text


def out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def shown(value: str, style: str = "") -> Text:
    """``value`` as rich ``Text``, sanitised: how every daemon-supplied string is printed."""
    return Text(clean_text(value), style=style)


def say(message: str, style: str = "") -> None:
    out().print(shown(message, style))


def note(message: str) -> None:
    err().print(shown(message, "yellow"))


ERROR_PREFIX = "error: "
"""How every error line starts, so ``start`` can tell a daemon's clean refusal in its log."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` to stderr and exit with ``code`` (1 runtime, 2 usage)."""
    err().print(Text(ERROR_PREFIX, style="bold red") + shown(message))
    raise typer.Exit(code)


def echo_json(value: object) -> None:
    typer.echo(msgspec.json.encode(value).decode())


__all__ = ["ERROR_PREFIX", "echo_json", "err", "fail", "note", "out", "say", "shown"]
