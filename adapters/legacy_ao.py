"""Reading a TypeScript agent-orchestrator installation, read-only, and probing its tmux
sessions on the user's default tmux server, read-only.

Every legacy file is opened for reading only and never locked, renamed or written; the
mapping of what is read is ``orchestrator/domain/legacy.py``. The layout: a global
``config.yaml`` (project identity), ``<project path>/agent-orchestrator.yaml`` (behaviour,
flat or in the older ``projects:``-wrapped form), ``projects/<id>/sessions/*.json`` (the
current layout), ``<12hex>-<id>/`` and bare ``<12hex>/`` directories of older installs with
flat files and ``sessions/archive/``, and ``running.json`` while the legacy daemon runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
import yaml

from orchestrator.domain.errors import InvalidInputError
from orchestrator.domain.legacy import (
    BARE_HASH_DIR,
    HASH_DIR,
    LegacyFile,
    LegacyInstallation,
    LegacyProject,
    SourceKind,
    parse_key_value,
    parse_timestamp,
    sanitize_project_id,
)

DEFAULT_ROOT = "~/.agent-orchestrator"


def _read(path: Path) -> tuple[str, datetime, str]:
    with path.open("rb") as f:  # read-only: the legacy files are never written
        data = f.read()
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return data.decode("utf-8", errors="replace"), mtime, hashlib.sha256(data).hexdigest()


def _yaml(path: Path) -> Any:
    text, _, _ = _read(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"cannot parse legacy config {path}: {exc}") from None


def _config_candidates(root: Path, *, explicit: bool, env: Mapping[str, str]) -> list[Path]:
    if explicit:
        return [root / "config.yaml"]
    home = Path(env.get("HOME", "~")).expanduser()
    found = [Path(env["AO_GLOBAL_CONFIG"])] if env.get("AO_GLOBAL_CONFIG") else []
    if env.get("XDG_CONFIG_HOME"):
        found.append(Path(env["XDG_CONFIG_HOME"]) / "agent-orchestrator" / "config.yaml")
    found += [
        root / "config.yaml",
        home / ".agent-orchestrator.yaml",
        home / ".config" / "agent-orchestrator" / "config.yaml",
    ]
    return found


def _origin(repo: Any) -> str:
    """``repo`` is ``owner/name`` in older configs and a mapping in current ones."""
    if isinstance(repo, Mapping):
        url = repo.get("originUrl")
        if isinstance(url, str):
            return url
        owner, name = repo.get("owner"), repo.get("name")
        return f"https://github.com/{owner}/{name}" if owner and name else ""
    if isinstance(repo, str) and repo.count("/") == 1:
        return f"https://github.com/{repo}"
    return ""


def _local_behaviour(path: Path, project_id: str, notes: list[str]) -> dict[str, Any]:
    for name in ("agent-orchestrator.yaml", "agent-orchestrator.yml"):
        local = path / name
        if not local.is_file():
            continue
        try:
            loaded = _yaml(local)
        except InvalidInputError as exc:
            notes.append(f"{project_id}: local config ignored: {exc}")
            return {}
        if not isinstance(loaded, dict):
            notes.append(f"{project_id}: local config {local} is not a mapping; ignored")
            return {}
        wrapped = loaded.get("projects")
        if isinstance(wrapped, dict):  # the old single-file format
            entry = wrapped.get(project_id)
            if entry is None and len(wrapped) == 1:
                entry = next(iter(wrapped.values()))
            return dict(entry) if isinstance(entry, dict) else {}
        return loaded
    return {}


def _expand(text: str, home: Path) -> Path:
    """``~`` is the user's home as the legacy daemon saw it (``$HOME``)."""
    if text == "~" or text.startswith("~/"):
        return home / text[2:]
    return Path(text)


def _projects(config: Any, home: Path, notes: list[str]) -> list[LegacyProject]:
    raw = config.get("projects") if isinstance(config, dict) else None
    if raw is None:
        return []
    if not isinstance(raw, dict):
        notes.append("config: projects is not a mapping; no project read from it")
        return []
    defaults = config.get("defaults") if isinstance(config.get("defaults"), dict) else {}
    global_reactions = config.get("reactions") if isinstance(config.get("reactions"), dict) else {}
    projects = []
    for key, entry in raw.items():
        if not isinstance(entry, dict):
            notes.append(f"config: project {key!r} is not a mapping; skipped")
            continue
        path_text = entry.get("path")
        path = _expand(path_text, home) if isinstance(path_text, str) else None
        behaviour: dict[str, Any] = {}
        if path is not None and path.is_dir():
            behaviour = _local_behaviour(path, str(key), notes)
        elif path is not None:
            notes.append(f"{key}: project path {path} no longer exists")
        reactions = {
            **global_reactions,
            **(behaviour.get("reactions") or entry.get("reactions") or {}),
        }
        registered = parse_timestamp(entry.get("registeredAt"))
        display = entry.get("displayName") or entry.get("name") or ""
        projects.append(
            LegacyProject(
                legacy_id=str(key),
                id=sanitize_project_id(str(key)),
                path=str(path) if path is not None else "",
                origin_url=_origin(entry.get("repo")) or str(entry.get("originUrl") or ""),
                display_name=str(display) if display != key else "",
                registered_at=registered,
                storage_key=str(entry.get("storageKey") or ""),
                agent=str(
                    (behaviour.get("worker") or {}).get("agent") or defaults.get("agent") or ""
                ),
                reactions=reactions,
            )
        )
    return projects


