"""``events`` (the change stream over Server-Sent Events) and ``notifications``.

``events`` without ``--follow`` prints what is already there and stops: at the seq the
daemon names in ``X-Orchestrator-Head-Seq`` when the stream opens. A daemon that does not
name one (an older version) is read until the first event created after the command
started. Either way it also stops after ``IDLE_END`` seconds without an event, which ends a
project-filtered listing whose last event is older than the head. A subscriber that fell
behind gets a ``resync`` event and reconnects after the last seq it printed. When the
daemon cannot continue after ``--since`` (those events were trimmed, or the seq is beyond
its head after a database reset) it says so in a first ``resync`` event: one line on stderr
tells the user, and the listing goes on from where the daemon can.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated

import httpx
import msgspec
import typer
from rich.text import Text

from orchestrator.api import HEAD_SEQ_HEADER, RESYNC_EVENT, EventOut, ResyncOut, ResyncReason
from orchestrator.cli.client import Client, connect, decode
from orchestrator.cli.console import echo_json, err, note, out
from orchestrator.cli.narrate import EventNarrator
from orchestrator.cli.options import DataDirOption, JsonFlag
from orchestrator.cli.render import notifications_table, print_table
from orchestrator.domain.records import Notification

IDLE_END = 1.5
"""Seconds without an event after which ``events`` (without ``--follow``) is caught up."""


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) for each Server-Sent Event; comments (keep-alives) are skipped."""
    event, data = "", list[str]()
    for line in lines:
        if not line:
            if data or event:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value


def _head(response: httpx.Response) -> int | None:
    value = response.headers.get(HEAD_SEQ_HEADER, "")
    return int(value) if value.strip().isdigit() else None


def discontinuity(since: int, resync: ResyncOut) -> str:
    """The one line that tells the user what a ``resync`` at the start of a replay means."""
    if resync.reason is ResyncReason.AHEAD:
        return (
            f"the daemon's change log ends at seq {resync.head_seq}, before seq {since} "
            "(was its database reset?): listing it from the start"
        )
    if resync.oldest_seq:
        kept = f"it keeps seq {resync.oldest_seq} to {resync.head_seq}"
    else:
        kept = f"it keeps none up to seq {resync.head_seq}"
    return (
        f"events {since + 1} to {resync.last_seq} are no longer kept by the daemon ({kept}): "
        f"listing from seq {resync.last_seq + 1}"
    )


def tell_discontinuity(since: int, resync: ResyncOut) -> None:
    """``discontinuity`` on stderr in one line, however narrow the terminal."""
    err().print(Text(discontinuity(since, resync), style="yellow"), soft_wrap=True)


def stream_events(
    client: Client,
    *,
    since: int | None,
    follow: bool,
    project: str | None,
    emit: Callable[[EventOut], None],
) -> None:
    """Emit events after ``since`` (None: only new ones). Without ``follow`` it stops at
    the head (see the module doc)."""
    started = datetime.now(UTC)
    head: int | None = None
    while True:  # one pass per connection; a resync reconnects after the last seq seen
        resync: ResyncOut | None = None
        params: dict[str, str | int | None] = {"since": since, "project": project}
        try:
            with client.stream("/events", params, None if follow else IDLE_END) as response:
                if head is None and not follow:
                    head = _head(response)
                if head is not None and (since or 0) == head:
                    return  # caught up (a seq beyond the head gets a resync first)
                for kind, data in sse_events(response.iter_lines()):
                    if kind == RESYNC_EVENT:
                        resync = decode(data.encode(), ResyncOut) if data else ResyncOut(last_seq=0)
                        if resync.reason is ResyncReason.LAGGED:
                            break  # the stream closes: reconnect after the last seq seen
                        tell_discontinuity(since or 0, resync)
                        since, resync = resync.last_seq, None
                        if head is not None and since >= head:
                            return
                        continue
                    event = decode(data.encode(), EventOut)
                    if not follow and (
                        event.created_at > started if head is None else event.seq > head
                    ):
                        return  # live from here on: what was there is printed
                    since = max(since or 0, event.seq)
                    emit(event)
                    if head is not None and since >= head:
                        return
        except httpx.ReadTimeout:
            return  # no --follow and quiet: caught up
        if resync is None:
            if follow:
                note("the daemon ended the event stream (is it stopping?)")
            return
        since = max(since or 0, resync.last_seq)


def events(
    *,
    since: Annotated[
        int | None,
        typer.Option(
            "--since",
            help="Start after this event seq (default: from the start; with --follow, only new events).",
            min=0,
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming new events.")
    ] = False,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project's events.")
    ] = None,
    as_json: JsonFlag = False,
    data_dir: DataDirOption = None,
) -> None:
    """Print the change stream, one line per event saying what changed (--json: the raw
    events, one JSON object per line)."""
    console, narrator = out(), EventNarrator()

    def emit(event: EventOut) -> None:
        if as_json:
            typer.echo(msgspec.json.encode(event).decode())
        else:  # one line each, cut to the terminal's width
            console.print(narrator.line(event), no_wrap=True, overflow="ellipsis")

    if since is None and not follow:
        since = 0
    with connect(data_dir) as client:
        try:
            stream_events(client, since=since, follow=follow, project=project, emit=emit)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


def notifications(
    *,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project's.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="At most this many, newest first.", min=1)
    ] = None,
    as_json: JsonFlag = False,
    data_dir: DataDirOption = None,
) -> None:
    """List what the daemon told the humans (pages, nudges that fell back, merges)."""
    with connect(data_dir) as client:
        items = client.call(
            "GET", "/notifications", list[Notification], params={"project": project, "limit": limit}
        )
    if as_json:
        echo_json(items)
        return
    print_table(notifications_table(items), "no notifications")


__all__ = [
    "IDLE_END",
    "discontinuity",
    "events",
    "notifications",
    "sse_events",
    "stream_events",
]
