"""Reclaiming what terminated sessions leave behind: their panes and their worktrees.

A terminated session may still hold a pane (its agent exited with the pane kept open, or a
merged PR ended the session) and a worktree (a kill that found uncommitted work kept it).
``reclaim`` frees both for one session, or with ``dry_run`` says what it would free:

- the pane goes whenever our runtime still has it (its agent is gone; nothing is lost);
- the worktree goes only when removing it loses nothing (the workspace's own check:
  uncommitted changes, unreachable commits, a directory that is no worktree of ours);
  otherwise it is kept and the reason reported. The branch always stays.

``prune`` forgets the worktrees git still lists for a project whose directories are gone.
The session manager runs both under each session's turn (``SessionManager.cleanup``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from orchestrator.domain.errors import ConflictError, OrchestratorError
from orchestrator.domain.model import ProbeResult, ProjectId, SessionId, SessionRecord
from orchestrator.domain.records import Project
from orchestrator.ports import Runtime, RuntimeHandle, Workspace

__all__ = ["CleanupReport", "PruneResult", "Reclaimed", "prune", "reclaim"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """What cleanup did (or, in a dry run, would do) for one session: the pane and the
    worktree it removed ('' for none), and the worktree it kept with the reason (or just a
    reason, when freeing the session failed)."""

    session_id: SessionId
    pane: str = ""
    workspace: str = ""
    kept: str = ""
    reason: str = ""

    @property
    def anything(self) -> bool:
        return bool(self.pane or self.workspace or self.kept or self.reason)


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What ``git worktree prune`` reported for a project, or why it could not run."""

    project_id: ProjectId
    entries: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class CleanupReport:
    """A cleanup run: one entry per session it touched (or would), then the prunes."""

    dry_run: bool
    sessions: tuple[Reclaimed, ...] = ()
    pruned: tuple[PruneResult, ...] = ()


async def reclaim(
    record: SessionRecord, runtime: Runtime, workspace: Workspace, *, dry_run: bool
) -> Reclaimed:
    """Free (or say what would be freed of) a terminated session's pane and worktree.

    Raises only what the caller must see: a pane our runtime could not remove, a worktree
    git could not remove for a reason other than the work in it."""
    pane = await _reclaim_pane(record, runtime, dry_run=dry_run)
    path = record.metadata.workspace_path
    if not path:
        return Reclaimed(session_id=record.id, pane=pane)
    check = await workspace.removal_check(path)
    if not check.exists:
        return Reclaimed(session_id=record.id, pane=pane)
    if check.blocker:
        return Reclaimed(session_id=record.id, pane=pane, kept=path, reason=check.blocker)
    if not dry_run:
        try:
            await workspace.destroy(path)
        except ConflictError as error:  # work appeared since the check
            return Reclaimed(session_id=record.id, pane=pane, kept=path, reason=str(error))
    return Reclaimed(session_id=record.id, pane=pane, workspace=path)


async def _reclaim_pane(record: SessionRecord, runtime: Runtime, *, dry_run: bool) -> str:
    """The pane id removed (or that would be), '' when there is none of ours."""
    metadata = record.metadata
    if not metadata.runtime_handle_id or metadata.runtime_name not in ("", runtime.name):
        return ""
    handle = RuntimeHandle(id=metadata.runtime_handle_id, runtime_name=runtime.name)
    try:
        present = (await runtime.probe(handle)).runtime is not ProbeResult.DEAD
    except OrchestratorError as error:
        log.info(
            "cleanup %s: could not tell whether pane %s is there: %s", record.id, handle.id, error
        )
        present = True  # destroy is idempotent: try it
    if not present:
        return ""
    if not dry_run:
        await runtime.destroy(handle)
    return handle.id


async def prune(project: Project, workspace: Workspace, *, dry_run: bool) -> PruneResult:
    """Forget the project's worktrees whose directories are gone; a failure is reported in
    the result (the repository may have moved), not raised."""
    try:
        entries = await workspace.prune(project, dry_run=dry_run)
    except OrchestratorError as error:
        return PruneResult(project_id=project.id, error=str(error))
    return PruneResult(project_id=project.id, entries=tuple(entries))
