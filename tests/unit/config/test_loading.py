"""Loading the config file: defaults, where files are, every section, the API address and
its overrides (orchestrator.config.loading and .locations)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.config import (
    ReaperConfig,
    RetentionPolicy,
    ShutdownConfig,
    Synchronous,
    config_path,
    data_dir_from_env,
    load_config,
    parse_address,
)
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import Priority, ReactionAction, ReactionKey
from orchestrator.domain.reactions import DEFAULT_REACTIONS
from tests.unit.config.support import load

# --- defaults and locations --------------------------------------------------------------


def test_a_missing_file_means_every_default(data_dir: Path, env: dict[str, str]) -> None:
    config = load_config(env=env)
    assert config.config_path == data_dir / "orchestrator.yaml"
    assert not config.config_loaded
    assert (config.host, config.port, config.address) == ("127.0.0.1", 8731, "127.0.0.1:8731")
    assert config.data_dir == data_dir
    assert config.database_path == data_dir / "orchestrator.db"
    assert config.run_file == data_dir / "daemon.json"
    assert config.log_file == data_dir / "daemon.log"
    assert config.synchronous is Synchronous.NORMAL
    assert config.default_agent == "claude-code"
    assert dict(config.projects) == {}
    assert dict(config.agents) == {}
    assert dict(config.policy.reactions) == dict(DEFAULT_REACTIONS)
    assert config.notifiers.desktop
    assert dict(config.notifiers.webhooks) == {}
    assert dict(config.routing) == dict.fromkeys(Priority, ("log", "desktop"))
    assert config.reaper.tick == timedelta(seconds=5)
    assert config.reaper.probe_timeout == timedelta(seconds=5)
    assert config.reaper.concurrency == 64
    assert config.retention.change_log_max_age == timedelta(days=7)
    assert config.retention.change_log_max_rows == 100_000
    assert config.retention == RetentionPolicy()  # its defaults are the policy's own
    assert config.shutdown.drain_timeout == timedelta(seconds=10)
    assert not config.allow_remote


@pytest.mark.parametrize("text", ["", "# only a comment\n", "reaper:\nretention: ~\n"])
def test_empty_files_and_empty_sections_mean_defaults(
    text: str, data_dir: Path, env: dict[str, str]
) -> None:
    config = load(text, data_dir, env)
    assert config.config_loaded
    assert config.reaper.tick == timedelta(seconds=5)
    assert config.retention.change_log_max_rows == 100_000


def test_keys_left_out_keep_the_schema_defaults(data_dir: Path, env: dict[str, str]) -> None:
    text = (
        "reaper: {tick: 1m}\nretention: {changeLogMaxRows: 10}\nshutdown: {}\n"
        "notifiers: {desktop: {}, webhooks: {ops: {url: 'https://ops.example/x'}}}\n"
        "projects: {app: {path: /srv/app}}\nagents: {bare: {command: [bare]}}\n"
        "database: {}\napi: {}\n"
    )
    config = load(text, data_dir, env)
    assert config.reaper == ReaperConfig(tick=timedelta(minutes=1))
    assert config.retention == RetentionPolicy(change_log_max_rows=10)
    assert config.shutdown == ShutdownConfig()
    assert config.notifiers.desktop
    assert not config.notifiers.webhooks["ops"].slack
    assert (config.projects["app"].repo_origin_url, config.projects["app"].display_name) == ("", "")
    assert (config.agents["bare"].restore_command, dict(config.agents["bare"].env)) == (None, {})
    assert config.synchronous is Synchronous.NORMAL
    assert not config.allow_remote
    assert config.default_agent == "claude-code"


def test_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir_from_env({"ORCHESTRATOR_DATA_DIR": "/srv/orch"}) == Path("/srv/orch")
    assert data_dir_from_env({"ORCHESTRATOR_DATA_DIR": "~/orch"}) == tmp_path / "home" / "orch"
    assert data_dir_from_env({"XDG_DATA_HOME": "/xdg"}) == Path("/xdg/orchestrator")
    fallback = tmp_path / "home" / ".local" / "share" / "orchestrator"
    assert data_dir_from_env({"XDG_DATA_HOME": "relative/ignored"}) == fallback
    assert data_dir_from_env({"ORCHESTRATOR_DATA_DIR": " "}) == fallback
    assert data_dir_from_env({}) == fallback


def test_config_path_resolution(tmp_path: Path, data_dir: Path, env: dict[str, str]) -> None:
    assert config_path(env=env) == (data_dir / "orchestrator.yaml", False)
    named = tmp_path / "elsewhere.yaml"
    assert config_path(named, env=env) == (named, True)
    assert config_path(env={**env, "ORCHESTRATOR_CONFIG": str(named)}) == (named, True)


def test_a_named_config_file_must_exist(tmp_path: Path, env: dict[str, str]) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(missing, env=env)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(env={**env, "ORCHESTRATOR_CONFIG": str(missing)})


def test_the_config_path_can_be_passed_in(tmp_path: Path, env: dict[str, str]) -> None:
    file = tmp_path / "custom.yaml"
    file.write_text("reaper: {tick: 1m}\n")
    config = load_config(file, env=env)
    assert config.config_path == file
    assert config.config_loaded
    assert config.reaper.tick == timedelta(minutes=1)


# --- every section -----------------------------------------------------------------------

FULL = """
address: "[::1]:0"
database: {synchronous: FULL}
projects:
  my-app:
    path: ~/src/my-app
    repoOriginUrl: https://github.com/me/my-app.git
    displayName: My App
  rel_2:
    path: repos/two
