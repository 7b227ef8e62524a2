"""How to start and resume each kind of coding agent.

Built-in agents (names as in ``AgentHarness``):

==============  ======================================  ====================================
agent           launch (prompt ``P``)                   restore (agent session ``ID``)
==============  ======================================  ====================================
claude-code     ``claude [args] --session-id ID -- P``  ``claude [args] --resume ID``
codex           ``codex [args] -- P``                   ``codex [args] resume ID``
aider           ``aider [args] --message P``            none: aider has no conversation ids
opencode        ``opencode [args] --prompt P``          ``opencode [args] --session ID``
==============  ======================================  ====================================

Without a prompt the prompt part is left out. Claude Code lets its launcher choose the
conversation id, so a fresh uuid is chosen at launch and recorded; the other agents choose
their own, which their hooks report (``agentSessionId`` on the activity route). Aider's
``--message`` answers once and exits, and it has nothing to resume by id.

``CustomAgent`` takes its command from configuration. In ``command`` the placeholders
``{prompt}``, ``{session_id}``, ``{workspace_path}`` and ``{agent_session_id}`` are replaced
inside any argument (``--message={prompt}`` works); a command that mentions
``{agent_session_id}`` gets a fresh uuid chosen at launch, as Claude Code does. When no
argument mentions ``{prompt}`` the prompt is appended as the last argument. With an empty
prompt an argument that is exactly ``{prompt}`` is dropped and nothing is appended.
``restore_command`` may use ``{agent_session_id}``; when it does not, the id is appended.
Values are substituted once: a prompt containing ``{session_id}`` stays as written.
Arguments are an argv, never parsed by a shell.

``check_installed`` looks the executable up before a spawn or restore creates anything: a
bare name on ``PATH`` (the agent's own ``env`` may set one), an absolute path as a file.
A relative path with a ``/`` or a placeholder is resolved in the worktree, which does not
exist yet, so it is left to the launch.

Before a message that may have been typed already is sent again, the keys
``clear_line_keys(name, custom)`` names empty a half-typed input line: ``C-e C-u`` (end of
line, delete to its start) in the four built-in TUIs, nothing for a custom agent unless its
``clearLine`` says (an unknown program may bind those keys to anything).

An agent process gets ``session_environment(...)`` (the daemon builds it per session) over
the agent's own ``environment(config)``: the session manager overlays them, so the
``ORCHESTRATOR_*`` variables always win.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from orchestrator.config import AgentConfig
from orchestrator.domain.errors import InvalidInputError
from orchestrator.domain.model import AgentHarness
from orchestrator.ports import Agent, LaunchConfig

__all__ = [
    "AiderAgent",
    "ClaudeCodeAgent",
    "CodexAgent",
    "CustomAgent",
    "OpenCodeAgent",
    "agent_for",
    "builtin_agent_names",
    "clear_line_keys",
    "session_environment",
]

SESSION_ID_VAR: Final = "ORCHESTRATOR_SESSION_ID"
PROJECT_ID_VAR: Final = "ORCHESTRATOR_PROJECT_ID"
ISSUE_ID_VAR: Final = "ORCHESTRATOR_ISSUE_ID"
HOOK_URL_VAR: Final = "ORCHESTRATOR_HOOK_URL"
HOOK_TOKEN_VAR: Final = "ORCHESTRATOR_HOOK_TOKEN"  # noqa: S105 (a variable name)

# Agent-native session ids (uuids, ``ses_…``): no whitespace, never an option.
_AGENT_SESSION_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._:-]{0,255}")
_LAUNCH_PLACEHOLDER = re.compile(r"\{(prompt|session_id|workspace_path|agent_session_id)\}")
_AGENT_SESSION_PLACEHOLDER = re.compile(r"\{agent_session_id\}")


def session_environment(
    *, session_id: str, project_id: str, issue_id: str, hook_url: str, hook_token: str
) -> dict[str, str]:
    """The variables every agent process gets; all five are always set (maybe to '')."""
    return {
        SESSION_ID_VAR: session_id,
        PROJECT_ID_VAR: project_id,
        ISSUE_ID_VAR: issue_id,
        HOOK_URL_VAR: hook_url,
        HOOK_TOKEN_VAR: hook_token,
    }


def _check_agent_session_id(agent: str, agent_session_id: str) -> str:
    if not _AGENT_SESSION_ID.fullmatch(agent_session_id):
        raise InvalidInputError(f"{agent}: {agent_session_id!r} is not a valid agent session id")
    return agent_session_id


def _check_executable(agent: str, argv0: str, env: Mapping[str, str], fix: str) -> None:
    """``InvalidInputError`` when ``argv0`` cannot be found, ending with ``fix``."""
    path = Path(argv0)
    if "{" in argv0 or ("/" in argv0 and not path.is_absolute()):
        return  # resolved in the worktree, which the spawn has not made yet
    if path.is_absolute():
        if path.is_file() and os.access(path, os.X_OK):
            return
        raise InvalidInputError(f"agent {agent}: {argv0} is not an executable file: {fix}")
    search = env.get("PATH") or os.environ.get("PATH") or os.defpath
    if shutil.which(argv0, path=search) is None:
        raise InvalidInputError(f"agent {agent}: `{argv0}` is not on PATH: {fix}")


class _CliAgent:
    """Shared shape of the built-in agents: an executable, extra arguments, extra env."""

    name: str = ""
    default_executable: str = ""
    # Readline-style editing in all four input boxes: end of line, then delete to its start.
    clear_line_keys: tuple[str, ...] = ("C-e", "C-u")

    def __init__(
        self,
        *,
        executable: str = "",
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.executable = executable or self.default_executable
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})

    def launch_command(self, config: LaunchConfig) -> Sequence[str]:
        prompt = self._prompt_args(config.prompt) if config.prompt else ()
        return (self.executable, *self.extra_args, *self._session_args(config), *prompt)

    def restore_command(self, agent_session_id: str) -> Sequence[str]:
        unsupported = self.resume_unsupported()
        if unsupported:
            raise InvalidInputError(unsupported)
        return self._restore_args(_check_agent_session_id(self.name, agent_session_id))

    def environment(self, config: LaunchConfig) -> Mapping[str, str]:
        return dict(self.env)

    def choose_session_id(self) -> str:
        return ""

    def resume_unsupported(self) -> str:
        return ""

    def check_installed(self, *, resume: bool = False) -> None:
        _check_executable(
            self.name,
            self.executable,
            self.env,
            f"install it, or point agents.{self.name}.command at it in the config",
        )

    def _session_args(self, config: LaunchConfig) -> Sequence[str]:
        return ()

    def _prompt_args(self, prompt: str) -> Sequence[str]:
        # "--" so that a prompt starting with "-" is never read as an option.
        return ("--", prompt)

    def _restore_args(self, agent_session_id: str) -> Sequence[str]:
        raise NotImplementedError


class ClaudeCodeAgent(_CliAgent):
    name = AgentHarness.CLAUDE_CODE.value
    default_executable = "claude"

    def choose_session_id(self) -> str:
        return str(uuid.uuid4())  # claude accepts only a uuid here

    def _session_args(self, config: LaunchConfig) -> Sequence[str]:
        if not config.agent_session_id:
            return ()
        return ("--session-id", _check_agent_session_id(self.name, config.agent_session_id))

    def _restore_args(self, agent_session_id: str) -> Sequence[str]:
        return (self.executable, *self.extra_args, "--resume", agent_session_id)


class CodexAgent(_CliAgent):
    name = AgentHarness.CODEX.value
    default_executable = "codex"

    def _restore_args(self, agent_session_id: str) -> Sequence[str]:
        return (self.executable, *self.extra_args, "resume", agent_session_id)


class AiderAgent(_CliAgent):
    name = AgentHarness.AIDER.value
    default_executable = "aider"

    def _prompt_args(self, prompt: str) -> Sequence[str]:
        return ("--message", prompt)

    def resume_unsupported(self) -> str:
        return "aider has no conversation ids to resume"


class OpenCodeAgent(_CliAgent):
    name = AgentHarness.OPENCODE.value
    default_executable = "opencode"

    def _prompt_args(self, prompt: str) -> Sequence[str]:
        return ("--prompt", prompt)

    def _restore_args(self, agent_session_id: str) -> Sequence[str]:
        return (self.executable, *self.extra_args, "--session", agent_session_id)


class CustomAgent:
    """An agent whose command comes from configuration (placeholders: module docstring)."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        restore_command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not name:
            raise InvalidInputError("custom agent: name is empty")
        if not command or not command[0]:
            raise InvalidInputError(f"custom agent {name}: command is empty")
        if restore_command is not None and (not restore_command or not restore_command[0]):
            raise InvalidInputError(f"custom agent {name}: restore command is empty")
        self.name = name
        self.command = tuple(command)
        self.restore = None if restore_command is None else tuple(restore_command)
        self.env = dict(env or {})

    def launch_command(self, config: LaunchConfig) -> Sequence[str]:
        values = {
            "prompt": config.prompt,
            "session_id": config.session_id,
            "workspace_path": config.workspace_path,
            "agent_session_id": config.agent_session_id,
        }
        args: list[str] = []
        mentions_prompt = False
        for arg in self.command:
            if "{prompt}" in arg:
                mentions_prompt = True
                if arg == "{prompt}" and not config.prompt:
                    continue
            args.append(_LAUNCH_PLACEHOLDER.sub(lambda m: values[m.group(1)], arg))
        if config.prompt and not mentions_prompt:
            args.append(config.prompt)
        return tuple(args)

    def restore_command(self, agent_session_id: str) -> Sequence[str]:
        if self.restore is None:
            raise InvalidInputError(self.resume_unsupported())
        agent_session_id = _check_agent_session_id(self.name, agent_session_id)
        if not any(_AGENT_SESSION_PLACEHOLDER.search(arg) for arg in self.restore):
            return (*self.restore, agent_session_id)
        return tuple(
            _AGENT_SESSION_PLACEHOLDER.sub(lambda _: agent_session_id, a) for a in self.restore
        )

    def environment(self, config: LaunchConfig) -> Mapping[str, str]:
        return dict(self.env)

    def choose_session_id(self) -> str:
        if any(_AGENT_SESSION_PLACEHOLDER.search(arg) for arg in self.command):
            return str(uuid.uuid4())
        return ""

    def resume_unsupported(self) -> str:
        if self.restore is None:
            return f"agent {self.name} has no restore command configured (restoreCommand)"
        return ""

    def check_installed(self, *, resume: bool = False) -> None:
        command, key = (self.restore, "restoreCommand") if resume else (self.command, "command")
        if command is not None:
            _check_executable(
                self.name, command[0], self.env, f"fix agents.{self.name}.{key} in the config"
            )