def _files(directory: Path, kind: SourceKind, owner: str) -> list[LegacyFile]:
    out: list[LegacyFile] = []
    if not directory.is_dir():
        return out
    for entry in sorted(directory.iterdir()):
        if not entry.is_file():
            continue
        text, mtime, digest = _read(entry)
        out.append(
            LegacyFile(
                path=str(entry),
                name=entry.name,
                kind=kind,
                directory=owner,
                text=text,
                mtime=mtime,
                sha256=digest,
            )
        )
    return out


def _bare_dir_project(files: list[LegacyFile], hash_key: str, projects: list[LegacyProject]) -> str:
    """A bare ``<12hex>`` dir's project: the config's ``storageKey``, then the ``project``
    field of its first session file, then the hash itself."""
    for p in projects:
        if p.storage_key == hash_key:
            return p.legacy_id
    for f in files:
        value = None
        if f.text.lstrip().startswith("{"):
            try:
                loaded = json.loads(f.text)
            except ValueError:
                continue
            value = loaded.get("project") if isinstance(loaded, dict) else None
        else:
            value = parse_key_value(f.text).get("project")
        if isinstance(value, str) and value:
            return value
    return hash_key


def legacy_daemon_pid(root: Path) -> int | None:
    """The pid in ``running.json`` when that process is alive."""
    try:
        loaded = json.loads((root / "running.json").read_text())
        pid = int(loaded["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


class LegacyInstallationReader:
    """``LegacySource``: one snapshot of an installation's files."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)

    async def read(self, root: str | None) -> LegacyInstallation:
        return await trio.to_thread.run_sync(self._read_sync, root)

    def _read_sync(self, root_text: str | None) -> LegacyInstallation:
        root = Path(root_text or DEFAULT_ROOT).expanduser()
        notes: list[str] = []
        config: Any = None
        config_path = ""
        for candidate in _config_candidates(root, explicit=root_text is not None, env=self._env):
            if candidate.is_file():
                config, config_path = _yaml(candidate), str(candidate)
                break
        projects = _projects(config, Path(self._env.get("HOME", "~")).expanduser(), notes)
        files: dict[str, list[LegacyFile]] = {}

        def add(legacy_id: str, found: list[LegacyFile]) -> None:
            files.setdefault(legacy_id, []).extend(found)

        if (root / "projects").is_dir():
            for pdir in sorted((root / "projects").iterdir()):
                add(pdir.name, _files(pdir / "sessions", SourceKind.V2, pdir.name))
        if root.is_dir():
            for d in sorted(root.iterdir()):
                if not d.is_dir() or d.name.endswith(".migrated"):
                    continue
                hashed, bare = HASH_DIR.match(d.name), BARE_HASH_DIR.match(d.name)
                if hashed and hashed.group(2) == "observability":
                    continue
                if not (hashed or bare):
                    continue
                found = _files(d / "sessions", SourceKind.V1, d.name)
                archived = _files(d / "sessions" / "archive", SourceKind.ARCHIVE, d.name)
                if hashed:
                    owner = hashed.group(2)
                else:
                    owner = _bare_dir_project(found, d.name, projects)
                    notes.append(f"{d.name}: bare storage dir read as project {owner!r}")
                add(owner, found + archived)
        known = {p.legacy_id for p in projects}
        for legacy_id in sorted(set(files) - known):
            notes.append(f"{legacy_id}: sessions found but the project is not in the config")
            projects.append(LegacyProject(legacy_id=legacy_id, id=sanitize_project_id(legacy_id)))
        return LegacyInstallation(
            root=str(root),
            config_path=config_path,
            projects=tuple(projects),
            files={k: tuple(v) for k, v in files.items()},
            legacy_daemon_pid=legacy_daemon_pid(root),
            migration_in_progress=(root / ".migration-in-progress").exists(),
            notes=tuple(notes),
        )


class DefaultTmuxServer:
    """``LegacyRuntimeProbe`` on the user's default tmux server: ``has-session`` only,
    which reads and never changes anything there."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)
        self._env.pop("TMUX", None)  # inside tmux, TMUX would pick that server instead

    async def has_session(self, name: str) -> bool:
        try:
            done = await trio.run_process(
                ["tmux", "has-session", "-t", f"={name}"],
                env=self._env,
                check=False,
                capture_stdout=True,
                capture_stderr=True,
            )
        except OSError:
            return False  # no tmux: no legacy session can be alive
        return done.returncode == 0
