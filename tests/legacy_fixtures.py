"""Agent-orchestrator installations built by tests from its documented file formats: the
current layout (``projects/<id>/sessions/<id>.json``), older hash directories with flat
``key=value`` files and archives, its config files and its run file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

APP3: dict[str, Any] = {
    "worktree": "/home/dev/.agent-orchestrator/projects/my-app/worktrees/app-3",
    "branch": "feat/INT-1234",
    "tmuxName": "app-3",
    "issue": "INT-1234",
    "pr": "https://github.com/acme/my-app/pull/42",
    "project": "my-app",
    "agent": "claude-code",
    "createdAt": "2026-04-21T12:00:00.000Z",
    "runtimeHandle": {
        "id": "app-3",
        "runtimeName": "tmux",
        "data": {"createdAt": 1776772800000, "workspacePath": "/w/app-3"},
    },
    "lifecycle": {
        "version": 2,
        "session": {
            "kind": "worker",
            "state": "working",
            "reason": "fixing_ci",
            "startedAt": "2026-04-21T12:00:05.000Z",
            "completedAt": None,
            "terminatedAt": None,
            "lastTransitionAt": "2026-04-21T13:10:00.000Z",
        },
        "pr": {
            "state": "open",
            "reason": "ci_failing",
            "number": 42,
            "url": "https://github.com/acme/my-app/pull/42",
            "lastObservedAt": "2026-04-21T13:10:00.000Z",
        },
        "runtime": {
            "state": "alive",
            "reason": "process_running",
            "lastObservedAt": "2026-04-21T13:10:00.000Z",
            "handle": {"id": "app-3", "runtimeName": "tmux", "data": {}},
            "tmuxName": "app-3",
        },
    },
    "displayName": "Add user authentication flow",
    "lifecycleEvidence": "ci_failing",
    "prEnrichment": json.dumps(
        {
            "state": "open",
            "ciStatus": "failing",
            "reviewDecision": "none",
            "mergeable": False,
            "isDraft": False,
            "hasConflicts": False,
            "ciChecks": [{"name": "test", "status": "failed", "url": "u"}],
        }
    ),
    "lastCIFailureDispatchHash": "b1946ac92492d234",
    "agentReportedPrUrl": "https://github.com/acme/my-app/pull/42",
    "agentReportedPrNumber": "42",
    "agentReportedState": "pr_created",
    "agentReportedAt": "2026-04-21T12:58:31Z",
    "agentReportedPrIsDraft": "false",
    "claudeSessionUuid": "0b6f8d0e-5a43-4f44-9a8e-0c2f1d7e9a11",
}

ORCHESTRATOR: dict[str, Any] = {
    "worktree": "/w/app-orchestrator",
    "branch": "orchestrator/app-orchestrator",
    "tmuxName": "app-orchestrator",
    "project": "my-app",
    "agent": "claude-code",
    "createdAt": "2026-04-20T09:00:00.000Z",
    "runtimeHandle": {"id": "app-orchestrator", "runtimeName": "tmux", "data": {}},
    "lifecycle": {
        "version": 2,
        "session": {
            "kind": "orchestrator",
            "state": "working",
            "reason": "task_in_progress",
            "startedAt": "2026-04-20T09:00:03.000Z",
            "terminatedAt": None,
            "lastTransitionAt": "2026-04-21T08:15:00.000Z",
        },
        "pr": {"state": "none", "reason": "not_created", "number": None, "url": None},
    },
    "role": "orchestrator",
    "displayName": "Orchestrator: my-app",
}

V1_APP1 = "\n".join(
    [
        "project=my-app",
        "worktree=/w/app-1",
        "branch=session/app-1",
        "status=pr_open",
        "tmuxName=a3b4c5d6e7f8-app-1",
        "pr=https://github.com/acme/my-app/pull/40",
        "agent=codex",
        "createdAt=2026-04-18T08:30:00.000Z",
        'runtimeHandle={"id":"a3b4c5d6e7f8-app-1","runtimeName":"tmux","data":'
        '{"createdAt":1776501000000,"workspacePath":"/w/app-1"}}',
        "stateVersion=2",
        'statePayload={"version":2,"session":{"kind":"worker","state":"idle",'
        '"reason":"awaiting_external_review","startedAt":"2026-04-18T08:30:02.000Z",'
        '"completedAt":null,"terminatedAt":null,"lastTransitionAt":"2026-04-18T11:02:00.000Z"},'
        '"pr":{"state":"open","reason":"review_pending","number":40,'
        '"url":"https://github.com/acme/my-app/pull/40","lastObservedAt":null},'
        '"runtime":{"state":"alive","handle":null,"tmuxName":"a3b4c5d6e7f8-app-1"}}',
        "userPrompt=Refactor the billing module to use the new invoice API",
        "prAutoDetect=on",
        "dashboardPort=3000",
        "terminalWsPort=14800",
        "directTerminalWsPort=14801",
        "detectingAttempts=0",
    ]
)

V1_ARCHIVED_APP2 = "\n".join(
    [
        "project=my-app",
        "worktree=/w/app-2",
        "branch=feat/INT-1200",
        "status=killed",
        "tmuxName=a3b4c5d6e7f8-app-2",
        "issue=INT-1200",
        "agent=claude-code",
        "createdAt=2026-04-19T10:02:00.000Z",
        "summary=Started on INT-1200; abandoned after scope change",
    ]
)


def write(path: Path, content: str | dict[str, Any] | list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content, indent=2) + "\n"
    path.write_text(text)
    return path


def set_mtime(path: Path, epoch: float) -> None:
    os.utime(path, (epoch, epoch))


def config(root: Path, projects: dict[str, Any], **top: Any) -> Path:
    """The global ``config.yaml`` as the legacy daemon leaves it after sanitizing."""
    body = {"port": 3000, "defaults": {"agent": "claude-code"}, "projects": projects, **top}
    return write(root / "config.yaml", yaml.safe_dump(body))


def my_app_project(src: Path, **extra: Any) -> dict[str, Any]:
    return {
        "projectId": "my-app",
        "path": str(src),
        "repo": {
            "owner": "acme",
            "name": "my-app",
            "platform": "github",
            "originUrl": "https://github.com/acme/my-app",
        },
        "defaultBranch": "main",
        "sessionPrefix": "app",
        "registeredAt": 1776500000,  # epoch seconds
        "displayName": "My App",
        **extra,
    }


LOCAL_CONFIG = """\
tracker: { plugin: linear, teamId: "team-123" }
symlinks: [.env]
agentConfig: { permissions: permissionless, model: opus }
worker: { agent: codex }
reactions:
  ci-failed: { auto: true, action: send-to-agent, retries: 3, escalateAfter: 2 }
  approved-and-green: { auto: false, action: notify, priority: action }
"""


def v2_installation(tmp: Path) -> Path:
    """Examples (1) and (3a) with the config trio, under ``tmp/ao``."""
    root = tmp / "ao"
    src = tmp / "src" / "my-app"
    write(src / "agent-orchestrator.yaml", LOCAL_CONFIG)
    config(root, {"my-app": my_app_project(src)})
    sessions = root / "projects" / "my-app" / "sessions"
    write(sessions / "app-3.json", APP3)
    write(sessions / "app-orchestrator.json", ORCHESTRATOR)
    write(
        root / "portfolio" / "registered.json",
        {"version": 1, "projects": [{"path": str(src), "addedAt": "2026-04-18T08:00:00.000Z"}]},
    )
    return root


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``root`` with its mtime (ns) and bytes."""
    return {
        str(p): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
