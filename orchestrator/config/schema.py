"""The typed configuration the daemon runs with, and the one place its defaults live.

Everything below the config layer (the reaper, the boot reconcile, the drain…) takes these
values as required arguments, so a default written here is the only one there is. The
loader fills in only what the file says and leaves the rest to these defaults. Retention
is the domain's ``RetentionPolicy`` itself, whose defaults are written there.
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
from orchestrator.domain.retention import RetentionPolicy
from orchestrator.domain.scm import MergeMethod
from orchestrator.runfile import RUN_FILE_NAME

__all__ = [
    "BACKUPS_DIR_NAME",
    "BUILTIN_AGENTS",
    "BUILTIN_NOTIFIERS",
    "CONFIG_FILE_NAME",
    "DATABASE_FILE_NAME",
    "DEFAULT_AGENT",
    "DEFAULT_ROUTE",
    "DESKTOP_NOTIFIER",
    "GITHUB_API_URL",
    "KEY_NAME",
    "LOG_FILE_NAME",
    "LOG_NOTIFIER",
    "AgentConfig",
    "BackupConfig",
    "CleanupConfig",
    "Config",
    "GitHubBudgetConfig",
    "GitHubConfig",
    "GitHubLogTailConfig",
    "GitHubPollConfig",
    "MetricsConfig",
    "NotifiersConfig",
    "ProjectConfig",
    "ReaperConfig",
    "RetentionPolicy",
    "ScmConfig",
    "ShutdownConfig",
    "Synchronous",
    "WebhookConfig",
    "format_address",
]

CONFIG_FILE_NAME: Final = "orchestrator.yaml"
DATABASE_FILE_NAME: Final = "orchestrator.db"
LOG_FILE_NAME: Final = "daemon.log"
BACKUPS_DIR_NAME: Final = "backups"

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
    github: str = ""
    """``owner/name`` on GitHub, when the origin URL does not say (or says otherwise)."""


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


class ShutdownConfig(msgspec.Struct, frozen=True, kw_only=True):
    drain_timeout: timedelta = timedelta(seconds=10)


GITHUB_API_URL: Final = "https://api.github.com"


class GitHubPollConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How often the observer asks: each repository's open-PR listing (``repo``), a PR's
    CI guards while CI runs (``pending``), once settled (``settled``) and while a draft
    (``draft``), and the unconditional detail backstop (``max_age``)."""

    repo: timedelta = timedelta(seconds=30)
    pending: timedelta = timedelta(seconds=15)
    settled: timedelta = timedelta(seconds=60)
    draft: timedelta = timedelta(seconds=120)
    max_age: timedelta = timedelta(minutes=5)


class GitHubLogTailConfig(msgspec.Struct, frozen=True, kw_only=True):
    lines: int = 30
    max_bytes: int = 8192


class GitHubBudgetConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Reserves of GitHub's rate limit left to the agents sharing the token: background
    polling stops at ``background_reserve``, a kick at ``kick_reserve``. Below 1 a
    fraction of the limit, else a number of requests."""

    background_reserve: float = 0.10
    kick_reserve: float = 0.02
    max_concurrency: int = 2


class GitHubConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The GitHub observer. ``host`` is where repositories live (their web URLs);
    ``graphql_url`` empty means next to ``api_url``; ``token_env`` names a variable read
    before the usual ones; ``webhook_secret`` verifies GitHub's webhook deliveries;
    ``merge_method`` is how an auto-merge or ``orchestrator pr merge`` merges."""

    enabled: bool = True
    api_url: str = GITHUB_API_URL
    graphql_url: str = ""
    host: str = "github.com"
    token_env: str = ""
    batch_size: int = 25
    kick_debounce: timedelta = timedelta(seconds=2)
    webhook_secret: str = ""
    merge_method: MergeMethod = MergeMethod.SQUASH
    poll: GitHubPollConfig = GitHubPollConfig()
    review_interval: timedelta = timedelta(minutes=2)
    log_tail: GitHubLogTailConfig = GitHubLogTailConfig()
    budget: GitHubBudgetConfig = GitHubBudgetConfig()


class ScmConfig(msgspec.Struct, frozen=True, kw_only=True):
    github: GitHubConfig = GitHubConfig()


class CleanupConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How long after its PR merged a session's agent is stopped and its worktree removed
    (the branch stays; uncommitted work is never deleted). None (``never``) keeps both."""

    after_merge: timedelta | None = timedelta(minutes=5)


def _default_routing() -> Mapping[Priority, tuple[str, ...]]:
    return MappingProxyType(dict.fromkeys(Priority, DEFAULT_ROUTE))


class BackupConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduled online backups: one every ``every``, the newest ``keep`` kept, in ``dir``
    (None: ``<data dir>/backups``)."""

    every: timedelta = timedelta(hours=6)
    keep: int = 10
    dir: Path | None = None


class MetricsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``address`` (``host:port``, loopback only) serves ``/metrics`` on a port of its own,
    without the daemon token; empty serves it on the API port, behind the token."""

    address: str = ""


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
    retention: RetentionPolicy = RetentionPolicy()
    """The janitor's rules; their defaults live in ``RetentionPolicy``, not here."""
    shutdown: ShutdownConfig = ShutdownConfig()
    scm: ScmConfig = ScmConfig()
    cleanup: CleanupConfig = CleanupConfig()
    backup: BackupConfig = BackupConfig()
    metrics: MetricsConfig = MetricsConfig()

    @property
    def backups_dir(self) -> Path:
        return self.backup.dir or self.data_dir / BACKUPS_DIR_NAME

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