_BUILTINS: Final[Mapping[str, type[_CliAgent]]] = {
    cls.name: cls for cls in (ClaudeCodeAgent, CodexAgent, AiderAgent, OpenCodeAgent)
}


def builtin_agent_names() -> list[str]:
    return sorted(_BUILTINS)


def clear_line_keys(name: str, custom: Mapping[str, AgentConfig]) -> tuple[str, ...]:
    """The keys that empty a half-typed input line in agent ``name``'s terminal; () for
    none (a custom agent without ``clearLine``, or an agent not known)."""
    if name in custom:
        return custom[name].clear_line
    builtin = _BUILTINS.get(name)
    return builtin.clear_line_keys if builtin is not None else ()


def agent_for(name: str, custom: Mapping[str, AgentConfig]) -> Agent:
    """The agent called ``name``. A configured custom agent wins over a built-in of the same
    name (so users can change how e.g. ``claude-code`` is started)."""
    if name in custom:
        cfg = custom[name]
        return CustomAgent(name, cfg.command, cfg.restore_command, cfg.env)
    builtin = _BUILTINS.get(name)
    if builtin is None:
        known = ", ".join([*builtin_agent_names(), *sorted(custom)])
        raise InvalidInputError(f"unknown agent {name!r} (known: {known})")
    return builtin()
