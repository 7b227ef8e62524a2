"""How the CLI shows things: ages, status colours, tables and the session detail grid."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from rich import box
from rich.table import Table
from rich.text import Text

from orchestrator.api import SessionOut
from orchestrator.cli.console import out, say, shown
from orchestrator.domain.model import Priority, SessionStatus
from orchestrator.domain.records import Notification, Project

STATUS_STYLES: Final = {
    SessionStatus.CI_FAILED: "red",
    SessionStatus.ERRORED: "bold red",
    SessionStatus.STUCK: "bold red",
    SessionStatus.NEEDS_INPUT: "bold yellow",
    SessionStatus.CHANGES_REQUESTED: "yellow",
    SessionStatus.DETECTING: "yellow",
    SessionStatus.APPROVED: "green",
    SessionStatus.MERGEABLE: "green",
    SessionStatus.MERGED: "green",
    SessionStatus.DONE: "green",
    SessionStatus.KILLED: "dim",
    SessionStatus.TERMINATED: "dim",
}
PRIORITY_STYLES: Final = {Priority.URGENT: "bold red", Priority.ACTION: "yellow"}


def ago(when: datetime, now: datetime | None = None) -> str:
    """``42s ago``, ``5m ago``, ``3h ago``, ``2d ago``; a future time as local date and time."""
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    if seconds < 0:
        return when.astimezone().strftime("%Y-%m-%d %H:%M")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def print_table(table: Table, empty: str) -> None:
    if table.row_count:
        out().print(table)
    else:
        say(empty, "dim")


def table(*columns: str) -> Table:
    grid = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def _status(session: SessionOut) -> Text:
    return shown(session.status.value, STATUS_STYLES.get(session.status, ""))


def _pr(session: SessionOut) -> str:
    return f"#{session.pr.number}" if session.pr.exists else "-"


def _agent(session: SessionOut) -> str:
    """The agent the session runs (recorded since migration 0002; else its harness)."""
    return session.metadata.agent or session.lifecycle.harness.value or "-"


def sessions_table(sessions: Iterable[SessionOut]) -> Table:
    rows = table("ID", "STATUS", "AGENT", "BRANCH", "PR", "UPDATED")
    for session in sessions:
        rows.add_row(
            shown(session.id),
            _status(session),
            shown(_agent(session)),
            shown(session.metadata.branch or "-"),
            shown(_pr(session)),
            shown(ago(session.updated_at)),
        )
    return rows


def projects_table(projects: Iterable[Project]) -> Table:
    rows = table("ID", "PATH", "NAME", "ORIGIN", "REGISTERED")
    for project in projects:
        rows.add_row(
            shown(project.id),
            shown(project.path),
            shown(project.display_name or "-"),
            shown(project.repo_origin_url or "-"),
            shown(ago(project.registered_at)),
        )
    return rows


def notifications_table(items: Iterable[Notification]) -> Table:
    rows = table("ID", "WHEN", "PRIORITY", "SESSION", "TYPE", "MESSAGE")
    for item in items:
        rows.add_row(
            shown(str(item.id)),
            shown(ago(item.created_at)),
            shown(item.priority.value, PRIORITY_STYLES.get(item.priority, "")),
            shown(item.session_id or item.project_id),
            shown(item.type),
            shown(item.message),
        )
    return rows


def _when(moment: datetime) -> str:
    return f"{moment.astimezone():%Y-%m-%d %H:%M:%S} ({ago(moment)})"


def show_session(session: SessionOut) -> None:
    """Every fact of one session, one ``key  value`` line each."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    life, meta, pr = session.lifecycle, session.metadata, session.pr
    activity = (
        f"{life.activity.state.value} ({ago(life.activity.last_activity_at)}, {life.activity.source.value})"
        if life.activity is not None
        else "-"
    )
    rows: list[tuple[str, str | Text]] = [
        ("id", session.id),
        ("project", session.project_id),
        ("status", _status(session)),
        (
            "state",
            life.state.value
            + (f" ({life.termination_reason.value})" if life.termination_reason else ""),
        ),
        ("alive", "yes" if life.is_alive else "no"),
        ("activity", activity),
        ("agent", _agent(session)),
        ("issue", session.issue_id or "-"),
        ("kind", session.kind.value),
        ("branch", meta.branch or "-"),
        ("workspace", meta.workspace_path or "-"),
        ("runtime", meta.runtime_handle_id or "-"),
        ("agent session", meta.agent_session_id or "-"),
    ]
    if pr.exists:
        state = (
            "merged" if pr.merged else "closed" if pr.closed else "draft" if pr.draft else "open"
        )
        rows += [
            ("pr", f"#{pr.number} {pr.url} ({state})"),
            ("ci", pr.ci.value),
            ("review", pr.review.value + (" (unresolved comments)" if pr.review_comments else "")),
            ("mergeability", pr.mergeability.value),
        ]
    else:
        rows.append(("pr", "-"))
    rows += [("created", _when(session.created_at)), ("updated", _when(session.updated_at))]
    for key, value in rows:
        grid.add_row(shown(key), value if isinstance(value, Text) else shown(value))
    out().print(grid)


__all__ = [
    "PRIORITY_STYLES",
    "STATUS_STYLES",
    "ago",
    "notifications_table",
    "print_table",
    "projects_table",
    "sessions_table",
    "show_session",
    "table",
]
