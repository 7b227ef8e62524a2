"""Reading the config file: YAML → strict structs of what the user wrote → ``Config``.

The file is read with ``yaml.safe_load`` and converted with msgspec into strict structs
(unknown keys are errors, keys are camelCase). A key the file leaves out is ``UNSET`` there
and gets its default from ``orchestrator.config.schema``, the only place defaults are
written. Every error is a ``ConfigError`` whose message starts with the file and names the
key the way the user wrote it (``orchestrator.config.messages``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import urlsplit

import msgspec
import yaml
from msgspec import UNSET, UnsetType

from orchestrator.api import DEFAULT_ADDRESS
from orchestrator.config.fields import NonEmpty, Strict, duration, given
from orchestrator.config.github import ScmSection, load_scm
from orchestrator.config.locations import (
    ENV_ADDR,
    config_path,
    data_dir_from_env,
    is_loopback,
    parse_address,
)
from orchestrator.config.messages import describe, explain, quote
from orchestrator.config.schema import (
    BUILTIN_AGENTS,
    BUILTIN_NOTIFIERS,
    DEFAULT_ROUTE,
    DESKTOP_NOTIFIER,
    KEY_NAME,
    AgentConfig,
    BackupConfig,
    CleanupConfig,
    Config,
    MetricsConfig,
    NotifiersConfig,
    ProjectConfig,
    ReaperConfig,
    ShutdownConfig,
    Synchronous,
    WebhookConfig,
)
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import Priority
from orchestrator.domain.reactions import load_reaction_policy
from orchestrator.domain.retention import RetentionPolicy
from orchestrator.domain.scm_rules import parse_full_name

__all__ = ["load_config"]

_SLUG: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_SLUG_HINT: Final = (
    "lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 32 characters"
)
_PLACEHOLDER: Final = re.compile(r"\{([a-z_]+)\}")
_LAUNCH_PLACEHOLDERS: Final = frozenset({"prompt", "session_id", "workspace_path"})
_RESTORE_PLACEHOLDERS: Final = frozenset({"agent_session_id"})


# --- what the user may write ---------------------------------------------------------------


Positive = Annotated[int, msgspec.Meta(ge=1)]
Argv = Annotated[list[str], msgspec.Meta(min_length=1)]


class _Database(Strict, frozen=True, kw_only=True):
    synchronous: Any = UNSET  # YAML reads a bare OFF as false: checked by hand


class _Project(Strict, frozen=True, kw_only=True):
    path: NonEmpty
    repo_origin_url: str | UnsetType = UNSET
    display_name: str | UnsetType = UNSET
    github: NonEmpty | UnsetType = UNSET


class _Agent(Strict, frozen=True, kw_only=True):
    command: Argv
    restore_command: Argv | UnsetType | None = UNSET
    env: dict[str, str] | UnsetType = UNSET
    clear_line: list[str] | UnsetType = UNSET


class _Desktop(Strict, frozen=True, kw_only=True):
    enabled: bool | UnsetType = UNSET


class _Webhook(Strict, frozen=True, kw_only=True):
    url: NonEmpty
    slack: bool | UnsetType = UNSET


class _Notifiers(Strict, frozen=True, kw_only=True):
    desktop: _Desktop | None = None
    webhooks: Any = None  # a mapping of names, checked entry by entry


class _Routing(Strict, frozen=True, kw_only=True):
    urgent: list[str] | None = None
    action: list[str] | None = None
    info: list[str] | None = None


class _Reaper(Strict, frozen=True, kw_only=True):
    tick: Any = UNSET  # durations are checked by hand, for a message that shows the format
    probe_timeout: Any = UNSET
    concurrency: Positive | UnsetType = UNSET


class _Retention(Strict, frozen=True, kw_only=True):
    interval: Any = UNSET
    batch_size: Positive | UnsetType = UNSET
    change_log_max_age: Any = UNSET
    change_log_max_rows: Positive | UnsetType = UNSET
    outbox_settled_max_age: Any = UNSET
    notification_read_max_age: Any = UNSET
    notifications_max_rows: Positive | UnsetType = UNSET
    check_runs_per_check: Positive | UnsetType = UNSET
    terminated_history_max_age: Any = UNSET


class _Shutdown(Strict, frozen=True, kw_only=True):
    drain_timeout: Any = UNSET


class _Backup(Strict, frozen=True, kw_only=True):
    every: Any = UNSET
    keep: Positive | UnsetType = UNSET
    dir: NonEmpty | UnsetType = UNSET


class _Metrics(Strict, frozen=True, kw_only=True):
    address: NonEmpty | UnsetType = UNSET


class _Cleanup(Strict, frozen=True, kw_only=True):
    after_merge: Any = UNSET  # a duration, or "never"


class _Api(Strict, frozen=True, kw_only=True):
    allow_remote: bool | UnsetType = UNSET


class _File(Strict, frozen=True, kw_only=True):
    """The top level. A section left out, or written empty, is None: all its defaults."""

    address: str | None = None
    database: _Database | None = None
    projects: Any = None
    default_agent: NonEmpty | UnsetType = UNSET
    agents: Any = None
    reactions: Any = None
    notifiers: _Notifiers | None = None
    routing: _Routing | None = None
    reaper: _Reaper | None = None
    retention: _Retention | None = None
    shutdown: _Shutdown | None = None
    backup: _Backup | None = None
    metrics: _Metrics | None = None
    cleanup: _Cleanup | None = None
    api: _Api | None = None
    scm: ScmSection | None = None


# --- one value at a time ---------------------------------------------------------------------

_T = TypeVar("_T")


def _convert(raw: object, kind: type[_T], where: str) -> _T:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as error:
        raise ConfigError(explain(error, where, kind)) from None


def _mapping(raw: object, where: str, what: str) -> dict[str, object]:
    """A YAML mapping with string keys (numbers written as keys are taken as text)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {what}, got {describe(raw)}")
    return {str(key): value for key, value in raw.items()}


