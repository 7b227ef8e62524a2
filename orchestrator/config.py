"""The daemon's configuration: one YAML file plus two environment overrides.

Where things are:

* the data dir is ``$ORCHESTRATOR_DATA_DIR``, else ``$XDG_DATA_HOME/orchestrator``, else
  ``~/.local/share/orchestrator``; the database, run-file and log live in it;
* the config file is the path given to ``load_config`` (``--config``), else
  ``$ORCHESTRATOR_CONFIG``, else ``<data dir>/orchestrator.yaml``. A missing file at the
  default place means every default; a file named explicitly must exist;
* the API address is ``$ORCHESTRATOR_ADDR``, else ``address`` in the file, else
  ``127.0.0.1:8731``. Port 0 picks a free port. A host that is not loopback is refused
  unless the file says ``api: {allowRemote: true}``.

The file is read with ``yaml.safe_load`` and converted with msgspec into strict Structs
(unknown keys are errors, keys are camelCase). Every error is a ``ConfigError`` whose
message starts with the file and names the key the way the user wrote it, e.g.
``…/orchestrator.yaml: reaper.tick: "5 seconds" is not a duration like "90s", …``.
``example_config()`` is a commented file with every section.
"""

from __future__ import annotations

import ipaddress
import os
import re
import typing
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import urlsplit

import msgspec
import yaml

from orchestrator.api import DEFAULT_ADDRESS
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import AgentHarness, Priority
from orchestrator.domain.reactions import (
    DURATION_HINT,
    ReactionPolicy,
    load_reaction_policy,
    parse_duration,
)
from orchestrator.runfile import RUN_FILE_NAME

__all__ = [
    "CONFIG_FILE_NAME",
    "ENV_ADDR",
    "ENV_CONFIG",
    "ENV_DATA_DIR",
    "AgentConfig",
    "Config",
    "NotifiersConfig",
    "ProjectConfig",
    "ReaperConfig",
    "RetentionConfig",
    "ShutdownConfig",
    "Synchronous",
    "WebhookConfig",
    "config_path",
    "data_dir_from_env",
    "example_config",
    "load_config",
    "parse_address",
]

ENV_DATA_DIR: Final = "ORCHESTRATOR_DATA_DIR"
ENV_ADDR: Final = "ORCHESTRATOR_ADDR"
ENV_CONFIG: Final = "ORCHESTRATOR_CONFIG"

CONFIG_FILE_NAME: Final = "orchestrator.yaml"
DATABASE_FILE_NAME: Final = "orchestrator.db"
LOG_FILE_NAME: Final = "daemon.log"

LOG_NOTIFIER: Final = "log"
DESKTOP_NOTIFIER: Final = "desktop"
BUILTIN_NOTIFIERS: Final = (LOG_NOTIFIER, DESKTOP_NOTIFIER)
DEFAULT_ROUTE: Final = (LOG_NOTIFIER, DESKTOP_NOTIFIER)

BUILTIN_AGENTS: Final = tuple(sorted(h.value for h in AgentHarness if h.value))
DEFAULT_AGENT: Final = AgentHarness.CLAUDE_CODE.value

_SLUG: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_SLUG_HINT: Final = (
    "lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 32 characters"
)
_PLACEHOLDER: Final = re.compile(r"\{([a-z_]+)\}")
_LAUNCH_PLACEHOLDERS: Final = frozenset({"prompt", "session_id", "workspace_path"})
_RESTORE_PLACEHOLDERS: Final = frozenset({"agent_session_id"})


# --- the typed configuration -------------------------------------------------------------


class Synchronous(StrEnum):
    """SQLite's ``PRAGMA synchronous`` (WAL mode): NORMAL may lose the last commits on a
    power cut but never corrupts; FULL fsyncs every commit; OFF is for throwaway data."""

    OFF = "OFF"
    NORMAL = "NORMAL"
    FULL = "FULL"


class ProjectConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A project registered from the file (the API can register more at run time)."""

    id: str
    path: Path
    repo_origin_url: str = ""
    display_name: str = ""


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A custom agent: an argv with ``{prompt}``, ``{session_id}``, ``{workspace_path}``
    placeholders; ``restore_command`` may use ``{agent_session_id}``. Same shape as
    ``adapters.agents.CustomAgentConfig``."""

    command: tuple[str, ...]
    restore_command: tuple[str, ...] | None = None
    env: Mapping[str, str] = msgspec.field(default_factory=dict)


class WebhookConfig(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    slack: bool = False


class NotifiersConfig(msgspec.Struct, frozen=True, kw_only=True):
    desktop: bool = True
    webhooks: Mapping[str, WebhookConfig] = msgspec.field(default_factory=dict)


class ReaperConfig(msgspec.Struct, frozen=True, kw_only=True):
    tick: timedelta = timedelta(seconds=5)
    probe_timeout: timedelta = timedelta(seconds=5)
    concurrency: int = 64


class RetentionConfig(msgspec.Struct, frozen=True, kw_only=True):
    change_log_max_age: timedelta = timedelta(days=7)
    change_log_max_rows: int = 100_000


class ShutdownConfig(msgspec.Struct, frozen=True, kw_only=True):
    drain_timeout: timedelta = timedelta(seconds=10)


def _default_routing() -> Mapping[Priority, tuple[str, ...]]:
    return MappingProxyType(dict.fromkeys(Priority, DEFAULT_ROUTE))


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the daemon needs to start. ``config_path`` is where the file was looked
    for; ``config_loaded`` says whether it existed."""

    data_dir: Path
    config_path: Path
    config_loaded: bool = False
    host: str = "127.0.0.1"
    port: int = 8731
    allow_remote: bool = False
    synchronous: Synchronous = Synchronous.NORMAL
    projects: Mapping[str, ProjectConfig] = msgspec.field(default_factory=dict)
    default_agent: str = DEFAULT_AGENT
    agents: Mapping[str, AgentConfig] = msgspec.field(default_factory=dict)
    policy: ReactionPolicy = msgspec.field(default_factory=ReactionPolicy)
    notifiers: NotifiersConfig = NotifiersConfig()
    routing: Mapping[Priority, tuple[str, ...]] = msgspec.field(default_factory=_default_routing)
    """Notifier names per priority: ``log``, ``desktop`` or a webhook name. ``desktop`` is
    left out when desktop notifications are disabled."""
    reaper: ReaperConfig = ReaperConfig()
    retention: RetentionConfig = RetentionConfig()
    shutdown: ShutdownConfig = ShutdownConfig()

    @property
    def address(self) -> str:
        """``host:port`` as configured (IPv6 hosts in brackets); port 0 means "any"."""
        return format_address(self.host, self.port)

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_FILE_NAME

    @property
    def run_file(self) -> Path:
        return self.data_dir / RUN_FILE_NAME

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_FILE_NAME


# --- where things are --------------------------------------------------------------------


def data_dir_from_env(env: Mapping[str, str] = os.environ) -> Path:
    """``$ORCHESTRATOR_DATA_DIR``, else ``$XDG_DATA_HOME/orchestrator`` (when absolute, as
    the XDG spec asks), else ``~/.local/share/orchestrator``. Always absolute."""
    explicit = env.get(ENV_DATA_DIR, "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = env.get("XDG_DATA_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "orchestrator"
    return Path.home() / ".local" / "share" / "orchestrator"


def config_path(
    path: Path | None = None, *, env: Mapping[str, str] = os.environ
) -> tuple[Path, bool]:
    """The config file to read and whether it was named explicitly (then it must exist)."""
    if path is not None:
        return path.expanduser().absolute(), True
    explicit = env.get(ENV_CONFIG, "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute(), True
    return data_dir_from_env(env) / CONFIG_FILE_NAME, False


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port). Raises ValueError saying what is wrong."""
    value = text.strip()
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise ValueError(f'"{text}" is not host:port (e.g. "127.0.0.1:8731" or "[::1]:8731")')
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f'"{host}" in "{text}" is not an IPv6 address') from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host or ":" in host or any(c.isspace() for c in host):
            raise ValueError(f'"{text}" is not host:port (e.g. "127.0.0.1:8731" or "[::1]:8731")')
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f'"{text}": the port must be a number from 0 to 65535')
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


