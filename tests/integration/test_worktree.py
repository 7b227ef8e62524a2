"""Git worktree workspaces against a real git repository in a temp directory."""

from __future__ import annotations

import fcntl
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from adapters.worktree import LOCK_FILE, GitCommandError, GitWorktreeWorkspace
from orchestrator.domain.errors import ConflictError, InvalidInputError, NotFoundError
from orchestrator.domain.records import Project
from orchestrator.ports import WorkspaceInfo
from tests.tools import requires

pytestmark = requires("git")

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


async def git(cwd: Path, *args: str) -> str:
    result = await trio.run_process(
        ["git", "-C", str(cwd), *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=GIT_ENV,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


@pytest.fixture
async def project(tmp_path: Path) -> Project:
    repo = tmp_path / "repo"
    repo.mkdir()
    await git(repo, "init", "-q", "-b", "main")
    await git(repo, "config", "user.name", "Test")
    await git(repo, "config", "user.email", "test@example.invalid")
    (repo / "README.md").write_text("hello\n")
    await git(repo, "add", "README.md")
    await git(repo, "commit", "-q", "-m", "initial")
    return Project(id="proj", path=str(repo), registered_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return (tmp_path / "worktrees").resolve()


@pytest.fixture
def workspace(root: Path) -> GitWorktreeWorkspace:
    return GitWorktreeWorkspace(root)


async def exists(path: Path | str) -> bool:
    return await trio.Path(path).exists()


async def registered(project: Project) -> list[str]:
    out = await git(Path(project.path), "worktree", "list", "--porcelain")
    return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]


async def branches(project: Project) -> list[str]:
    out = await git(Path(project.path), "branch", "--format=%(refname:short)")
    return out.split()


async def commit_file(path: Path, name: str, text: str) -> None:
    (path / name).write_text(text)
    await git(path, "add", name)
    await git(path, "commit", "-q", "-m", f"add {name}")


async def test_create_makes_a_worktree_on_a_session_branch(
    workspace: GitWorktreeWorkspace, project: Project, root: Path
) -> None:
    info = await workspace.create(project, "proj-1")
    path = root / "proj" / "proj-1"
    assert info == WorkspaceInfo(path=str(path), branch="orchestrator/proj-1")
    assert (path / "README.md").read_text() == "hello\n"
    assert str(path) in await registered(project)
    assert (await git(path, "branch", "--show-current")).strip() == "orchestrator/proj-1"
    main_head = await git(Path(project.path), "rev-parse", "HEAD")
    assert await git(path, "rev-parse", "HEAD") == main_head


async def test_create_with_a_named_branch(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    info = await workspace.create(project, "proj-2", branch="feat/login")
    assert info.branch == "feat/login"
    assert (await git(Path(info.path), "branch", "--show-current")).strip() == "feat/login"


async def test_create_refuses_an_existing_branch_or_path(
    workspace: GitWorktreeWorkspace, project: Project, root: Path
) -> None:
    await workspace.create(project, "proj-3")
    with pytest.raises(ConflictError):
        await workspace.create(project, "proj-3")
    with pytest.raises(ConflictError, match="already exists"):
        await workspace.create(project, "proj-4", branch="orchestrator/proj-3")
    assert not await exists(root / "proj" / "proj-4")


async def test_destroy_removes_a_clean_worktree_and_keeps_its_commits(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    info = await workspace.create(project, "proj-5")
    path = Path(info.path)
    await commit_file(path, "work.txt", "done\n")
    await workspace.destroy(info.path)
    assert not await exists(path)
    assert info.path not in await registered(project)
    # The branch (and the agent's commit on it) is still there.
    shown = await git(Path(project.path), "show", "orchestrator/proj-5:work.txt")
    assert shown == "done\n"


async def test_destroy_refuses_untracked_files_and_deletes_nothing(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    info = await workspace.create(project, "proj-6")
    path = Path(info.path)
    (path / "notes.txt").write_text("unsaved thoughts\n")
    with pytest.raises(ConflictError) as excinfo:
        await workspace.destroy(info.path)
    message = str(excinfo.value)
    assert info.path in message
    assert "uncommitted changes" in message
    assert "notes.txt" in message
    assert (path / "notes.txt").read_text() == "unsaved thoughts\n"
    assert info.path in await registered(project)


async def test_destroy_refuses_modified_tracked_files(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    info = await workspace.create(project, "proj-7")
    path = Path(info.path)
    (path / "README.md").write_text("edited\n")
    with pytest.raises(ConflictError, match="uncommitted changes"):
        await workspace.destroy(info.path)
    assert (path / "README.md").read_text() == "edited\n"
    # Once the work is committed the workspace can go.
    await git(path, "commit", "-q", "-am", "edit")
    await workspace.destroy(info.path)
    assert not await exists(path)


async def test_destroy_ignores_ignored_files(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    info = await workspace.create(project, "proj-8")
    path = Path(info.path)
    await commit_file(path, ".gitignore", "build/\n")
    (path / "build").mkdir()
    (path / "build" / "out.o").write_text("artefact")
    await workspace.destroy(info.path)
    assert not await exists(path)


async def test_destroy_refuses_a_detached_head_with_commits_nothing_else_has(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    info = await workspace.create(project, "proj-9")
    path = Path(info.path)
    await git(path, "checkout", "-q", "--detach")
    await commit_file(path, "orphan.txt", "only here\n")
    with pytest.raises(ConflictError, match="detached HEAD"):
        await workspace.destroy(info.path)
    assert await exists(path / "orphan.txt")


async def test_destroy_is_idempotent(workspace: GitWorktreeWorkspace, project: Project) -> None:
    info = await workspace.create(project, "proj-10")
    await workspace.destroy(info.path)
    await workspace.destroy(info.path)


async def test_destroy_refuses_paths_it_does_not_manage(
    workspace: GitWorktreeWorkspace, project: Project, root: Path, tmp_path: Path
) -> None:
    info = await workspace.create(project, "proj-11")
    for outside in (project.path, str(root), str(root / "proj"), str(tmp_path), f"{info.path}/.."):
        with pytest.raises(InvalidInputError):
            await workspace.destroy(outside)
    assert await exists(Path(project.path) / "README.md")
    assert await exists(info.path)


async def test_destroy_refuses_a_directory_that_is_not_a_worktree(
    workspace: GitWorktreeWorkspace, root: Path
) -> None:
    stray = root / "proj" / "stray"
    stray.mkdir(parents=True)
    (stray / "keep.txt").write_text("mine")
    with pytest.raises(ConflictError, match="not a git worktree"):
        await workspace.destroy(str(stray))
    assert await exists(stray / "keep.txt")


async def test_restore_re_adds_a_destroyed_worktree_on_its_branch(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    info = await workspace.create(project, "proj-12")
    await commit_file(Path(info.path), "progress.txt", "half way\n")
    await workspace.destroy(info.path)
    restored = await workspace.restore(project, "proj-12", "orchestrator/proj-12")
    assert restored == info
    assert (Path(info.path) / "progress.txt").read_text() == "half way\n"
    assert info.path in await registered(project)


async def test_restore_of_a_live_worktree_returns_it_untouched(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    info = await workspace.create(project, "proj-13")
    (Path(info.path) / "scratch.txt").write_text("in progress")
    assert await workspace.restore(project, "proj-13", info.branch) == info
    assert (Path(info.path) / "scratch.txt").read_text() == "in progress"


async def test_restore_after_the_directory_was_deleted_by_hand(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    info = await workspace.create(project, "proj-14")
    shutil.rmtree(info.path)
    restored = await workspace.restore(project, "proj-14", info.branch)
    assert await exists(Path(restored.path) / "README.md")


async def test_restore_refuses_a_non_empty_unregistered_path(
    workspace: GitWorktreeWorkspace, project: Project, root: Path
) -> None:
    await git(Path(project.path), "branch", "orchestrator/proj-15")
    path = root / "proj" / "proj-15"
    path.mkdir(parents=True)
    (path / "someone-elses.txt").write_text("do not touch")
    with pytest.raises(ConflictError, match="not a registered worktree"):
        await workspace.restore(project, "proj-15", "orchestrator/proj-15")
    assert [p.name for p in await trio.Path(path).iterdir()] == ["someone-elses.txt"]


async def test_restore_of_a_missing_branch_is_not_found(
    workspace: GitWorktreeWorkspace, project: Project, root: Path
) -> None:
    with pytest.raises(NotFoundError):
        await workspace.restore(project, "proj-16", "orchestrator/proj-16")
    assert not await exists(root / "proj" / "proj-16")


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\\b", "x..y", "-rf", "a b"])
async def test_ids_that_could_escape_the_root_are_rejected(
    workspace: GitWorktreeWorkspace, project: Project, root: Path, bad: str
) -> None:
    with pytest.raises(InvalidInputError):
        await workspace.create(project, bad)
    with pytest.raises(InvalidInputError):
        await workspace.restore(project, bad, "main")
    evil_project = Project(id=bad, path=project.path, registered_at=project.registered_at)
    with pytest.raises(InvalidInputError):
        await workspace.create(evil_project, "ok-1")
    assert not await exists(root)
    assert await branches(project) == ["main"]


async def test_invalid_branch_names_are_rejected(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    for bad in ("-b", "a..b", "has space", "HEAD"):
        with pytest.raises(InvalidInputError):
            await workspace.create(project, "proj-17", branch=bad)
    assert await branches(project) == ["main"]


async def test_project_path_that_is_not_a_repository_is_rejected(
    workspace: GitWorktreeWorkspace, project: Project, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    not_a_repo = Project(id="plain", path=str(plain), registered_at=project.registered_at)
    with pytest.raises(InvalidInputError, match="not a git repository"):
        await workspace.create(not_a_repo, "plain-1")


# --- one repository, many callers ------------------------------------------------------------

CONCURRENT = 60


async def test_concurrent_creates_and_destroys_on_one_repository_all_succeed(
    workspace: GitWorktreeWorkspace, project: Project
) -> None:
    # Unserialised, git fails about a quarter of these ("failed to read worktrees/…/commondir")
    # and leaves their branches behind.
    made: list[WorkspaceInfo] = []

    async def create(n: int) -> None:
        made.append(await workspace.create(project, f"proj-c{n}"))

    async with trio.open_nursery() as nursery:
        for n in range(CONCURRENT):
            nursery.start_soon(create, n)
    assert len(made) == CONCURRENT
    assert sorted(await branches(project)) == sorted(
        ["main", *(f"orchestrator/proj-c{n}" for n in range(CONCURRENT))]
    )
    assert len(await registered(project)) == CONCURRENT + 1

    async with trio.open_nursery() as nursery:
        for info in made:
            nursery.start_soon(workspace.destroy, info.path)
    assert await registered(project) == [project.path]


async def test_another_process_holding_the_repository_lock_makes_create_wait(
    workspace: GitWorktreeWorkspace, project: Project, root: Path
) -> None:
    lock_file = Path(project.path) / ".git" / LOCK_FILE
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file: conflicts like another process
    done = trio.Event()

    async def create() -> None:
        await workspace.create(project, "proj-l1")
        done.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(create)
            await trio.sleep(0.5)
            assert not done.is_set()
            assert not await exists(root / "proj" / "proj-l1")
            os.close(fd)  # releases the lock
            fd = -1
            with trio.fail_after(30):
                await done.wait()
    finally:
        if fd >= 0:
            os.close(fd)
    assert "orchestrator/proj-l1" in await branches(project)


FAILING_ADD = """#!/bin/sh
# git, except that `worktree add -b <branch>` creates the branch and then fails.
if [ "$3" = worktree ] && [ "$4" = add ] && [ "$5" = -b ]; then
    git -C "$2" branch "$6" HEAD && echo "fatal: simulated failure after the branch" >&2
    exit 128
fi
exec git "$@"
"""


async def test_a_failed_create_deletes_the_branch_git_left_but_never_an_older_one(
    project: Project, root: Path, tmp_path: Path
) -> None:
    wrapper = tmp_path / "git-failing-add"
    wrapper.write_text(FAILING_ADD)
    wrapper.chmod(0o700)
    workspace = GitWorktreeWorkspace(root, git_binary=str(wrapper))
    with pytest.raises(GitCommandError, match="simulated failure"):
        await workspace.create(project, "proj-f1")
    assert await branches(project) == ["main"]

    # A branch that existed before is the user's: a conflict, and it stays.
    await git(Path(project.path), "branch", "feat/mine")
    with pytest.raises(ConflictError, match="already exists"):
        await workspace.create(project, "proj-f2", branch="feat/mine")
    assert sorted(await branches(project)) == ["feat/mine", "main"]