def _slug(name: str, where: str, what: str) -> str:
    if not _SLUG.fullmatch(name):
        raise ConfigError(f'{where}: {what} "{name}" must be {_SLUG_HINT}')
    return name


def _check_placeholders(argv: list[str], allowed: frozenset[str], where: str) -> tuple[str, ...]:
    if not argv[0]:
        raise ConfigError(f"{where}: the program (first item) is empty")
    for arg in argv:
        for name in _PLACEHOLDER.findall(arg):
            if name not in allowed:
                known = ", ".join(f"{{{n}}}" for n in sorted(allowed))
                raise ConfigError(f"{where}: unknown placeholder {{{name}}} (known: {known})")
    return tuple(argv)


def _synchronous(raw: object) -> Synchronous | UnsetType:
    if raw is UNSET:
        return UNSET
    if raw is False:  # YAML 1.1 reads a bare OFF as false
        return Synchronous.OFF
    if isinstance(raw, str) and raw.upper() in Synchronous.__members__:
        return Synchronous(raw.upper())
    raise ConfigError(f"database.synchronous: {quote(raw)} is not one of OFF, NORMAL, FULL")


# --- one section at a time -------------------------------------------------------------------


def _projects(raw: object, base: Path) -> dict[str, ProjectConfig]:
    projects: dict[str, ProjectConfig] = {}
    for name, value in _mapping(raw, "projects", "project ids to projects").items():
        where = f"projects.{name}"
        _slug(name, where, "project id")
        project = _convert(value, _Project, where)
        path = Path(project.path).expanduser()
        github = project.github
        if github is not UNSET and parse_full_name(github) is None:
            raise ConfigError(
                f"{where}.github: {quote(github)} is not a repository like owner/name"
            )
        projects[name] = ProjectConfig(
            id=name,
            path=path if path.is_absolute() else (base / path).absolute(),
            **given(
                repo_origin_url=project.repo_origin_url,
                display_name=project.display_name,
                github=github,
            ),
        )
    return projects


