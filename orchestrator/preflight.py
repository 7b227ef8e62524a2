"""What would make a session command fail, found before the command changes anything.

A spawn that cannot work fails here, with a message saying what to do, before it takes a
session number or makes a row, a branch or a worktree: the agent's executable is missing,
the project's repository is missing, not a git work tree or has no commits yet, or the
branch asked for is invalid, used by a live session or already there. A restore that
cannot resume the agent's conversation says so here too.
"""

from __future__ import annotations

from typing import Final

from orchestrator.domain.errors import (
    ConflictError,
    DeliveryError,
    InvalidInputError,
    NotFoundError,
    OrchestratorError,
    OverloadedError,
    StoreError,
    TransientError,
)
from orchestrator.domain.model import SessionId, SessionRecord
from orchestrator.domain.records import Project
from orchestrator.ports import Agent, SessionStore, Workspace

__all__ = ["check_resumable", "check_spawn", "require_terminated", "with_context"]

# The error kinds callers act on; an adapter's own subclass is reported as its nearest one.
_PUBLIC_ERRORS: Final[tuple[type[OrchestratorError], ...]] = (
    NotFoundError,
    ConflictError,
    InvalidInputError,
    StoreError,
    OverloadedError,
    DeliveryError,
    TransientError,
)


def with_context(context: str, error: Exception) -> OrchestratorError:
    """``error`` re-raised as ``<context>: <error>``, keeping its public kind."""
    for kind in _PUBLIC_ERRORS:
        if isinstance(error, kind):
            return kind(f"{context}: {error}")
    return OrchestratorError(f"{context}: {error}")


async def check_spawn(
    store: SessionStore, workspace: Workspace, project: Project, agent: Agent, branch: str
) -> None:
    """Raise what would make a spawn of ``agent`` in ``project`` on ``branch`` ('' for the
    session's own) fail: ``InvalidInputError`` for a missing executable, an unusable
    repository or an invalid branch name, ``ConflictError`` for a branch already taken."""
    try:
        agent.check_installed()
    except Exception as error:
        raise with_context("spawn", error) from error
    try:
        await workspace.check_repository(project.path, require_commit=True)
    except Exception as error:
        raise with_context(f"spawn: project {project.id}", error) from error
    if not branch:
        return  # the session's own branch, named after an id never given out before
    for other in await store.list_sessions(project.id):
        if other.metadata.branch == branch and not other.lifecycle.state.is_terminal:
            raise ConflictError(
                f"spawn: branch {branch} is in use by live session {other.id}: "
                "choose another branch name"
            )
    try:
        await workspace.check_branch(project, branch)
    except Exception as error:
        raise with_context("spawn", error) from error


def check_resumable(session_id: SessionId, agent: Agent, agent_session_id: str) -> None:
    """``ConflictError`` saying why the agent's conversation cannot be resumed, and how to
    relaunch it instead."""
    why = agent.resume_unsupported()
    if not why and not agent_session_id:
        why = (
            f"no conversation id of agent {agent.name} is recorded (its hook never reported "
            "agentSessionId)"
        )
    if why:
        raise ConflictError(
            f"restore {session_id}: {why}; restore it fresh (--fresh) to relaunch the agent "
            "with its original prompt in a new conversation"
        )


def require_terminated(op: str, record: SessionRecord) -> None:
    """``ConflictError`` for a live session: ``op`` is only for terminated ones."""
    state = record.lifecycle.state
    if not state.is_terminal:
        raise ConflictError(
            f"{op} {record.id}: the session is live ({state}); kill it first "
            f"(`orchestrator kill {record.id}`)"
        )
