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
    Config,
    GitHubConfig,
    NotifiersConfig,
    ProjectConfig,
    ReaperConfig,
    RetentionConfig,
    ScmConfig,
    ShutdownConfig,
    Synchronous,
    WebhookConfig,
)
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import Priority
from orchestrator.domain.reactions import DURATION_HINT, load_reaction_policy, parse_duration
from orchestrator.domain.scm import MergeMethod

__all__ = ["load_config"]

_SLUG: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_SLUG_HINT: Final = (
    "lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 32 characters"
)
_PLACEHOLDER: Final = re.compile(r"\{([a-z_]+)\}")
_LAUNCH_PLACEHOLDERS: Final = frozenset({"prompt", "session_id", "workspace_path"})
_RESTORE_PLACEHOLDERS: Final = frozenset({"agent_session_id"})


# --- what the user may write ---------------------------------------------------------------


class _Strict(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"
):
    """Unknown keys are errors, keys are camelCase, a key left out is UNSET."""


NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Argv = Annotated[list[str], msgspec.Meta(min_length=1)]


class _Database(_Strict, frozen=True, kw_only=True):
    synchronous: Any = UNSET  # YAML reads a bare OFF as false: checked by hand


class _Project(_Strict, frozen=True, kw_only=True):
    path: NonEmpty
    repo_origin_url: str | UnsetType = UNSET
    display_name: str | UnsetType = UNSET


class _Agent(_Strict, frozen=True, kw_only=True):
    command: Argv
    restore_command: Argv | UnsetType | None = UNSET
    env: dict[str, str] | UnsetType = UNSET
    clear_line: list[str] | UnsetType = UNSET


class _Desktop(_Strict, frozen=True, kw_only=True):
    enabled: bool | UnsetType = UNSET


class _Webhook(_Strict, frozen=True, kw_only=True):
    url: NonEmpty
    slack: bool | UnsetType = UNSET


class _Notifiers(_Strict, frozen=True, kw_only=True):
    desktop: _Desktop | None = None
    webhooks: Any = None  # a mapping of names, checked entry by entry


class _Routing(_Strict, frozen=True, kw_only=True):
    urgent: list[str] | None = None
    action: list[str] | None = None
    info: list[str] | None = None


class _Reaper(_Strict, frozen=True, kw_only=True):
    tick: Any = UNSET  # durations are checked by hand, for a message that shows the format
    probe_timeout: Any = UNSET
    concurrency: Positive | UnsetType = UNSET


class _Retention(_Strict, frozen=True, kw_only=True):
    change_log_max_age: Any = UNSET
    change_log_max_rows: Positive | UnsetType = UNSET


class _Shutdown(_Strict, frozen=True, kw_only=True):
    drain_timeout: Any = UNSET


class _Api(_Strict, frozen=True, kw_only=True):
    allow_remote: bool | UnsetType = UNSET


class _GitHub(_Strict, frozen=True, kw_only=True):
    webhook_secret: str | UnsetType = UNSET
    merge_method: MergeMethod | UnsetType = UNSET


class _Scm(_Strict, frozen=True, kw_only=True):
    github: _GitHub | None = None


class _File(_Strict, frozen=True, kw_only=True):
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
    api: _Api | None = None
    scm: _Scm | None = None


# --- one value at a time ---------------------------------------------------------------------

_T = TypeVar("_T")


def _given(**values: object) -> dict[str, Any]:
    """The values the file set, as keyword arguments: the rest keep the schema's defaults."""
    return {name: value for name, value in values.items() if value is not UNSET}


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


def _duration(raw: object, where: str) -> timedelta | UnsetType:
    if raw is UNSET:
        return UNSET
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: {quote(raw)} is not {DURATION_HINT}")
    try:
        return parse_duration(raw)
    except ValueError:
        if raw.strip() and re.fullmatch(r"[0dhms]+", raw.strip()):
            raise ConfigError(f"{where}: {quote(raw)} must be longer than zero") from None
        raise ConfigError(f"{where}: {quote(raw)} is not {DURATION_HINT}") from None


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
        projects[name] = ProjectConfig(
            id=name,
            path=path if path.is_absolute() else (base / path).absolute(),
            **_given(repo_origin_url=project.repo_origin_url, display_name=project.display_name),
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
            command=command, **_given(restore_command=restore, env=env, clear_line=clear_line)
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
        webhooks[name] = WebhookConfig(url=hook.url, **_given(slack=hook.slack))
    desktop = section.desktop.enabled if section.desktop is not None else UNSET
    return NotifiersConfig(webhooks=MappingProxyType(webhooks), **_given(desktop=desktop))


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
        **_given(
            tick=_duration(section.tick, "reaper.tick"),
            probe_timeout=_duration(section.probe_timeout, "reaper.probeTimeout"),
            concurrency=section.concurrency,
        )
    )


def _retention(raw: _Retention | None) -> RetentionConfig:
    section = raw or _Retention()
    return RetentionConfig(
        **_given(
            change_log_max_age=_duration(section.change_log_max_age, "retention.changeLogMaxAge"),
            change_log_max_rows=section.change_log_max_rows,
        )
    )


def _shutdown(raw: _Shutdown | None) -> ShutdownConfig:
    section = raw or _Shutdown()
    return ShutdownConfig(
        **_given(drain_timeout=_duration(section.drain_timeout, "shutdown.drainTimeout"))
    )


def _scm(raw: _Scm | None) -> ScmConfig:
    section = (raw or _Scm()).github or _GitHub()
    return ScmConfig(
        github=GitHubConfig(
            **_given(webhook_secret=section.webhook_secret, merge_method=section.merge_method)
        )
    )


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
        scm=_scm(top.scm),
        **_given(
            allow_remote=(top.api or _Api()).allow_remote,
            synchronous=synchronous,
            default_agent=top.default_agent,
        ),
    )
    _check_reachable(address, allow_remote=config.allow_remote)
    return config