# --- loading -----------------------------------------------------------------------------


class _Strict(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"
):
    """What the user may write: unknown keys are errors, keys are camelCase."""


NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class _Database(_Strict, frozen=True, kw_only=True):
    synchronous: Any = "NORMAL"  # YAML reads a bare OFF as false: checked by hand


class _Project(_Strict, frozen=True, kw_only=True):
    path: NonEmpty
    repo_origin_url: str = ""
    display_name: str = ""


class _Agent(_Strict, frozen=True, kw_only=True):
    command: Annotated[list[str], msgspec.Meta(min_length=1)]
    restore_command: Annotated[list[str], msgspec.Meta(min_length=1)] | None = None
    env: dict[str, str] = msgspec.field(default_factory=dict)


class _Desktop(_Strict, frozen=True, kw_only=True):
    enabled: bool = True


class _Webhook(_Strict, frozen=True, kw_only=True):
    url: NonEmpty
    slack: bool = False


class _Notifiers(_Strict, frozen=True, kw_only=True):
    desktop: _Desktop | None = None
    webhooks: Any = None  # a mapping of names, checked entry by entry


class _Routing(_Strict, frozen=True, kw_only=True):
    urgent: list[str] | None = None
    action: list[str] | None = None
    info: list[str] | None = None


class _Reaper(_Strict, frozen=True, kw_only=True):
    tick: Any = "5s"
    probe_timeout: Any = "5s"
    concurrency: Positive = 64


class _Retention(_Strict, frozen=True, kw_only=True):
    change_log_max_age: Any = "7d"
    change_log_max_rows: Positive = 100_000


class _Shutdown(_Strict, frozen=True, kw_only=True):
    drain_timeout: Any = "10s"


class _Api(_Strict, frozen=True, kw_only=True):
    allow_remote: bool = False


class _File(_Strict, frozen=True, kw_only=True):
    address: str | None = None
    database: _Database | None = None
    projects: Any = None
    default_agent: NonEmpty | None = None
    agents: Any = None
    reactions: Any = None
    notifiers: _Notifiers | None = None
    routing: _Routing | None = None
    reaper: _Reaper | None = None
    retention: _Retention | None = None
    shutdown: _Shutdown | None = None
    api: _Api | None = None


_T = TypeVar("_T")

# Friendlier words for a wrong value at (or inside) these keys.
_HINTS: Final = (
    (re.compile(r"agents\.[^.]+\.command(\[\d+\])?"), "expected a list of strings"),
    (re.compile(r"agents\.[^.]+\.restoreCommand(\[\d+\])?"), "expected a list of strings or null"),
    (
        re.compile(r"agents\.[^.]+\.env"),
        'expected a mapping of names to strings (quote numbers: PORT: "8080")',
    ),
    (re.compile(r"routing\.[a-z]+(\[\d+\])?"), "expected a list of notifier names"),
    (re.compile(r"reactions\.[^.]+\.action"), "expected send-to-agent or notify"),
    (re.compile(r"reactions\.[^.]+\.priority"), "expected urgent, action or info"),
)
_WORDS: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}
_INDEX: Final = re.compile(r"\[\d+\]$")
_NOUNS: Final = {"str": "string", "array": "list", "object": "mapping"}
_MSGSPEC_ERROR: Final = re.compile(
    r"(?P<what>.*?)(?: - at `(?P<where>[^`]*)`(?: in `(?P<outer>[^`]*)`)?)?", re.DOTALL
)


