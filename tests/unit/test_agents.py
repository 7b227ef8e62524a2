"""Agent launch/restore commands and the environment an agent process gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.agents import (
    AiderAgent,
    ClaudeCodeAgent,
    CodexAgent,
    CustomAgent,
    OpenCodeAgent,
    agent_for,
    builtin_agent_names,
    clear_line_keys,
    session_environment,
)
from orchestrator.config import AgentConfig, load_config
from orchestrator.domain.errors import InvalidInputError
from orchestrator.domain.model import AgentHarness
from orchestrator.ports import Agent, LaunchConfig

PROMPT = "Fix #12: the login button; don't touch `main`.\nThen open a PR."
WITH_PROMPT = LaunchConfig(session_id="app-1", workspace_path="/w/app-1", prompt=PROMPT)
NO_PROMPT = LaunchConfig(session_id="app-1", workspace_path="/w/app-1")
UUID = "0b9e6d3c-6a51-4f0e-9d43-2f1c7f0f6a10"


@pytest.mark.parametrize(
    ("agent", "launch", "bare", "restore"),
    [
        (
            ClaudeCodeAgent(),
            ("claude", "--", PROMPT),
            ("claude",),
            ("claude", "--resume", UUID),
        ),
        (CodexAgent(), ("codex", "--", PROMPT), ("codex",), ("codex", "resume", UUID)),
        (
            AiderAgent(),
            ("aider", "--message", PROMPT),
            ("aider",),
            ("aider", "--restore-chat-history"),
        ),
        (
            OpenCodeAgent(),
            ("opencode", "--prompt", PROMPT),
            ("opencode",),
            ("opencode", "--session", UUID),
        ),
    ],
)
def test_builtin_commands(
    agent: Agent,
    launch: tuple[str, ...],
    bare: tuple[str, ...],
    restore: tuple[str, ...],
) -> None:
    assert tuple(agent.launch_command(WITH_PROMPT)) == launch
    assert tuple(agent.launch_command(NO_PROMPT)) == bare
    assert tuple(agent.restore_command(UUID)) == restore


def test_a_prompt_that_looks_like_an_option_stays_an_argument() -> None:
    config = LaunchConfig(session_id="app-1", workspace_path="/w", prompt="--dangerous")
    assert tuple(ClaudeCodeAgent().launch_command(config)) == ("claude", "--", "--dangerous")
    assert tuple(AiderAgent().launch_command(config)) == ("aider", "--message", "--dangerous")


def test_executable_and_extra_arguments_are_configurable() -> None:
    agent = ClaudeCodeAgent(
        executable="/opt/claude/bin/claude", extra_args=["--model", "opus"], env={"A": "1"}
    )
    assert tuple(agent.launch_command(WITH_PROMPT)) == (
        "/opt/claude/bin/claude",
        "--model",
        "opus",
        "--",
        PROMPT,
    )
    assert tuple(agent.restore_command(UUID)) == (
        "/opt/claude/bin/claude",
        "--model",
        "opus",
        "--resume",
        UUID,
    )
    assert dict(agent.environment(WITH_PROMPT)) == {"A": "1"}


@pytest.mark.parametrize("bad", ["", "-rf", "--resume", "a b", "id\n", "x;y", "é"])
def test_restore_rejects_agent_session_ids_that_are_not_ids(bad: str) -> None:
    for agent in (ClaudeCodeAgent(), CodexAgent(), OpenCodeAgent()):
        with pytest.raises(InvalidInputError):
            agent.restore_command(bad)


def test_opencode_style_ids_are_accepted() -> None:
    assert tuple(OpenCodeAgent().restore_command("ses_01JX9abc-def")) == (
        "opencode",
        "--session",
        "ses_01JX9abc-def",
    )


# --- custom agents -------------------------------------------------------------------------


def test_custom_agent_substitutes_placeholders_inside_arguments() -> None:
    agent = CustomAgent(
        "mine",
        ["mytool", "--id={session_id}", "--cwd", "{workspace_path}", "--message={prompt}"],
    )
    assert tuple(agent.launch_command(WITH_PROMPT)) == (
        "mytool",
        "--id=app-1",
        "--cwd",
        "/w/app-1",
        f"--message={PROMPT}",
    )


def test_custom_agent_appends_the_prompt_when_not_placed() -> None:
    agent = CustomAgent("mine", ["mytool", "--fast"])
    assert tuple(agent.launch_command(WITH_PROMPT)) == ("mytool", "--fast", PROMPT)
    assert tuple(agent.launch_command(NO_PROMPT)) == ("mytool", "--fast")


def test_custom_agent_drops_a_bare_prompt_argument_when_there_is_no_prompt() -> None:
    agent = CustomAgent("mine", ["mytool", "{prompt}", "--verbose"])
    assert tuple(agent.launch_command(NO_PROMPT)) == ("mytool", "--verbose")
    assert tuple(agent.launch_command(WITH_PROMPT)) == ("mytool", PROMPT, "--verbose")


def test_custom_agent_substitutes_values_only_once() -> None:
    agent = CustomAgent("mine", ["mytool", "{prompt}", "{session_id}"])
    config = LaunchConfig(session_id="app-1", workspace_path="/w", prompt="say {session_id} {x}")
    assert tuple(agent.launch_command(config)) == ("mytool", "say {session_id} {x}", "app-1")


def test_custom_agent_restore_command() -> None:
    placed = CustomAgent("a", ["t"], restore_command=["t", "--resume={agent_session_id}", "-v"])
    assert tuple(placed.restore_command(UUID)) == ("t", f"--resume={UUID}", "-v")
    appended = CustomAgent("b", ["t"], restore_command=["t", "resume"])
    assert tuple(appended.restore_command(UUID)) == ("t", "resume", UUID)
    with pytest.raises(InvalidInputError, match="no restore command"):
        CustomAgent("c", ["t"]).restore_command(UUID)
    with pytest.raises(InvalidInputError):
        appended.restore_command("-x")


def test_custom_agent_requires_a_command() -> None:
    with pytest.raises(InvalidInputError):
        CustomAgent("mine", [])
    with pytest.raises(InvalidInputError):
        CustomAgent("mine", [""])
    with pytest.raises(InvalidInputError):
        CustomAgent("mine", ["t"], restore_command=[])


# --- environment ---------------------------------------------------------------------------


def test_session_environment_sets_all_five_variables_even_when_empty() -> None:
    env = session_environment(
        session_id="app-1", project_id="app", issue_id="", hook_url="", hook_token=""
    )
    assert env == {
        "ORCHESTRATOR_SESSION_ID": "app-1",
        "ORCHESTRATOR_PROJECT_ID": "app",
        "ORCHESTRATOR_ISSUE_ID": "",
        "ORCHESTRATOR_HOOK_URL": "",
        "ORCHESTRATOR_HOOK_TOKEN": "",
    }


# --- registry ------------------------------------------------------------------------------


@pytest.mark.parametrize("harness", [h for h in AgentHarness if h is not AgentHarness.NONE])
def test_every_harness_has_a_builtin_agent(harness: AgentHarness) -> None:
    agent = agent_for(harness.value, {})
    assert agent.name == harness.value
    assert agent.launch_command(NO_PROMPT)


def test_a_configured_agent_wins_over_a_builtin_of_the_same_name() -> None:
    custom = {
        "claude-code": AgentConfig(command=("claude", "--dangerously-skip-permissions")),
        "mine": AgentConfig(command=("mytool",), env={"K": "v"}),
    }
    claude = agent_for("claude-code", custom)
    assert tuple(claude.launch_command(WITH_PROMPT)) == (
        "claude",
        "--dangerously-skip-permissions",
        PROMPT,
    )
    mine = agent_for("mine", custom)
    assert mine.name == "mine"
    assert dict(mine.environment(NO_PROMPT)) == {"K": "v"}


def test_unknown_agent_is_invalid_input_naming_the_choices() -> None:
    with pytest.raises(InvalidInputError, match="unknown agent 'cursor'") as info:
        agent_for("cursor", {"mine": AgentConfig(command=("t",))})
    assert "claude-code" in str(info.value)
    assert "mine" in str(info.value)


def test_an_agent_from_the_config_file_launches_and_restores(tmp_path: Path) -> None:
    file = tmp_path / "orchestrator.yaml"
    file.write_text(
        "agents:\n  t:\n    command: [t, '{prompt}']\n    restoreCommand: [t, -r]\n"
        "    env: {A: '1'}\n"
    )
    config = load_config(file, env={"ORCHESTRATOR_DATA_DIR": str(tmp_path)})
    agent = agent_for("t", config.agents)
    assert tuple(agent.restore_command(UUID)) == ("t", "-r", UUID)
    assert tuple(agent.launch_command(WITH_PROMPT)) == ("t", PROMPT)
    assert dict(agent.environment(WITH_PROMPT)) == {"A": "1"}


def test_keys_that_clear_a_half_typed_line_per_agent(tmp_path: Path) -> None:
    file = tmp_path / "orchestrator.yaml"
    file.write_text(
        "agents:\n  tui:\n    command: [tui]\n    clearLine: [End, C-u]\n"
        "  plain:\n    command: [plain]\n"
        "  claude-code:\n    command: [claude, --verbose]\n"
    )
    custom = load_config(file, env={"ORCHESTRATOR_DATA_DIR": str(tmp_path)}).agents
    assert clear_line_keys("tui", custom) == ("End", "C-u")
    # A program the daemon does not know gets no keys unless its config names them; a
    # configured agent that takes a built-in's name is such a program too.
    assert clear_line_keys("plain", custom) == ()
    assert clear_line_keys("claude-code", custom) == ()
    assert clear_line_keys("nobody", custom) == ()
    for builtin in builtin_agent_names():
        assert clear_line_keys(builtin, {}) == ("C-e", "C-u")
