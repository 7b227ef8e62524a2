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

Every error is a ``ConfigError`` whose message starts with the file and names the key the
way the user wrote it, e.g. ``…/orchestrator.yaml: reaper.tick: "5 seconds" is not a
duration like "90s", …``. ``example_config()`` is a commented file with every section.

The parts: ``schema`` (the typed ``Config`` and every default), ``locations`` (data dir,
config file, address), ``loading`` (YAML → ``Config``) with ``fields`` (its strict structs
and durations) and ``github`` (the ``scm.github`` section), ``messages`` (errors that name
the key) and ``example`` (the commented example, package data ``example.yaml``).
"""

from __future__ import annotations

from orchestrator.config.example import example_config
from orchestrator.config.loading import load_config
from orchestrator.config.locations import (
    ENV_ADDR,
    ENV_CONFIG,
    ENV_DATA_DIR,
    config_path,
    data_dir_from_env,
    is_loopback,
    parse_address,
)
from orchestrator.config.schema import (
    BUILTIN_AGENTS,
    BUILTIN_NOTIFIERS,
    CONFIG_FILE_NAME,
    DATABASE_FILE_NAME,
    DEFAULT_AGENT,
    DEFAULT_ROUTE,
    DESKTOP_NOTIFIER,
    LOG_FILE_NAME,
    LOG_NOTIFIER,
    AgentConfig,
    CleanupConfig,
    Config,
    NotifiersConfig,
    ProjectConfig,
    ReaperConfig,
    RetentionPolicy,
    ShutdownConfig,
    Synchronous,
    WebhookConfig,
    format_address,
)

__all__ = [
    "BUILTIN_AGENTS",
    "BUILTIN_NOTIFIERS",
    "CONFIG_FILE_NAME",
    "DATABASE_FILE_NAME",
    "DEFAULT_AGENT",
    "DEFAULT_ROUTE",
    "DESKTOP_NOTIFIER",
    "ENV_ADDR",
    "ENV_CONFIG",
    "ENV_DATA_DIR",
    "LOG_FILE_NAME",
    "LOG_NOTIFIER",
    "AgentConfig",
    "CleanupConfig",
    "Config",
    "NotifiersConfig",
    "ProjectConfig",
    "ReaperConfig",
    "RetentionPolicy",
    "ShutdownConfig",
    "Synchronous",
    "WebhookConfig",
    "config_path",
    "data_dir_from_env",
    "example_config",
    "format_address",
    "is_loopback",
    "load_config",
    "parse_address",
]
