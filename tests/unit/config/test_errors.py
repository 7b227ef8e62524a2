"""Every bad value names its key and the file (orchestrator.config.loading with
.messages); YAML syntax errors give the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import Priority
from tests.unit.config.support import load

BAD = [
    ("reaper: {tick: 5 seconds}", 'reaper.tick: "5 seconds" is not a duration like "90s", "15m", "1h30m" or "1d"'),
    ("reaper: {tick: 5}", 'reaper.tick: 5 is not a duration like "90s"'),
    ("reaper: {probeTimeout: 0s}", 'reaper.probeTimeout: "0s" must be longer than zero'),
    ("reaper: {concurrency: 0}", "reaper.concurrency: expected an integer >= 1"),
    ("reaper: {concurrency: many}", "reaper.concurrency: expected an integer, got a string"),
    ("reaper: {tik: 5s}", "reaper.tik: unknown key (known keys: tick, probeTimeout, concurrency)"),
    ("reaper: [5s]", "reaper: expected a mapping, got a list"),
    ("retention: {changeLogMaxAge: 1w}", 'retention.changeLogMaxAge: "1w" is not a duration'),
    ("retention: {changeLogMaxRows: 0}", "retention.changeLogMaxRows: expected an integer >= 1"),
    ("retention: {interval: 0ms}", 'retention.interval: "0ms" must be longer than zero'),
    ("retention: {interval: often}", 'retention.interval: "often" is not a duration'),
    ("retention: {batchSize: 0}", "retention.batchSize: expected an integer >= 1"),
    ("retention: {outboxSettledMaxAge: 1w}", 'retention.outboxSettledMaxAge: "1w" is not a duration'),
    ("retention: {notificationReadMaxAge: 30}", "retention.notificationReadMaxAge: 30 is not a duration"),
    ("retention: {notificationsMaxRows: -1}", "retention.notificationsMaxRows: expected an integer >= 1"),
    ("retention: {checkRunsPerCheck: all}", "retention.checkRunsPerCheck: expected an integer, got a string"),
    ("retention: {terminatedHistoryMaxAge: 0d}", 'retention.terminatedHistoryMaxAge: "0d" must be longer than zero'),
    ("retention: {keepForever: true}", "retention.keepForever: unknown key (known keys: interval, batchSize, changeLogMaxAge"),
    ("shutdown: {drainTimeout: soon}", 'shutdown.drainTimeout: "soon" is not a duration'),
    ("database: {synchronous: sometimes}", 'database.synchronous: "sometimes" is not one of OFF, NORMAL, FULL'),
    ("database: {synchronous: true}", "database.synchronous: True is not one of OFF, NORMAL, FULL"),
    ("api: {allowRemote: maybe}", "api.allowRemote: expected true or false, got a string"),
    ("address: 8731", "address: expected a string, got an integer"),
    ("address: 127.0.0.1:99999", 'address: "127.0.0.1:99999": the port must be a number from 0 to 65535'),
    ("bogus: 1", "bogus: unknown key (known keys: address, database, projects"),
    ("[1, 2]", "expected a mapping of settings at the top level, got a list"),
    ("just text", "expected a mapping of settings at the top level, got a string"),
    ("projects: [a]", "projects: expected a mapping of project ids to projects, got a list"),
    ("projects: {My App: {path: /x}}", 'projects.My App: project id "My App" must be lowercase'),
    ("projects: {app: {}}", 'projects.app: missing required key "path"'),
    ("projects: {app: {path: ''}}", "projects.app.path: expected a non-empty string"),
    ("projects: {app: {path: /x, origin: y}}", "projects.app.origin: unknown key (known keys: path, repoOriginUrl, displayName, github)"),
    ("projects: {app: {path: /x, github: acme}}", 'projects.app.github: "acme" is not a repository like owner/name'),
    ("projects: {app: /x}", "projects.app: expected a mapping, got a string"),
    ("defaultAgent: nope", 'defaultAgent: unknown agent "nope" (known: aider, claude-code, codex, opencode)'),
    ("agents: {mine: {command: my-agent}}", "agents.mine.command: expected a list of strings"),
    ("agents: {mine: {command: [my-agent, 3]}}", "agents.mine.command: expected a list of strings"),
    ("agents: {mine: {command: []}}", "agents.mine.command: expected a non-empty list"),
    ("agents: {mine: {command: ['']}}", "agents.mine.command: the program (first item) is empty"),
    ("agents: {mine: {}}", 'agents.mine: missing required key "command"'),
    ("agents: {mine: {command: [a], restoreCommand: a}}", "agents.mine.restoreCommand: expected a list of strings or null"),
    ("agents: {mine: {command: [a], env: {PORT: 8080}}}", 'agents.mine.env: expected a mapping of names to strings (quote numbers: PORT: "8080")'),
    ("agents: {mine: {command: [a, '{promt}']}}", "agents.mine.command: unknown placeholder {promt} (known: {prompt}, {session_id}, {workspace_path})"),
    ("agents: {mine: {command: [a], restoreCommand: [a, '{prompt}']}}", "agents.mine.restoreCommand: unknown placeholder {prompt} (known: {agent_session_id})"),
    ("agents: {Mine: {command: [a]}}", 'agents.Mine: agent name "Mine" must be lowercase'),
    ("agents: {mine: {command: [a], shell: true}}", "agents.mine.shell: unknown key (known keys: command, restoreCommand, env, clearLine)"),
    ("agents: {mine: {command: [a], clearLine: [C-e, 'C-u ; kill-server']}}", 'agents.mine.clearLine: "C-u ; kill-server" is not a key name like C-u'),
    ("agents: [a]", "agents: expected a mapping of agent names to agents, got a list"),
    ("reactions: {ci-faild: {}}", "reactions.ci-faild: unknown reaction (known reactions: ci-failed,"),
    ("reactions: {ci-failed: {retries: -1}}", "reactions.ci-failed.retries: expected an integer >= 0"),
    ("reactions: {ci-failed: {action: auto-merge}}", "reactions.ci-failed.action: expected send-to-agent or notify"),
    ("reactions: {ci-failed: {priority: warning}}", "reactions.ci-failed.priority: expected urgent, action or info"),
    ("reactions: {agent-idle: {escalateAfter: 1h30}}", 'reactions.agent-idle.escalateAfter: "1h30" is not a duration like'),
    ("reactions: {ci-failed: {threshold: 10m}}", "reactions.ci-failed.threshold: unknown key (known keys: auto, action, message, priority, retries, escalateAfter)"),
    ("reactions: [ci-failed]", "reactions: expected a mapping of reaction keys, got list"),
    ("notifiers: {desktop: {enabled: maybe}}", "notifiers.desktop.enabled: expected true or false, got a string"),
    ("notifiers: {slack: {}}", "notifiers.slack: unknown key (known keys: desktop, webhooks)"),
    ("notifiers: {webhooks: {team: {url: 'ftp://x'}}}", "notifiers.webhooks.team.url: expected an absolute http(s) URL"),
    ("notifiers: {webhooks: {team: {}}}", 'notifiers.webhooks.team: missing required key "url"'),
    ("notifiers: {webhooks: {desktop: {url: 'http://x'}}}", 'notifiers.webhooks.desktop: "desktop" is a built-in notifier'),
    ("notifiers: {webhooks: [a]}", "notifiers.webhooks: expected a mapping of names to webhooks, got a list"),
    ("routing: {urgent: [log, pager]}", 'routing.urgent: unknown notifier "pager" (known: log, desktop)'),
    ("routing: {urgent: pager}", "routing.urgent: expected a list of notifier names"),
    ("routing: {warning: [log]}", "routing.warning: unknown key (known keys: urgent, action, info)"),
    ("scm: {gitlab: {}}", "scm.gitlab: unknown key (known keys: github)"),
    ("scm: {github: {enabled: sometimes}}", "scm.github.enabled: expected true or false, got a string"),
    ("scm: {github: {apiUrl: 'api.github.com'}}", 'scm.github.apiUrl: expected an absolute http(s) URL, got "api.github.com"'),
    ("scm: {github: {graphqlUrl: 'ftp://x/graphql'}}", "scm.github.graphqlUrl: expected an absolute http(s) URL"),
    ("scm: {github: {host: 'github.com/acme'}}", 'scm.github.host: "github.com/acme" is not a host name'),
    ("scm: {github: {tokenEnv: 'MY TOKEN'}}", 'scm.github.tokenEnv: "MY TOKEN" is not an environment variable name'),
    ("scm: {github: {batchSize: 26}}", "scm.github.batchSize: expected an integer <= 25"),
    ("scm: {github: {batchSize: 0}}", "scm.github.batchSize: expected an integer >= 1"),
    ("scm: {github: {kickDebounce: soon}}", 'scm.github.kickDebounce: "soon" is not a duration'),
    ("scm: {github: {reviewInterval: 0s}}", 'scm.github.reviewInterval: "0s" must be longer than zero'),
    ("scm: {github: {poll: {repo: 30}}}", "scm.github.poll.repo: 30 is not a duration"),
    ("scm: {github: {poll: {maxAge: 5 minutes}}}", 'scm.github.poll.maxAge: "5 minutes" is not a duration'),
    ("scm: {github: {poll: {often: 1s}}}", "scm.github.poll.often: unknown key (known keys: repo, pending, settled, draft, maxAge)"),
    ("scm: {github: {logTail: {lines: 0}}}", "scm.github.logTail.lines: expected an integer >= 1"),
    ("scm: {github: {logTail: {maxBytes: 100}}}", "scm.github.logTail.maxBytes: expected an integer >= 256"),
    ("scm: {github: {budget: {backgroundReserve: lots}}}", 'scm.github.budget.backgroundReserve: "lots" is not a number of requests (like 500) or a share of the limit (like "10%")'),
    ("scm: {github: {budget: {kickReserve: 100%}}}", 'scm.github.budget.kickReserve: "100%" must be below 100%'),
    ("scm: {github: {budget: {kickReserve: -5}}}", "scm.github.budget.kickReserve: -5 is not a number of requests"),
    ("scm: {github: {budget: {maxConcurrency: 0}}}", "scm.github.budget.maxConcurrency: expected an integer >= 1"),
    ("scm: {github: {webhookSecret: 42}}", "scm.github.webhookSecret: expected a string, got an integer"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD, ids=[text for text, _ in BAD])
def test_each_bad_value_names_its_key_and_the_file(
    text: str, message: str, data_dir: Path, env: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text + "\n", data_dir, env)
    assert str(caught.value).startswith(f"{data_dir / 'orchestrator.yaml'}: ")
    assert message in str(caught.value)


def test_a_webhook_routed_by_name_is_accepted(data_dir: Path, env: dict[str, str]) -> None:
    config = load(
        "notifiers: {webhooks: {pager: {url: 'https://p.example/x'}}}\nrouting: {urgent: [pager]}\n",
        data_dir,
        env,
    )
    assert config.routing[Priority.URGENT] == ("pager",)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("reaper:\n  tick: 5s\n   probeTimeout: 2s\n", ":3:"),
        ("routing: {urgent: [log, desktop}\n", ":1:"),
        ("a: 1\nb: [1, 2\nc: 3\n", ":3:"),
        ("agents:\n\tmine: {}\n", ":2:"),
    ],
)
def test_yaml_syntax_errors_give_the_line(
    text: str, where: str, data_dir: Path, env: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match="invalid YAML") as caught:
        load(text, data_dir, env)
    assert str(caught.value).startswith(f"{data_dir / 'orchestrator.yaml'}{where}")