def _agents(raw: object) -> dict[str, AgentConfig]:
    agents: dict[str, AgentConfig] = {}
    for name, value in _mapping(raw, "agents", "agent names to agents").items():
        where = f"agents.{name}"
        _slug(name, where, "agent name")
        agent = _convert(value, _Agent, where)
        command = _check_placeholders(agent.command, _LAUNCH_PLACEHOLDERS, f"{where}.command")
        restore: tuple[str, ...] | UnsetType | None
        if agent.restore_command is None or agent.restore_command is UNSET:
            restore = agent.restore_command
        else:
            restore = _check_placeholders(
                agent.restore_command, _RESTORE_PLACEHOLDERS, f"{where}.restoreCommand"
            )
        env = agent.env if agent.env is UNSET else MappingProxyType(dict(agent.env))
        clear_line = agent.clear_line if agent.clear_line is UNSET else tuple(agent.clear_line)
        for key in () if clear_line is UNSET else clear_line:
            if not KEY_NAME.fullmatch(key):
                raise ConfigError(f"{where}.clearLine: {quote(key)} is not a key name like C-u")
        agents[name] = AgentConfig(
            command=command, **given(restore_command=restore, env=env, clear_line=clear_line)
        )
    return agents


def _notifiers(raw: _Notifiers | None) -> NotifiersConfig:
    section = raw or _Notifiers()
    webhooks: dict[str, WebhookConfig] = {}
    for name, value in _mapping(
        section.webhooks, "notifiers.webhooks", "names to webhooks"
    ).items():
        where = f"notifiers.webhooks.{name}"
        _slug(name, where, "webhook name")
        if name in BUILTIN_NOTIFIERS:
            raise ConfigError(f'{where}: "{name}" is a built-in notifier; pick another name')
        hook = _convert(value, _Webhook, where)
        parts = urlsplit(hook.url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(f"{where}.url: expected an absolute http(s) URL")
        webhooks[name] = WebhookConfig(url=hook.url, **given(slack=hook.slack))
    desktop = section.desktop.enabled if section.desktop is not None else UNSET
    return NotifiersConfig(webhooks=MappingProxyType(webhooks), **given(desktop=desktop))


def _routing(
    raw: _Routing | None, notifiers: NotifiersConfig
) -> Mapping[Priority, tuple[str, ...]]:
    known = (*BUILTIN_NOTIFIERS, *sorted(notifiers.webhooks))
    routes: dict[Priority, tuple[str, ...]] = {}
    for priority in Priority:
        names = getattr(raw, priority.value, None) if raw is not None else None
        if names is None:
            names = list(DEFAULT_ROUTE)
        for name in names:
            if name not in known:
                raise ConfigError(
                    f'routing.{priority.value}: unknown notifier "{name}" (known: {", ".join(known)})'
                )
        routes[priority] = tuple(
            dict.fromkeys(n for n in names if notifiers.desktop or n != DESKTOP_NOTIFIER)
        )
    return MappingProxyType(routes)


def _reaper(raw: _Reaper | None) -> ReaperConfig:
    section = raw or _Reaper()
    return ReaperConfig(
        **given(
            tick=duration(section.tick, "reaper.tick"),
            probe_timeout=duration(section.probe_timeout, "reaper.probeTimeout"),
            concurrency=section.concurrency,
        )
    )


_RETENTION_DURATIONS: Final = (
    "interval",
    "change_log_max_age",
    "outbox_settled_max_age",
    "notification_read_max_age",
    "terminated_history_max_age",
)
_RETENTION_COUNTS: Final = (
    "batch_size",
    "change_log_max_rows",
    "notifications_max_rows",
    "check_runs_per_check",
)


def _retention(raw: _Retention | None) -> RetentionPolicy:
    """What the file sets; every other rule keeps ``RetentionPolicy``'s default."""
    section = raw or _Retention()
    keys = dict(zip(_Retention.__struct_fields__, _Retention.__struct_encode_fields__, strict=True))
    durations = {
        name: duration(getattr(section, name), f"retention.{keys[name]}")
        for name in _RETENTION_DURATIONS
    }
    counts = {name: getattr(section, name) for name in _RETENTION_COUNTS}
    return RetentionPolicy(**given(**durations, **counts))


def _shutdown(raw: _Shutdown | None) -> ShutdownConfig:
    section = raw or _Shutdown()
    return ShutdownConfig(
        **given(drain_timeout=duration(section.drain_timeout, "shutdown.drainTimeout"))
    )


def _backup(raw: _Backup | None, base: Path) -> BackupConfig:
    section = raw or _Backup()
    every = duration(section.every, "backup.every")
    if isinstance(every, timedelta) and every <= timedelta(0):
        raise ConfigError("backup.every: must be longer than 0s")
    directory = UNSET if section.dir is UNSET else base / Path(section.dir).expanduser()
    return BackupConfig(**given(every=every, keep=section.keep, dir=directory))


def _metrics(raw: _Metrics | None) -> MetricsConfig:
    section = raw or _Metrics()
    if section.address is UNSET:
        return MetricsConfig()
    try:
        host, _port = parse_address(section.address)
    except ValueError as error:
        raise ConfigError(f"metrics.address: {error}") from None
    if not is_loopback(host):
        raise ConfigError(
            f'metrics.address: "{section.address}" is not a loopback address; the metrics '
            "port has no token, so it must not be reachable from other machines"
        )
    return MetricsConfig(address=section.address)


def _cleanup(raw: _Cleanup | None) -> CleanupConfig:
    after = (raw or _Cleanup()).after_merge
    if isinstance(after, str) and after.strip() == "never":
        return CleanupConfig(after_merge=None)
    try:
        return CleanupConfig(**given(after_merge=duration(after, "cleanup.afterMerge")))
    except ConfigError as error:
        raise ConfigError(f'{error}, or "never"') from None


@dataclass(frozen=True, slots=True)
class _Address:
    where: str  # the key or variable it came from, for messages
    text: str
    host: str
    port: int


def _address(file_value: str | None, env: Mapping[str, str]) -> _Address:
    env_value = env.get(ENV_ADDR, "").strip()
    where, text = (ENV_ADDR, env_value) if env_value else ("address", file_value or DEFAULT_ADDRESS)
    try:
        host, port = parse_address(text)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    return _Address(where, text, host, port)


def _check_reachable(address: _Address, *, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback(address.host):
        raise ConfigError(
            f'{address.where}: "{address.text}" is not a loopback address, so the API would be '
            "reachable from other machines; use 127.0.0.1 or ::1, or set api: {allowRemote: true}"
        )


# --- the file --------------------------------------------------------------------------------


def _read(path: Path, *, explicit: bool) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: config file not found") from None
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file: {error}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = " ".join(p for p in (error.context, error.problem) if p)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None


def load_config(path: Path | None = None, *, env: Mapping[str, str] = os.environ) -> Config:
    """Read, validate and resolve the configuration (``orchestrator.config``: where from).

    Raises ``ConfigError`` with the file and the key path, e.g.
    ``/home/me/.local/share/orchestrator/orchestrator.yaml: agents.mine.command: expected a
    list of strings``.
    """
    file, explicit = config_path(path, env=env)
    raw = _read(file, explicit=explicit)
    try:
        return _build(raw, file, env)
    except ConfigError as error:
        raise ConfigError(f"{file}: {error}") from None


def _build(raw: object, file: Path, env: Mapping[str, str]) -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"expected a mapping of settings at the top level, got {describe(raw)}")
    top = _convert({str(k): v for k, v in raw.items() if v is not None}, _File, "")
    address = _address(top.address, env)
    agents = _agents(top.agents)
    if top.default_agent is not UNSET and top.default_agent not in (*BUILTIN_AGENTS, *agents):
        known = ", ".join([*BUILTIN_AGENTS, *sorted(agents)])
        raise ConfigError(f'defaultAgent: unknown agent "{top.default_agent}" (known: {known})')
    try:
        policy = load_reaction_policy(top.reactions, where="reactions")
    except ConfigError as error:
        raise ConfigError(explain(error, "reactions")) from None
    notifiers = _notifiers(top.notifiers)
    synchronous = _synchronous((top.database or _Database()).synchronous)
    config = Config(
        data_dir=data_dir_from_env(env),
        config_path=file,
        config_loaded=file.is_file(),
        host=address.host,
        port=address.port,
        projects=MappingProxyType(_projects(top.projects, file.parent)),
        agents=MappingProxyType(agents),
        policy=policy,
        notifiers=notifiers,
        routing=_routing(top.routing, notifiers),
        reaper=_reaper(top.reaper),
        retention=_retention(top.retention),
        shutdown=_shutdown(top.shutdown),
        scm=load_scm(top.scm),
        backup=_backup(top.backup, file.parent),
        metrics=_metrics(top.metrics),
        cleanup=_cleanup(top.cleanup),
        **given(
            allow_remote=(top.api or _Api()).allow_remote,
            synchronous=synchronous,
            default_agent=top.default_agent,
        ),
    )
    _check_reachable(address, allow_remote=config.allow_remote)
    return config
