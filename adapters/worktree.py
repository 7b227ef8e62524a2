"""Git worktree workspaces: one linked worktree per session, under a root the daemon owns.

Layout: ``<root_dir>/<project id>/<session id>``, on branch ``orchestrator/<session id>``
unless the caller names one. ``destroy`` never loses work: a worktree with untracked or
modified files, or a detached HEAD holding commits no ref points to, is refused with
``ConflictError`` and left as it is; the branch itself is never deleted, so committed work
stays reachable after the worktree is gone.

Git does not guard its worktree list against concurrent writers: two ``git worktree add``
at once in one repository fail each other (``failed to read worktrees/…/commondir``) and
leave the new branch behind. So every command that adds, removes, prunes or lists worktrees
holds the repository's lock: a ``trio.Lock`` per repository in this process, and an
``fcntl.flock`` on ``<git common dir>/orchestrator.lock`` for another daemon (or tool)
working on the same repository. A branch that a failed ``worktree add -b`` created, still
at the commit it was created from, is deleted again.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import trio

from adapters.process import ProcessResult, run_command
from orchestrator.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OrchestratorError,
)
from orchestrator.domain.model import SessionId
from orchestrator.domain.records import Project
from orchestrator.ports import RemovalCheck, WorkspaceInfo

__all__ = ["BRANCH_PREFIX", "GitCommandError", "GitWorktreeWorkspace", "validate_path_id"]

logger = logging.getLogger(__name__)

BRANCH_PREFIX: Final = "orchestrator/"
DEFAULT_GIT_TIMEOUT: Final = 60.0
LOCK_FILE: Final = "orchestrator.lock"
"""In the repository's git common dir: held while worktrees are added, removed or listed."""
_LOCK_RETRY: Final = 0.02
# Variables that would point git somewhere other than the directory given with -C.
_GIT_LOCATION_VARS: Final = frozenset(
    {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY"}
)


class GitCommandError(OrchestratorError):
    """A git command failed for a reason that is neither a conflict nor worth retrying."""


def validate_path_id(kind: str, value: str) -> str:
    """Return ``value`` if it is safe as one path component (no ``..``, ``/``, ``\\``)."""
    if (
        not value
        or value in {".", ".."}
        or ".." in value
        or "/" in value
        or "\\" in value
        or "\0" in value
        or value.startswith("-")
        or any(ch.isspace() or not ch.isprintable() for ch in value)
    ):
        raise InvalidInputError(f"{kind} {value!r} is not a safe path component")
    return value


def _try_flock(path: Path) -> int | None:
    """An open descriptor holding an exclusive ``flock`` on ``path``, or None when another
    process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


class _RepositoryLocks:
    """One lock per repository (keyed by its git common dir), dropped when nobody holds or
    waits for it; held, it also holds the repository's lock file against other processes."""

    def __init__(self) -> None:
        self._locks: dict[Path, tuple[trio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, common_dir: Path) -> AsyncIterator[None]:
        lock, users = self._locks.get(common_dir, (trio.Lock(), 0))
        self._locks[common_dir] = (lock, users + 1)
        try:
            async with lock:
                fd = await self._lock_file(common_dir / LOCK_FILE)
                try:
                    yield
                finally:
                    os.close(fd)  # releases the flock
        finally:
            lock, users = self._locks[common_dir]
            if users == 1:
                del self._locks[common_dir]
            else:
                self._locks[common_dir] = (lock, users - 1)

    @staticmethod
    async def _lock_file(path: Path) -> int:
        # Each try runs in a worker thread and never blocks there, so a cancelled wait leaves
        # no thread behind that could take the lock later and keep it.
        while True:
            fd = await trio.to_thread.run_sync(_try_flock, path)
            if fd is not None:
                return fd
            await trio.sleep(_LOCK_RETRY)


@dataclass(frozen=True, slots=True)
class _Worktree:
    path: Path
    branch: str  # short name; "" when detached
    prunable: bool


class GitWorktreeWorkspace:
    """``Workspace`` over ``git worktree``. ``root_dir`` holds every worktree it manages."""

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        *,
        git_binary: str = "git",
        command_timeout: float = DEFAULT_GIT_TIMEOUT,
    ) -> None:
        self.root_dir: Final = Path(root_dir).resolve()
        self._git = git_binary
        self._timeout = command_timeout
        env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
        # English messages (we match a few), no prompts, no optional index locks that could
        # contend with the agent's own git commands.
        env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
        self._env = env
        self._repo_locks = _RepositoryLocks()

    # --- Workspace -----------------------------------------------------------------------

    async def create(
        self, project: Project, session_id: SessionId, branch: str = ""
    ) -> WorkspaceInfo:
        path = self._path_for(project, session_id)
        branch = await self._check_branch(branch or BRANCH_PREFIX + session_id)
        repo = await self._repo_root(project)
        if await _non_empty(path):
            raise ConflictError(f"workspace path {path} already exists and is not empty")
        await trio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        async with self._repo_locks.hold(repo):
            await self._git_ok(repo, "worktree", "prune")
            result = await self._run(repo, "worktree", "add", "-b", branch, "--", str(path), "HEAD")
            if not result.ok:
                if "already exists" in result.stderr:
                    raise ConflictError(
                        f"cannot create workspace {path}: branch {branch} already exists "
                        "(restore the session to reuse it)"
                    )
                await self._delete_unused_new_branch(repo, branch)
                raise GitCommandError(f"git worktree add {path} failed: {result.stderr}")
        return WorkspaceInfo(path=str(path), branch=branch)

    async def restore(self, project: Project, session_id: SessionId, branch: str) -> WorkspaceInfo:
        path = self._path_for(project, session_id)
        branch = await self._check_branch(branch or BRANCH_PREFIX + session_id)
        repo = await self._repo_root(project)
        if not (
            await self._run(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        ).ok:
            raise NotFoundError(f"branch {branch} does not exist in {project.path}")

        async with self._repo_locks.hold(repo):
            return await self._restore_locked(repo, path, branch)

    async def _restore_locked(self, repo: Path, path: Path, branch: str) -> WorkspaceInfo:
        registered = {wt.path: wt for wt in await self._worktrees(repo)}.get(path)
        if registered is not None and not registered.prunable and await trio.Path(path).is_dir():
            if registered.branch != branch:
                raise ConflictError(
                    f"workspace {path} is registered on branch "
                    f"{registered.branch or '(detached HEAD)'}, not {branch}"
                )
            return WorkspaceInfo(path=str(path), branch=branch)
        if registered is None and await _non_empty(path):
            raise ConflictError(
                f"refusing to restore into {path}: it is not empty and not a registered worktree"
            )

        await trio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        await self._git_ok(repo, "worktree", "prune")
        result = await self._run(repo, "worktree", "add", "--", str(path), branch)
        if not result.ok:
            if (
                "already checked out" in result.stderr
                or "already used by worktree" in result.stderr
            ):
                raise ConflictError(f"branch {branch} is checked out in another worktree")
            raise GitCommandError(f"git worktree add {path} {branch} failed: {result.stderr}")
        return WorkspaceInfo(path=str(path), branch=branch)

    async def destroy(self, workspace_path: str) -> None:
        """Remove the worktree at ``workspace_path``; a path that is already gone is fine.

        Refuses (``ConflictError``, nothing deleted) when the worktree has untracked or
        modified files or unreachable commits, or when the directory is not a linked worktree.
        Refuses (``InvalidInputError``) any path that is not ``<root>/<project>/<session>``.
        """
        path = await self._managed_path(workspace_path)
        if not await trio.Path(path).exists():
            return
        common_dir, blocker = await self._removal(path)
        if blocker:
            raise ConflictError(f"refusing to delete {blocker}")
        if common_dir is None:
            await trio.Path(path).rmdir()  # an empty directory that never became a worktree
            return
        async with self._repo_locks.hold(common_dir):
            result = await self._run(common_dir, "worktree", "remove", "--", str(path))
            if not result.ok:
                if "modified or untracked" in result.stderr:
                    raise ConflictError(
                        f"refusing to delete workspace {path}: it has uncommitted changes"
                    )
                if "locked" in result.stderr or "submodule" in result.stderr:
                    raise ConflictError(f"refusing to delete workspace {path}: {result.stderr}")
                raise GitCommandError(f"git worktree remove {path} failed: {result.stderr}")
            await self._git_ok(common_dir, "worktree", "prune")

    async def removal_check(self, workspace_path: str) -> RemovalCheck:
        """What ``destroy`` would do, without doing it: whether anything is there, and
        what would make it refuse."""
        path = await self._managed_path(workspace_path)
        if not await trio.Path(path).exists():
            return RemovalCheck(exists=False)
        _, blocker = await self._removal(path)
        return RemovalCheck(exists=True, blocker=blocker)

    async def check_repository(self, path: str, *, require_commit: bool) -> None:
        """Refuse (``InvalidInputError``, saying what to do) a project path that cannot
        hold sessions: missing, not a directory, not inside a git work tree, or, with
        ``require_commit``, a repository without commits (a worktree needs one)."""
        where = trio.Path(path)
        if not where.is_absolute():
            raise InvalidInputError(f"project path {path} is not absolute")
        if not await where.exists():
            raise InvalidInputError(f"project path {path} does not exist")
        if not await where.is_dir():
            raise InvalidInputError(f"project path {path} is not a directory")
        inside = await self._run(Path(path), "rev-parse", "--is-inside-work-tree")
        if not inside.ok or inside.stdout.strip() != "true":
            raise InvalidInputError(
                f"{path} is not a git work tree: run `git init` there, or register "
                "the repository's checkout"
            )
        if (
            require_commit
            and not (
                await self._run(Path(path), "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
            ).ok
        ):
            raise InvalidInputError(f"repository {path} has no commits yet: make a first commit")

    async def check_branch(self, project: Project, branch: str) -> None:
        """Refuse a branch a new workspace could not be created on: an invalid name
        (``InvalidInputError``) or one that already exists (``ConflictError``)."""
        await self._check_branch(branch)
        repo = await self._repo_root(project)
        if (await self._run(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")).ok:
            raise ConflictError(
                f"branch {branch} already exists in {project.path}: choose another branch "
                "name (or restore the session that used it)"
            )

    async def prune(self, project: Project, *, dry_run: bool = False) -> list[str]:
        """``git worktree prune`` in the project's repository: forget worktrees whose
        directories are gone. Returns what git reported (or would, with ``dry_run``)."""
        repo = await self._repo_root(project)
        args = ("worktree", "prune", "--verbose", *(("--dry-run",) if dry_run else ()))
        async with self._repo_locks.hold(repo):
            result = await self._run(repo, *args)
        if not result.ok:
            raise GitCommandError(f"git worktree prune in {repo} failed: {result.stderr}")
        # git reports each pruned entry on stderr.
        return [line for line in result.stderr.splitlines() if line.strip()]

    # --- helpers -------------------------------------------------------------------------

    async def _removal(self, path: Path) -> tuple[Path | None, str]:
        """For an existing managed path: the repository's common dir (None for an empty
        directory that is no worktree, which may simply go) and why removing it would lose
        something or is not ours to do ('' when nothing stands in the way)."""
        info = await self._run(
            path,
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-dir",
            "--git-common-dir",
        )
        lines = info.stdout.splitlines()
        if not info.ok or len(lines) != 3 or await _resolved(lines[0]) != path:
            if not await _non_empty(path):
                return None, ""
            return None, f"{path}: it is not a git worktree"
        git_dir, common_dir = await _resolved(lines[1]), await _resolved(lines[2])
        if git_dir == common_dir:
            return common_dir, f"{path}: it is a main repository, not a worktree"

        status = await self._git_ok(path, "status", "--porcelain=v1", "--untracked-files=all")
        changed = [line[3:] for line in status.splitlines() if line]
        if changed:
            shown = ", ".join(changed[:5]) + (
                f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            )
            return common_dir, f"workspace {path}: it has uncommitted changes ({shown})"
        if not (await self._run(path, "symbolic-ref", "-q", "HEAD")).ok:
            reachable = await self._git_ok(
                path, "for-each-ref", "--count=1", "--contains", "HEAD", "--format=%(refname)"
            )
            if not reachable.strip():
                return common_dir, (
                    f"workspace {path}: its detached HEAD has commits that no branch or "
                    "tag contains"
                )
        return common_dir, ""

    def _path_for(self, project: Project, session_id: SessionId) -> Path:
        return (
            self.root_dir
            / validate_path_id("project id", project.id)
            / validate_path_id("session id", session_id)
        )

    async def _managed_path(self, workspace_path: str) -> Path:
        if not workspace_path:
            raise InvalidInputError("workspace path is empty")
        path = await _resolved(workspace_path)
        try:
            parts = path.relative_to(self.root_dir).parts
        except ValueError:
            parts = ()
        if len(parts) != 2:
            raise InvalidInputError(
                f"workspace path {workspace_path!r} is not a workspace under {self.root_dir}"
            )
        return path

    async def _check_branch(self, branch: str) -> str:
        if (
            branch.startswith("-")
            or not (await self._run(None, "check-ref-format", "--branch", branch)).ok
        ):
            raise InvalidInputError(f"{branch!r} is not a valid branch name")
        return branch

    async def _repo_root(self, project: Project) -> Path:
        result = await self._run(
            Path(project.path), "rev-parse", "--path-format=absolute", "--git-common-dir"
        )
        if not result.ok:
            raise InvalidInputError(
                f"project {project.id}: {project.path!r} is not a git repository"
            )
        return await _resolved(result.stdout.strip())

    async def _delete_unused_new_branch(self, repo: Path, branch: str) -> None:
        """After a failed ``worktree add -b``: delete ``branch`` if git made it anyway and it
        is still where it was made (HEAD), so nothing on it is lost. Best effort."""
        ref = f"refs/heads/{branch}"
        head = await self._run(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        tip = await self._run(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if not (head.ok and tip.ok) or head.stdout != tip.stdout:
            return
        in_use = any(wt.branch == branch for wt in await self._worktrees(repo))
        # update-ref deletes only if the branch still points where we saw it.
        if (
            not in_use
            and not (await self._run(repo, "update-ref", "-d", ref, tip.stdout.strip())).ok
        ):
            logger.warning("could not delete branch %s left by a failed worktree add", branch)

    async def _worktrees(self, repo: Path) -> list[_Worktree]:
        out = await self._git_ok(repo, "worktree", "list", "--porcelain")
        trees: list[_Worktree] = []
        for block in out.split("\n\n"):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                key, _, value = line.partition(" ")
                fields[key] = value
            if "worktree" not in fields:
                continue
            branch = fields.get("branch", "").removeprefix("refs/heads/")
            trees.append(
                _Worktree(await _resolved(fields["worktree"]), branch, "prunable" in fields)
            )
        return trees

    async def _git_ok(self, cwd: Path, *args: str) -> str:
        result = await self._run(cwd, *args)
        if not result.ok:
            raise GitCommandError(f"git {args[0]} in {cwd} failed: {result.stderr}")
        return result.stdout

    async def _run(self, cwd: Path | None, *args: str) -> ProcessResult:
        argv: Sequence[str] = [self._git, *(["-C", str(cwd)] if cwd else []), *args]
        return await run_command(
            argv, program="git", what=f"git {args[0]}", time_limit=self._timeout, env=self._env
        )


async def _resolved(path: str) -> Path:
    return Path(await trio.Path(path).resolve())


async def _non_empty(path: Path) -> bool:
    """Whether ``path`` exists as anything but an empty directory."""
    p = trio.Path(path)
    if not await p.exists():
        return await p.is_symlink()  # a dangling link is still something there
    if await p.is_symlink() or not await p.is_dir():
        return True
    return bool(await trio.to_thread.run_sync(os.listdir, path))
