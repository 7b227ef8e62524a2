"""Where the CLI writes: stdout for results, stderr for notes and errors. Messages are
printed as plain ``Text``, never parsed as rich markup (a branch like ``fix/[x]`` stays)."""

from __future__ import annotations

from typing import NoReturn

import msgspec
import typer
from rich.console import Console
from rich.text import Text


def out() -> Console:
    return Console(highlight=False, soft_wrap=False)


def err() -> Console:
    return Console(stderr=True, highlight=False)


def say(message: str, style: str = "") -> None:
    out().print(Text(message, style=style))


def note(message: str) -> None:
    err().print(Text(message, style="yellow"))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` to stderr and exit with ``code`` (1 runtime, 2 usage)."""
    err().print(Text("error: ", style="bold red") + Text(message))
    raise typer.Exit(code)


def echo_json(value: object) -> None:
    typer.echo(msgspec.json.encode(value).decode())


__all__ = ["echo_json", "err", "fail", "note", "out", "say"]
