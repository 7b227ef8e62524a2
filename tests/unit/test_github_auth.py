"""The GitHub token chain: environment order, the ``gh`` fallback, memo and invalidation,
and a token that never shows in a repr, a log line or an error."""

from __future__ import annotations

import logging
import pickle
import stat
from pathlib import Path

import pytest

from adapters.github.auth import GH_SOURCE, NoToken, StaticToken, Token, TokenChain
from orchestrator.domain.scm import SCMAuthFailed

SECRET = "ghp_S3cretValueThatMustNeverLeak0000000"

FAKE_GH = """#!/bin/sh
echo "$@" >> "$FAKE_GH_CALLS"
if [ -n "$FAKE_GH_SLEEP" ]; then exec sleep "$FAKE_GH_SLEEP"; fi
if [ -f "$FAKE_GH_FAIL" ]; then
  echo "You are not logged into any GitHub hosts. To log in, run: gh auth login" >&2
  exit 1
fi
cat "$FAKE_GH_TOKEN"
"""


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeGh:
    """A ``gh`` on a private PATH that prints whatever token file holds and logs its args."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        script = self.bin / "gh"
        script.write_text(FAKE_GH)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        self.calls_file = root / "calls"
        self.token_file = root / "token"
        self.fail_file = root / "fail"
        self.token_file.write_text(SECRET + "\n")

    def env(self, **more: str) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "FAKE_GH_CALLS": str(self.calls_file),
            "FAKE_GH_TOKEN": str(self.token_file),
            "FAKE_GH_FAIL": str(self.fail_file),
            **more,
        }

    @property
    def calls(self) -> list[str]:
        if not self.calls_file.exists():
            return []
        return self.calls_file.read_text().splitlines()


@pytest.fixture
def gh(tmp_path: Path) -> FakeGh:
    return FakeGh(tmp_path)


@pytest.mark.parametrize(
    ("env", "source"),
    [
        (
            {"ORCHESTRATOR_GITHUB_TOKEN": "a", "GITHUB_TOKEN": "b", "GH_TOKEN": "c"},
            "ORCHESTRATOR_GITHUB_TOKEN",
        ),
        ({"GITHUB_TOKEN": "b", "GH_TOKEN": "c"}, "GITHUB_TOKEN"),
        ({"GH_TOKEN": "c"}, "GH_TOKEN"),
        ({"ORCHESTRATOR_GITHUB_TOKEN": "  ", "GH_TOKEN": "c"}, "GH_TOKEN"),  # blank is unset
    ],
)
async def test_environment_variables_are_read_in_order(
    gh: FakeGh, env: dict[str, str], source: str
) -> None:
    token = await TokenChain(env=gh.env(**env)).get()
    assert isinstance(token, Token)
    assert token.source == source
    assert token.reveal() == env[source].strip()
    assert gh.calls == []  # gh is not run when the environment has a token


async def test_gh_is_the_last_resort(gh: FakeGh) -> None:
    chain = TokenChain(env=gh.env(), hostname="ghe.example.com")
    token = await chain.get()
    assert isinstance(token, Token)
    assert (token.source, token.reveal()) == (GH_SOURCE, SECRET)
    assert gh.calls == ["auth token --hostname ghe.example.com"]
    assert chain.state().available
    assert chain.state().source == GH_SOURCE


async def test_no_token_is_a_state_that_says_why(gh: FakeGh) -> None:
    gh.fail_file.touch()
    chain = TokenChain(env=gh.env())
    found = await chain.get()
    assert isinstance(found, NoToken)
    assert "not logged into any GitHub hosts" in found.reason
    assert not chain.state().available
    assert chain.state().reason == found.reason

    nowhere = await TokenChain(env={"PATH": "/nonexistent"}).get()
    assert isinstance(nowhere, NoToken)
    assert "GITHUB_TOKEN" in nowhere.reason
    assert "gh is not on PATH" in nowhere.reason

    without_gh = await TokenChain(env=gh.env(), use_gh=False).get()
    assert isinstance(without_gh, NoToken)


async def test_a_hanging_gh_times_out(gh: FakeGh) -> None:
    found = await TokenChain(env=gh.env(FAKE_GH_SLEEP="10"), gh_timeout=0.2).get()
    assert isinstance(found, NoToken)
    assert "timed out" in found.reason


async def test_the_answer_is_memoised_for_the_ttl(gh: FakeGh) -> None:
    clock = FakeTime()
    chain = TokenChain(env=gh.env(), ttl=300, clock=clock)
    await chain.get()
    await chain.get()
    assert len(gh.calls) == 1
    clock.now += 299
    await chain.get()
    assert len(gh.calls) == 1
    clock.now += 1
    await chain.get()
    assert len(gh.calls) == 2


async def test_no_token_is_memoised_too(gh: FakeGh) -> None:
    gh.fail_file.touch()
    clock = FakeTime()
    chain = TokenChain(env=gh.env(), ttl=300, clock=clock)
    await chain.get()
    await chain.get()
    assert len(gh.calls) == 1
    gh.fail_file.unlink()  # the user ran `gh auth login`
    clock.now += 300
    assert isinstance(await chain.get(), Token)


async def test_invalidating_the_rejected_token_rereads_it(gh: FakeGh) -> None:
    changes: list[str] = []
    chain = TokenChain(env=gh.env(), clock=FakeTime(), on_change=lambda: changes.append("x"))
    first = await chain.get()
    assert isinstance(first, Token)
    chain.invalidate(Token("some-other-token", "GITHUB_TOKEN"))  # not ours: kept
    await chain.get()
    assert len(gh.calls) == 1
    gh.token_file.write_text("ghp_rotated\n")
    chain.invalidate(first)
    second = await chain.get()
    assert isinstance(second, Token)
    assert second.reveal() == "ghp_rotated"
    assert len(gh.calls) == 2
    assert changes == ["x"]  # the first token is not a change; the rotation is
    chain.invalidate()
    await chain.get()
    assert changes == ["x"]  # same token again: nothing changed


async def test_the_token_never_shows(gh: FakeGh, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    chain = TokenChain(env=gh.env())
    token = await chain.get()
    assert isinstance(token, Token)
    shown = [repr(token), str(token), f"{token}", repr(chain), repr(chain.state()), caplog.text]
    assert all(SECRET not in text for text in shown)
    assert "redacted" in repr(token)
    assert "gh auth token" in caplog.text  # the source is logged, the value is not
    with pytest.raises(TypeError):
        pickle.dumps(token)
    error = SCMAuthFailed(f"GitHub rejected the token from {token.source} (401)")
    assert SECRET not in str(error)


async def test_a_static_token() -> None:
    token = await StaticToken("abc").get()
    assert isinstance(token, Token)
    assert token.reveal() == "abc"
    assert isinstance(await StaticToken(None).get(), NoToken)
    assert not StaticToken("").state().available