def _explain(error: Exception, where: str, kind: type | None = None) -> str:
    """Turn msgspec's ``Expected `int`, got `str` - at `$.reaper.concurrency``` into
    ``reaper.concurrency: expected an integer, got a string``."""
    text = re.sub(r"'([^'\"]*)' (is not|must be)", r'"\1" \2', str(error))  # parse_duration
    match = _MSGSPEC_ERROR.fullmatch(text)
    if match is None or (match["where"] is None and where and text.startswith(where)):
        return text  # already names its key (load_reaction_policy's own messages)
    what: str = match["what"]
    path: str = match["outer"] or match["where"] or where
    if path.startswith("$"):
        path = where + path[1:]
    path = path.replace("[...]", "").strip(".")
    if match["outer"]:  # "- at `key` in `$.projects`": a key of the wrong type
        what = "every key must be a string"
    elif unknown := re.fullmatch(r"Object contains unknown field `(.+)`", what):
        known = _known_keys(kind, path[len(where) :].strip(".")) if kind is not None else ()
        if not known and re.fullmatch(r"reactions\.[^.]+", path):
            known = _REACTION_FIELDS
        listed = f" (known keys: {', '.join(known)})" if known else ""
        return f"{_join(path, unknown[1])}: unknown key{listed}"
    elif missing := re.fullmatch(r"Object missing required field `(.+)`", what):
        return f'{path or "(top level)"}: missing required key "{missing[1]}"'
    elif what.startswith(("Expected", "Invalid enum value")):
        if "length" not in what:
            for pattern, hint in _HINTS:
                if pattern.fullmatch(path):
                    return f"{_INDEX.sub('', path)}: {hint}"
        what = re.sub(
            r"Expected `(\w+)` of length >= 1",
            lambda m: f"expected a non-empty {_NOUNS.get(m[1], m[1])}",
            what,
        )
        what = re.sub(r"Expected `([^`]+)`", lambda m: f"expected {_expected(m[1])}", what)
        what = re.sub(r"got `(\w+)`", lambda m: f"got {_WORDS.get(m[1], m[1])}", what)
        what = what.replace("Invalid enum value", "invalid value")
    return f"{path}: {what}" if path else what


_REACTION_FIELDS: Final = ("auto", "action", "message", "priority", "retries", "escalateAfter")


def _known_keys(kind: type, path: str) -> tuple[str, ...]:
    """The keys the struct at ``path`` (dotted, relative to ``kind``) accepts."""
    current: object = kind
    for token in path.split(".") if path else ():
        fields = msgspec.structs.fields(current) if isinstance(current, type) else ()
        field = next((f for f in fields if f.encode_name == token), None)
        if field is None:
            return ()
        options = typing.get_args(field.type) or (field.type,)
        current = next((t for t in options if isinstance(t, type) and issubclass(t, _Strict)), None)
    if not (isinstance(current, type) and issubclass(current, msgspec.Struct)):
        return ()
    return tuple(f.encode_name for f in msgspec.structs.fields(current))


def _expected(types: str) -> str:
    """``object | null`` → ``a mapping`` (an empty section already means the defaults)."""
    names = [_WORDS.get(t, t) for t in types.split(" | ") if t != "null"] or ["nothing"]
    return " or ".join(names)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(raw: object, kind: type[_T], where: str) -> _T:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as error:
        raise ConfigError(_explain(error, where, kind)) from None


