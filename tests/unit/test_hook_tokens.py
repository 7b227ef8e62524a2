"""Hook tokens name their session and are checked with one MAC; the hook key is separate
from the daemon token, kept in the data dir across restarts, and rotated deliberately."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from adapters.http.auth import HOOK_KEY_BYTES, TokenAuthority
from orchestrator.daemon import token_authority
from orchestrator.runfile import HOOK_KEY_NAME, HookKeyError, read_hook_key, write_hook_key

DAEMON_TOKEN = "daemon-token-0123456789abcdef"
KEY = bytes(range(32))


def test_a_hook_token_names_its_session_and_opens_only_it() -> None:
    auth = TokenAuthority(DAEMON_TOKEN, KEY)
    token = auth.session_token("app-1")
    named, _, mac = token.partition(".")
    assert named == "app-1"
    assert len(mac) == 64
    assert auth.session_of(token) == "app-1"
    assert auth.session_of(auth.session_token("app-2")) == "app-2"
    assert auth.session_of(token.replace("app-1.", "app-2.")) is None  # the MAC names one
    assert not auth.is_daemon(token)
    assert auth.is_daemon(DAEMON_TOKEN)
    assert auth.session_of(DAEMON_TOKEN) is None


@pytest.mark.parametrize(
    ("presented", "macs"),
    [
        pytest.param("no-separator-at-all", 0, id="not a hook token"),
        pytest.param(".deadbeef", 0, id="no session"),
        pytest.param("app-1.", 0, id="no mac"),
        pytest.param("app-1." + "0" * 64, 1, id="forged mac"),
        pytest.param("app-999." + "0" * 64, 1, id="unknown session"),
        pytest.param("app-1.é", 1, id="non-ascii"),
    ],
)
def test_checking_a_wrong_token_costs_at_most_one_mac(presented: str, macs: int) -> None:
    auth = TokenAuthority(DAEMON_TOKEN, KEY)
    assert auth.session_of(presented) is None
    assert auth.macs_computed == macs


def test_the_daemon_token_is_not_the_hook_key() -> None:
    # The same daemon token over another hook key gives other hook tokens, and two daemon
    # tokens over the same hook key give the same ones: a restart keeps them.
    one = TokenAuthority(DAEMON_TOKEN, KEY)
    assert TokenAuthority(DAEMON_TOKEN, bytes(32)).session_token("app-1") != one.session_token(
        "app-1"
    )
    assert TokenAuthority.generate(KEY).session_token("app-1") == one.session_token("app-1")
    assert TokenAuthority.generate(KEY).token != TokenAuthority.generate(KEY).token


def test_rotation_keeps_the_new_key_before_using_it() -> None:
    kept: list[bytes] = []
    auth = TokenAuthority(DAEMON_TOKEN, KEY, save_hook_key=kept.append)
    old = auth.session_token("app-1")
    auth.rotate_hook_key()
    assert len(kept) == 1
    assert len(kept[0]) == HOOK_KEY_BYTES
    assert kept[0] != KEY
    assert auth.session_of(old) is None
    assert auth.session_of(auth.session_token("app-1")) == "app-1"
    assert TokenAuthority(DAEMON_TOKEN, kept[0]).session_token("app-1") == auth.session_token(
        "app-1"
    )


def test_a_key_that_cannot_be_kept_is_never_used() -> None:
    def disk_full(key: bytes) -> None:
        raise OSError(28, "No space left on device")

    auth = TokenAuthority(DAEMON_TOKEN, KEY, save_hook_key=disk_full)
    token = auth.session_token("app-1")
    with pytest.raises(OSError, match="No space"):
        auth.rotate_hook_key()
    assert auth.session_of(token) == "app-1"


def test_the_hook_key_file_is_made_once_and_kept(tmp_path: Path) -> None:
    first = token_authority(tmp_path)
    path = tmp_path / HOOK_KEY_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = token_authority(tmp_path)  # the next start
    assert second.token != first.token
    assert second.session_token("app-1") == first.session_token("app-1")
    second.rotate_hook_key()
    third = token_authority(tmp_path)
    assert third.session_token("app-1") == second.session_token("app-1")
    assert third.session_token("app-1") != first.session_token("app-1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [HOOK_KEY_NAME]  # no temp file left


def test_a_hook_key_left_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / HOOK_KEY_NAME
    write_hook_key(path, KEY)
    path.chmod(0o644)
    assert read_hook_key(path) == KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["", "not hex\n", "abcd\n"], ids=["empty", "text", "short"])
def test_an_unusable_hook_key_stops_the_start_with_what_to_do(tmp_path: Path, content: str) -> None:
    path = tmp_path / HOOK_KEY_NAME
    path.write_text(content)
    with pytest.raises(HookKeyError, match=r"hook\.key is unusable .*delete it"):
        token_authority(tmp_path)
    assert path.read_text() == content  # never replaced behind the user's back
