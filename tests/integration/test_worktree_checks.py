"""The git worktree workspace's checks, against real git: a project path that can hold
sessions, a branch a workspace can be made on, what removing a workspace would lose, and
pruning the metadata of worktrees whose directories are gone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.worktree import GitWorktreeWorkspace
from orchestrator.domain.errors import ConflictError, InvalidInputError
from orchestrator.domain.records import Project
from orchestrator.ports import RemovalCheck
from tests.integration.test_worktree import git, project, registered, root, workspace
from tests.tools import requires

pytestmark = requires("git")
__all__ = ["project", "root", "workspace"]  # fixtures, shared with test_worktree.py


async def test_a_usable_repository_passes(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    await workspace.check_repository(project.path, require_commit=True)
    await workspace.check_repository(str(Path(project.path) / "."), require_commit=True)


async def test_each_unusable_project_path_is_refused_with_what_to_do(
    workspace: GitWorktreeWorkspace, tmp_path: Path
) -> None:
    async def refusal(path: Path | str, *, require_commit: bool = True) -> str:
        with pytest.raises(InvalidInputError) as raised:
            await workspace.check_repository(str(path), require_commit=require_commit)
        return str(raised.value)

    assert await refusal(tmp_path / "nope") == f"project path {tmp_path / 'nope'} does not exist"
    assert await refusal("relative/repo") == "project path relative/repo is not absolute"
    file = tmp_path / "file.txt"
    file.write_text("x")
    assert await refusal(file) == f"project path {file} is not a directory"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert await refusal(plain) == (
        f"{plain} is not a git work tree: run `git init` there, or register the "
        "repository's checkout"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    await git(empty, "init", "-q", "-b", "main")
    assert await refusal(empty) == (f"repository {empty} has no commits yet: make a first commit")
    # Registering a project needs no commit yet; spawning in it does.
    await workspace.check_repository(str(empty), require_commit=False)
    bare = tmp_path / "bare.git"
    await git(tmp_path, "init", "-q", "--bare", str(bare))
    assert "is not a git work tree" in await refusal(bare, require_commit=False)


async def test_a_branch_must_be_valid_and_new(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    await workspace.check_branch(project, "feat/login")
    for bad in ("-x", "a..b", "has space", "end.lock", "feat/"):
        with pytest.raises(InvalidInputError, match="is not a valid branch name"):
            await workspace.check_branch(project, bad)
    with pytest.raises(ConflictError) as raised:
        await workspace.check_branch(project, "main")
    assert str(raised.value) == (
        f"branch main already exists in {project.path}: choose another branch name "
        "(or restore the session that used it)"
    )


async def test_removal_check_says_what_destroy_would_find_and_changes_nothing(
    workspace: GitWorktreeWorkspace, project: Project, root: Path
) -> None:
    info = await workspace.create(project, "proj-1")
    path = Path(info.path)
    assert await workspace.removal_check(info.path) == RemovalCheck(exists=True)
    (path / "notes.txt").write_text("half done\n")
    assert await workspace.removal_check(info.path) == RemovalCheck(
        exists=True,
        blocker=f"workspace {path}: it has uncommitted changes (notes.txt)",
    )
    assert (path / "notes.txt").read_text() == "half done\n"
    (path / "notes.txt").unlink()
    await workspace.destroy(info.path)
    assert await workspace.removal_check(info.path) == RemovalCheck(exists=False)
    with pytest.raises(InvalidInputError):
        await workspace.removal_check(project.path)  # not a workspace of ours
    stray = root / "proj" / "stray"
    stray.mkdir()
    (stray / "keep.txt").write_text("mine")
    check = await workspace.removal_check(str(stray))
    assert check.blocker == f"{stray}: it is not a git worktree"


async def test_prune_forgets_worktrees_whose_directories_are_gone(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    kept = await workspace.create(project, "proj-1")
    gone = await workspace.create(project, "proj-2")
    shutil.rmtree(gone.path)
    assert gone.path in await registered(project)

    would = await workspace.prune(project, dry_run=True)
    assert would == ["Removing worktrees/proj-2: gitdir file points to non-existent location"]
    assert gone.path in await registered(project)  # a dry run changes nothing

    assert await workspace.prune(project) == would
    assert gone.path not in await registered(project)
    assert kept.path in await registered(project)
    assert await workspace.prune(project) == []
