"""The typed configuration the daemon runs with, and the one place its defaults live.

Everything below the config layer (the reaper, the boot reconcile, the drain…) takes these
values as required arguments, so a default written here is the only one there is. The
loader fills in only what the file says and leaves the rest to these defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Final

import msgspec

from orchestrator.domain.model import AgentHarness, Priority
from orchestrator.domain.reactions import ReactionPolicy
from orchestrator.domain.scm import MergeMethod
from orchestrator.runfile import RUN_FILE_NAME

__all__ = [
    "BUILTIN_AGENTS",
    "BUILTIN_NOTIFIERS",
    "CONFIG_FILE_NAME",
    "DATABASE_FILE_NAME",
    "DEFAULT_AGENT",
    "DEFAULT_ROUTE",
    "DESKTOP_NOTIFIER",
    "KEY_NAME",
    "LOG_FILE_NAME",
    "LOG_NOTIFIER",
    "AgentConfig",
    "Config",
    "GitHubConfig",
    "NotifiersConfig",
    "ProjectConfig",
    "ReaperConfig",
    "RetentionConfig",
    "ScmConfig",
    "ShutdownConfig",
    "Synchronous",
    "WebhookConfig",
    "format_address",
]

CONFIG_FILE_NAME: Final = "orchestrator.yaml"
DATABASE_FILE_NAME: Final = "orchestrator.db"
LOG_FILE_NAME: Final = "daemon.log"

LOG_NOTIFIER: Final = "log"
DESKTOP_NOTIFIER: Final = "desktop"
BUILTIN_NOTIFIERS: Final = (LOG_NOTIFIER, DESKTOP_NOTIFIER)
DEFAULT_ROUTE: Final = (LOG_NOTIFIER, DESKTOP_NOTIFIER)

BUILTIN_AGENTS: Final = tuple(sorted(h.value for h in AgentHarness if h.value))
DEFAULT_AGENT: Final = AgentHarness.CLAUDE_CODE.value


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
    placeholders; ``restore_command`` may use ``{agent_session_id}``; ``env`` is added to
    the agent's environment. ``adapters.agents.agent_for`` turns it into an agent.

    ``clear_line``: the keys (tmux key names, e.g. ``C-e``, ``C-u``) that empty a
    half-typed input line in the agent's terminal, pressed before a message that may have
    been typed already is sent again. None by default: an unknown program may bind those
    keys to anything (the built-in agents have their own)."""

    command: tuple[str, ...]
    restore_command: tuple[str, ...] | None = None
    env: Mapping[str, str] = msgspec.field(default_factory=dict)
    clear_line: tuple[str, ...] = ()


KEY_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
"""What a key in ``AgentConfig.clear_line`` may look like (a tmux key name: ``C-u``, ``End``)."""


class WebhookConfig(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    slack: bool = False


class NotifiersConfig(msgspec.Struct, frozen=True, kw_only=True):
    desktop: bool = True
    webhooks: Mapping[str, WebhookConfig] = msgspec.field(default_factory=dict)


class ReaperConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How often every live session is probed, how long one probe may take, and how many
    probes run at once (the boot reconcile probes the same way)."""

    tick: timedelta = timedelta(seconds=5)
    probe_timeout: timedelta = timedelta(seconds=5)
    concurrency: int = 64


class RetentionConfig(msgspec.Struct, frozen=True, kw_only=True):
    change_log_max_age: timedelta = timedelta(days=7)
    change_log_max_rows: int = 100_000


class ShutdownConfig(msgspec.Struct, frozen=True, kw_only=True):
    drain_timeout: timedelta = timedelta(seconds=10)


class GitHubConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``webhook_secret`` verifies GitHub's webhook deliveries (empty: the webhook route is
    off); ``merge_method`` is how an auto-merge or ``orchestrator pr merge`` merges."""

    webhook_secret: str = ""
    merge_method: MergeMethod = MergeMethod.SQUASH


class ScmConfig(msgspec.Struct, frozen=True, kw_only=True):
    github: GitHubConfig = GitHubConfig()


def _default_routing() -> Mapping[Priority, tuple[str, ...]]:
    return MappingProxyType(dict.fromkeys(Priority, DEFAULT_ROUTE))


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the daemon needs to start. ``config_path`` is where the file was looked
    for; ``config_loaded`` says whether it existed. ``host`` and ``port`` have no default
    here: the default address is ``orchestrator.api.DEFAULT_ADDRESS``."""

    data_dir: Path
    config_path: Path
    host: str
    port: int
    config_loaded: bool = False
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
    scm: ScmConfig = ScmConfig()

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


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