defaultAgent: mine
agents:
  mine:
    command: [my-agent, --message, "{prompt}", "--cwd={workspace_path}"]
    restoreCommand: [my-agent, --resume, "{agent_session_id}"]
    env: {MODEL: fast, PORT: "8080"}
  bare:
    command: [bare]
reactions:
  ci-failed: {retries: 5}
  agent-idle: {escalateAfter: 1h30m, auto: false}
  pr-merged: {action: notify, priority: urgent, message: Shipped.}
notifiers:
  desktop: {enabled: false}
  webhooks:
    team: {url: "https://hooks.example.com/T/B", slack: true}
    ops: {url: "http://127.0.0.1:9000/hook"}
routing:
  urgent: [log, desktop, team, ops, team]
  info: [log]
reaper: {tick: 90s, probeTimeout: 2s, concurrency: 8}
retention: {changeLogMaxAge: 1d, changeLogMaxRows: 5000}
shutdown: {drainTimeout: 1m}
api: {allowRemote: false}
"""


def test_every_section(tmp_path: Path, data_dir: Path, env: dict[str, str]) -> None:
    config = load(FULL, data_dir, {**env, "HOME": str(tmp_path / "home")})
    assert (config.host, config.port, config.address) == ("::1", 0, "[::1]:0")
    assert config.synchronous is Synchronous.FULL

    app = config.projects["my-app"]
    assert app.path == Path("~/src/my-app").expanduser()
    assert (app.repo_origin_url, app.display_name) == ("https://github.com/me/my-app.git", "My App")
    assert config.projects["rel_2"].path == data_dir / "repos" / "two"  # relative to the file

    assert config.default_agent == "mine"
    mine = config.agents["mine"]
    assert mine.command == ("my-agent", "--message", "{prompt}", "--cwd={workspace_path}")
    assert mine.restore_command == ("my-agent", "--resume", "{agent_session_id}")
    assert dict(mine.env) == {"MODEL": "fast", "PORT": "8080"}
    assert config.agents["bare"].restore_command is None

    ci = config.policy[ReactionKey.CI_FAILED]
    assert ci.retries == 5
    assert ci.message == DEFAULT_REACTIONS[ReactionKey.CI_FAILED].message  # deep merge
    assert ci.action is ReactionAction.SEND_TO_AGENT
    idle = config.policy[ReactionKey.AGENT_IDLE]
    assert (idle.escalate_after, idle.auto) == (timedelta(hours=1, minutes=30), False)
    merged = config.policy[ReactionKey.PR_MERGED]
    assert (merged.priority, merged.message) == (Priority.URGENT, "Shipped.")

    assert not config.notifiers.desktop
    assert config.notifiers.webhooks["team"].slack
    assert config.notifiers.webhooks["ops"].url == "http://127.0.0.1:9000/hook"
    assert not config.notifiers.webhooks["ops"].slack
    # desktop is disabled, so it is dropped from every route; duplicates collapse
    assert config.routing[Priority.URGENT] == ("log", "team", "ops")
    assert config.routing[Priority.ACTION] == ("log",)  # the default, minus desktop
    assert config.routing[Priority.INFO] == ("log",)

    assert config.reaper.tick == timedelta(seconds=90)
    assert config.reaper.probe_timeout == timedelta(seconds=2)
    assert config.reaper.concurrency == 8
    assert config.retention.change_log_max_age == timedelta(days=1)
    assert config.retention.change_log_max_rows == 5000
    assert config.shutdown.drain_timeout == timedelta(minutes=1)


def test_every_retention_rule_is_configurable(data_dir: Path, env: dict[str, str]) -> None:
    text = (
        "retention:\n"
        "  interval: 1m30s\n"
        "  batchSize: 50\n"
        "  changeLogMaxAge: 2d\n"
        "  changeLogMaxRows: 700\n"
        "  outboxSettledMaxAge: 3h\n"
        "  notificationReadMaxAge: 4d\n"
        "  notificationsMaxRows: 90\n"
        "  checkRunsPerCheck: 6\n"
        "  terminatedHistoryMaxAge: 500ms\n"
    )
    assert load(text, data_dir, env).retention == RetentionPolicy(
        interval=timedelta(minutes=1, seconds=30),
        batch_size=50,
        change_log_max_age=timedelta(days=2),
        change_log_max_rows=700,
        outbox_settled_max_age=timedelta(hours=3),
        notification_read_max_age=timedelta(days=4),
        notifications_max_rows=90,
        check_runs_per_check=6,
        terminated_history_max_age=timedelta(milliseconds=500),
    )


def test_every_duration_accepts_milliseconds(data_dir: Path, env: dict[str, str]) -> None:
    text = (
        "reaper: {tick: 250ms, probeTimeout: 1s500ms}\n"
        "shutdown: {drainTimeout: 750ms}\n"
        "reactions: {agent-idle: {escalateAfter: 1m1ms}}\n"
    )
    config = load(text, data_dir, env)
    assert config.reaper.tick == timedelta(milliseconds=250)
    assert config.reaper.probe_timeout == timedelta(seconds=1, milliseconds=500)
    assert config.shutdown.drain_timeout == timedelta(milliseconds=750)
    idle = config.policy[ReactionKey.AGENT_IDLE]
    assert idle.escalate_after == timedelta(minutes=1, milliseconds=1)


def test_partial_routing_keeps_the_default_for_other_priorities(
    data_dir: Path, env: dict[str, str]
) -> None:
    config = load("routing: {urgent: [log]}\n", data_dir, env)
    assert config.routing[Priority.URGENT] == ("log",)
    assert config.routing[Priority.ACTION] == ("log", "desktop")
    assert config.routing[Priority.INFO] == ("log", "desktop")


@pytest.mark.parametrize(
    ("written", "expected"),
    [("OFF", Synchronous.OFF), ("off", Synchronous.OFF), ("normal", Synchronous.NORMAL)],
)
def test_synchronous_accepts_yaml_off_and_any_case(
    written: str, expected: Synchronous, data_dir: Path, env: dict[str, str]
) -> None:
    # YAML 1.1 reads a bare OFF as false; the file still means "OFF".
    assert load(f"database: {{synchronous: {written}}}\n", data_dir, env).synchronous is expected


# --- the address and its overrides -------------------------------------------------------


def test_the_environment_address_wins(data_dir: Path, env: dict[str, str]) -> None:
    config = load(
        "address: 127.0.0.1:9000\n", data_dir, {**env, "ORCHESTRATOR_ADDR": "localhost:0"}
    )
    assert (config.host, config.port) == ("localhost", 0)
    assert load("address: 127.0.0.1:9000\n", data_dir, env).port == 9000


@pytest.mark.parametrize(
    "address", ["0.0.0.0:8731", "192.168.1.5:80", "example.com:8731", "[::]:1"]
)
def test_a_non_loopback_address_is_refused_unless_allowed(
    address: str, data_dir: Path, env: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match=r"address: .* is not a loopback address.*allowRemote"):
        load(f'address: "{address}"\n', data_dir, env)
    with pytest.raises(ConfigError, match=r"ORCHESTRATOR_ADDR: .* is not a loopback address"):
        load("", data_dir, {**env, "ORCHESTRATOR_ADDR": address})
    config = load(f'address: "{address}"\napi: {{allowRemote: true}}\n', data_dir, env)
    assert config.allow_remote
    assert config.address == address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8731", ("127.0.0.1", 8731)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:65535", ("::1", 65535)),
        (" 127.0.0.2:1 ", ("127.0.0.2", 1)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("127.0.0.1", "is not host:port"),
        (":8731", "is not host:port"),
        ("::1:8731", "is not host:port"),
        ("[::1]8731", "is not host:port"),
        ("[nope]:1", "is not an IPv6 address"),
        ("127.0.0.1:65536", "from 0 to 65535"),
        ("127.0.0.1:-1", "from 0 to 65535"),
        ("127.0.0.1:http", "from 0 to 65535"),
    ],
)
def test_parse_address_rejects(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_address(text)


def test_a_bad_environment_address_names_the_variable(data_dir: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r'ORCHESTRATOR_ADDR: "nope" is not host:port'):
        load_config(env={**env, "ORCHESTRATOR_ADDR": "nope"})


def test_numeric_ids_are_read_as_text(data_dir: Path, env: dict[str, str]) -> None:
    config = load("projects: {2024: {path: /srv/app}}\n", data_dir, env)
    assert config.projects["2024"].path == Path("/srv/app")
