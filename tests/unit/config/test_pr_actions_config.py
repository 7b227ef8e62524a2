"""The config of acting on GitHub: the webhook secret, the merge method, auto-merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.domain.errors import ConfigError
from orchestrator.domain.model import ReactionAction, ReactionKey
from orchestrator.domain.scm import MergeMethod
from tests.unit.config.support import load


def test_nothing_is_configured_by_default(data_dir: Path, env: dict[str, str]) -> None:
    config = load("", data_dir, env)
    assert config.scm.github.webhook_secret == ""
    assert config.scm.github.merge_method is MergeMethod.SQUASH
    approved = config.policy[ReactionKey.APPROVED_AND_GREEN]
    assert approved.action is ReactionAction.NOTIFY
    assert not config.policy.auto_merges


def test_the_secret_the_method_and_auto_merge_are_read(data_dir: Path, env: dict[str, str]) -> None:
    config = load(
        "scm: {github: {webhookSecret: s3cret, mergeMethod: rebase}}\n"
        "reactions: {approved-and-green: {action: auto-merge}}\n",
        data_dir,
        env,
    )
    assert config.scm.github.webhook_secret == "s3cret"
    assert config.scm.github.merge_method is MergeMethod.REBASE
    assert config.policy.auto_merges


def test_auto_merge_is_off_when_the_reaction_is_not_automatic(
    data_dir: Path, env: dict[str, str]
) -> None:
    config = load(
        "reactions: {approved-and-green: {action: auto-merge, auto: false}}\n", data_dir, env
    )
    assert not config.policy.auto_merges


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scm: {github: {mergeMethod: octopus}}", "scm.github.mergeMethod: expected merge, squash or rebase"),
        ("scm: {github: {webhookSecret: 7}}", "scm.github.webhookSecret: expected a string"),
        ("scm: {github: {secret: x}}", "scm.github.secret: unknown key"),
        ("reactions: {agent-idle: {action: auto-merge}}", "reactions.agent-idle.action: expected send-to-agent or notify (auto-merge is only for approved-and-green)"),
    ],
)  # fmt: skip
def test_bad_values_name_their_key(
    text: str, message: str, data_dir: Path, env: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text + "\n", data_dir, env)
    assert message in str(caught.value)
