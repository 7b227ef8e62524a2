"""``make install`` puts the command where the README's systemd unit runs it
(``~/.local/bin/orchestrator``), with pipx or a venv of its own. The real install was
tried in a temporary HOME; here ``make -n`` shows what it would run, quickly."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(home: Path, *variables: str) -> list[str]:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "install", f"HOME={home}", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def unit_command(home: Path) -> str:
    """The README's systemd unit's command, with ``%h`` as ``home``."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^ExecStart=(\S+) start --foreground$", readme, re.MULTILINE)
    assert match is not None
    return match.group(1).replace("%h", str(home))


def test_without_pipx_a_venv_of_its_own_linked_from_the_units_path(tmp_path: Path) -> None:
    venv = tmp_path / ".local/share/orchestrator/venv"
    lines = dry_run(tmp_path, "INSTALL_WITH=venv", "PYTHON=python3.11")
    assert f"python3.11 -m venv {venv}" in lines
    assert f"{venv}/bin/python -m pip install --quiet --upgrade ." in lines  # not editable
    assert f"ln -sfn {venv}/bin/orchestrator {unit_command(tmp_path)}" in lines


def test_with_pipx_its_bin_dir_is_the_units_path(tmp_path: Path) -> None:
    lines = dry_run(tmp_path, "INSTALL_WITH=pipx", "PYTHON=python3.11")
    bin_dir = Path(unit_command(tmp_path)).parent
    assert f"PIPX_BIN_DIR={bin_dir} pipx install --force --python python3.11 ." in lines


def test_uninstall_removes_what_install_made(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-n",
            "uninstall",
            f"HOME={tmp_path}",
            "INSTALL_WITH=venv",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == [
        f"rm -f {unit_command(tmp_path)}",
        f"rm -rf {tmp_path}/.local/share/orchestrator/venv",
    ]