def _mapping(raw: object, where: str, what: str) -> dict[str, object]:
    """A YAML mapping with string keys (numbers written as keys are taken as text)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {what}, got {_yaml_type(raw)}")
    return {str(key): value for key, value in raw.items()}


def _yaml_type(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _quote(value: object) -> str:
    return msgspec.json.encode(value).decode() if isinstance(value, str) else str(value)


def _duration(raw: object, where: str) -> timedelta:
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: {_quote(raw)} is not {DURATION_HINT}")
    try:
        return parse_duration(raw)
    except ValueError:
        if raw.strip() and re.fullmatch(r"[0dhms]+", raw.strip()):
            raise ConfigError(f"{where}: {_quote(raw)} must be longer than zero") from None
        raise ConfigError(f"{where}: {_quote(raw)} is not {DURATION_HINT}") from None


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


def _synchronous(raw: object) -> Synchronous:
    if raw is False:  # YAML 1.1 reads a bare OFF as false
        return Synchronous.OFF
    if isinstance(raw, str) and raw.upper() in Synchronous.__members__:
        return Synchronous(raw.upper())
    raise ConfigError(f"database.synchronous: {_quote(raw)} is not one of OFF, NORMAL, FULL")


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
            repo_origin_url=project.repo_origin_url,
            display_name=project.display_name,
        )
    return projects


def _agents(raw: object) -> dict[str, AgentConfig]:
    agents: dict[str, AgentConfig] = {}
    for name, value in _mapping(raw, "agents", "agent names to agents").items():
        where = f"agents.{name}"
        _slug(name, where, "agent name")
        agent = _convert(value, _Agent, where)
        agents[name] = AgentConfig(
            command=_check_placeholders(agent.command, _LAUNCH_PLACEHOLDERS, f"{where}.command"),
            restore_command=None
            if agent.restore_command is None
            else _check_placeholders(
                agent.restore_command, _RESTORE_PLACEHOLDERS, f"{where}.restoreCommand"
            ),
            env=MappingProxyType(dict(agent.env)),
        )
    return agents


def _webhooks(raw: object) -> dict[str, WebhookConfig]:
    webhooks: dict[str, WebhookConfig] = {}
    for name, value in _mapping(raw, "notifiers.webhooks", "names to webhooks").items():
        where = f"notifiers.webhooks.{name}"
        _slug(name, where, "webhook name")
        if name in BUILTIN_NOTIFIERS:
            raise ConfigError(f'{where}: "{name}" is a built-in notifier; pick another name')
        hook = _convert(value, _Webhook, where)
        parts = urlsplit(hook.url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(f"{where}.url: expected an absolute http(s) URL")
        webhooks[name] = WebhookConfig(url=hook.url, slack=hook.slack)
    return webhooks


def _routing(
    raw: _Routing | None, webhooks: Mapping[str, WebhookConfig], *, desktop: bool
) -> Mapping[Priority, tuple[str, ...]]:
    known = (*BUILTIN_NOTIFIERS, *sorted(webhooks))
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
        unique = tuple(dict.fromkeys(n for n in names if desktop or n != DESKTOP_NOTIFIER))
        routes[priority] = unique
    return MappingProxyType(routes)


def _address(
    file_value: str | None, env: Mapping[str, str], *, allow_remote: bool
) -> tuple[str, int]:
    env_value = env.get(ENV_ADDR, "").strip()
    where, text = (ENV_ADDR, env_value) if env_value else ("address", file_value or DEFAULT_ADDRESS)
    try:
        host, port = parse_address(text)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    if not allow_remote and not is_loopback(host):
        raise ConfigError(
            f'{where}: "{text}" is not a loopback address, so the API would be reachable from '
            "other machines; use 127.0.0.1 or ::1, or set api: {allowRemote: true}"
        )
    return host, port


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
    """Read, validate and resolve the configuration (module docstring: where from).

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
        raise ConfigError(f"expected a mapping of settings at the top level, got {_yaml_type(raw)}")
    top = _convert({str(k): v for k, v in raw.items() if v is not None}, _File, "")
    api = top.api or _Api()
    host, port = _address(top.address, env, allow_remote=api.allow_remote)
    agents = _agents(top.agents)
    default_agent = top.default_agent or DEFAULT_AGENT
    if default_agent not in BUILTIN_AGENTS and default_agent not in agents:
        known = ", ".join([*BUILTIN_AGENTS, *sorted(agents)])
        raise ConfigError(f'defaultAgent: unknown agent "{default_agent}" (known: {known})')
    try:
        policy = load_reaction_policy(top.reactions, where="reactions")
    except ConfigError as error:
        raise ConfigError(_explain(error, "reactions")) from None
    notifiers = top.notifiers or _Notifiers()
    desktop = notifiers.desktop.enabled if notifiers.desktop is not None else True
    webhooks = _webhooks(notifiers.webhooks)
    reaper = top.reaper or _Reaper()
    retention = top.retention or _Retention()
    shutdown = top.shutdown or _Shutdown()
    return Config(
        data_dir=data_dir_from_env(env),
        config_path=file,
        config_loaded=file.is_file(),
        host=host,
        port=port,
        allow_remote=api.allow_remote,
        synchronous=_synchronous((top.database or _Database()).synchronous),
        projects=MappingProxyType(_projects(top.projects, file.parent)),
        default_agent=default_agent,
        agents=MappingProxyType(agents),
        policy=policy,
        notifiers=NotifiersConfig(desktop=desktop, webhooks=MappingProxyType(webhooks)),
        routing=_routing(top.routing, webhooks, desktop=desktop),
        reaper=ReaperConfig(
            tick=_duration(reaper.tick, "reaper.tick"),
            probe_timeout=_duration(reaper.probe_timeout, "reaper.probeTimeout"),
            concurrency=reaper.concurrency,
        ),
        retention=RetentionConfig(
            change_log_max_age=_duration(retention.change_log_max_age, "retention.changeLogMaxAge"),
            change_log_max_rows=retention.change_log_max_rows,
        ),
        shutdown=ShutdownConfig(
            drain_timeout=_duration(shutdown.drain_timeout, "shutdown.drainTimeout")
        ),
    )


