"""Agent launch/restore commands and the environment an agent process gets."""

from __future__ import annotations

import os
import uuid
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
        (AiderAgent(), ("aider", "--message", PROMPT), ("aider",), None),
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
    restore: tuple[str, ...] | None,
) -> None:
    assert tuple(agent.launch_command(WITH_PROMPT)) == launch
    assert tuple(agent.launch_command(NO_PROMPT)) == bare
    if restore is None:
        assert agent.resume_unsupported() == "aider has no conversation ids to resume"
        with pytest.raises(InvalidInputError, match=r"^aider has no conversation ids to resume$"):
            agent.restore_command(UUID)
    else:
        assert agent.resume_unsupported() == ""
        assert tuple(agent.restore_command(UUID)) == restore


def test_claude_code_is_launched_with_the_conversation_id_chosen_for_it() -> None:
    agent = ClaudeCodeAgent()
    chosen = agent.choose_session_id()
    assert str(uuid.UUID(chosen)) == chosen
    assert agent.choose_session_id() != chosen  # fresh each time
    config = LaunchConfig(session_id="app-1", workspace_path="/w", prompt=PROMPT,
                          agent_session_id=UUID)  # fmt: skip
    assert tuple(agent.launch_command(config)) == ("claude", "--session-id", UUID, "--", PROMPT)
    # The agents that choose their own ids are launched without one.
    for other in (CodexAgent(), AiderAgent(), OpenCodeAgent()):
        assert other.choose_session_id() == ""


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


def test_a_custom_agent_that_takes_a_conversation_id_gets_one_chosen() -> None:
    agent = CustomAgent("mine", ["mytool", "--conversation={agent_session_id}", "{prompt}"])
    chosen = agent.choose_session_id()
    assert str(uuid.UUID(chosen)) == chosen
    config = LaunchConfig(session_id="app-1", workspace_path="/w", prompt="go",
                          agent_session_id=chosen)  # fmt: skip
    assert tuple(agent.launch_command(config)) == ("mytool", f"--conversation={chosen}", "go")
    assert CustomAgent("plain", ["mytool"]).choose_session_id() == ""
    assert CustomAgent("plain", ["mytool"]).resume_unsupported() == (
        "agent plain has no restore command configured (restoreCommand)"
    )
    assert CustomAgent("r", ["t"], restore_command=["t", "-r"]).resume_unsupported() == ""


# --- installed executables -----------------------------------------------------------------


def executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_a_builtin_agent_must_be_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InvalidInputError) as raised:
        ClaudeCodeAgent().check_installed()
    assert str(raised.value) == (
        "agent claude-code: `claude` is not on PATH: install it, or point "
        "agents.claude-code.command at it in the config"
    )
    executable(tmp_path / "claude")
    ClaudeCodeAgent().check_installed()
    ClaudeCodeAgent().check_installed(resume=True)
    # The agent's own PATH, when it sets one, is where it is looked up.
    with pytest.raises(InvalidInputError, match="`claude` is not on PATH"):
        ClaudeCodeAgent(env={"PATH": str(tmp_path / "elsewhere")}).check_installed()


def test_a_custom_agent_s_executable_is_its_first_argument(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    tool = executable(tmp_path / "mytool")
    with pytest.raises(InvalidInputError) as raised:
        CustomAgent("mine", ["no-such-tool", "{prompt}"]).check_installed()
    assert str(raised.value) == (
        "agent mine: `no-such-tool` is not on PATH: fix agents.mine.command in the config"
    )
    CustomAgent("mine", ["mytool"]).check_installed()
    CustomAgent("mine", [str(tool)]).check_installed()
    with pytest.raises(InvalidInputError, match=r"/nowhere/tool is not an executable file"):
        CustomAgent("mine", ["/nowhere/tool"]).check_installed()
    (tmp_path / "plain.txt").write_text("not executable")
    with pytest.raises(InvalidInputError, match="is not an executable file"):
        CustomAgent("mine", [str(tmp_path / "plain.txt")]).check_installed()
    # The restore command is checked only for a restore.
    resuming = CustomAgent("mine", ["mytool"], restore_command=["gone-tool", "-r"])
    resuming.check_installed()
    with pytest.raises(
        InvalidInputError, match=r"`gone-tool` is not on PATH: fix agents\.mine\.restoreCommand"
    ):
        resuming.check_installed(resume=True)
    # Paths resolved in the worktree cannot be checked before it exists.
    CustomAgent("mine", ["./run-agent.sh"]).check_installed()
    CustomAgent("mine", ["{workspace_path}/run.sh"]).check_installed()
    assert os.environ["PATH"] == str(tmp_path)


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