_EXAMPLE: Final = """\
# orchestrator.yaml: every key is optional; these are the defaults unless marked "example".
# Lives in the data dir ($ORCHESTRATOR_DATA_DIR, else ~/.local/share/orchestrator), or pass
# --config / set ORCHESTRATOR_CONFIG. Check a file with `orchestrator config check`.

# Where the HTTP API listens. $ORCHESTRATOR_ADDR wins over this. Port 0 picks a free port.
address: 127.0.0.1:8731

api:
  allowRemote: false          # true lets `address` be a non-loopback host (the token still applies)

database:
  synchronous: NORMAL         # OFF, NORMAL or FULL (SQLite PRAGMA synchronous)

# Projects to register at start-up (example; `orchestrator project add` does the same).
projects:
  my-app:                     # id: lowercase letters, digits, - and _
    path: ~/src/my-app
    repoOriginUrl: https://github.com/me/my-app.git
    displayName: My App

# The agent `orchestrator spawn` uses without --agent: claude-code, codex, aider, opencode,
# or one of the custom agents below.
defaultAgent: claude-code

# Custom agents (example). The command is an argv, never run through a shell.
# Placeholders: {prompt}, {session_id}, {workspace_path}; without {prompt} the prompt is
# appended. restoreCommand may use {agent_session_id} (appended when absent); null = none.
agents:
  my-agent:
    command: [my-agent, --yes, --message, "{prompt}"]
    restoreCommand: [my-agent, --resume, "{agent_session_id}"]
    env:
      MY_AGENT_MODEL: fast

# Reactions: override any field of any key; the rest keeps its default (deep merge).
# Keys: ci-failed, review-comments, merge-conflicts, agent-idle, approved-and-green,
# agent-stuck, agent-needs-input, agent-exited, pr-closed, pr-merged.
# Fields: auto, action (send-to-agent | notify), message, priority (urgent | action | info),
# retries, escalateAfter (like 90s, 15m, 1h30m, 1d; null = never).
reactions:
  ci-failed:
    retries: 2                # nudges before the CI brake pages a human
  review-comments:
    retries: 3
  agent-idle:
    escalateAfter: 15m
  approved-and-green:
    auto: true
    priority: action

# Notifiers: `log` (the daemon log) and `desktop` are built in; add webhooks by name.
notifiers:
  desktop:
    enabled: true
  webhooks:                   # example
    team-slack:
      url: https://hooks.slack.com/services/T000/B000/XXXX
      slack: true             # send Slack's {"text": ...} instead of the event JSON

# Which notifiers each priority goes to (default: [log, desktop] for every priority).
routing:
  urgent: [log, desktop, team-slack]
  action: [log, desktop]
  info: [log]

reaper:
  tick: 5s                    # how often every live session is probed
  probeTimeout: 5s
  concurrency: 64             # probes in flight at once

retention:
  changeLogMaxAge: 7d         # the event history kept for `orchestrator events` / SSE replay
  changeLogMaxRows: 100000

shutdown:
  drainTimeout: 10s           # SIGTERM: how long to finish queued work before exiting
"""


def example_config() -> str:
    """A commented configuration file showing every section (it loads cleanly)."""
    return _EXAMPLE
