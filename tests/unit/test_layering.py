"""The layering rules that keep the domain pure and the engine behind its ports
(docs/design.md, "Shape")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


DOMAIN = sorted((ROOT / "orchestrator" / "domain").glob("*.py"))
ENGINE = sorted(
    p
    for p in (ROOT / "orchestrator").rglob("*.py")
    if "domain" not in p.parts and p.name != "daemon.py"
)


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: p.name)
def test_the_domain_does_no_io_and_knows_no_framework(path: Path) -> None:
    forbidden = {
        "trio",
        "sqlalchemy",
        "sqlite3",
        "adapters",
        "httpx",
        "starlette",
        "hypercorn",
        "os",
        "subprocess",
        "socket",
    }
    assert top_level(imported_modules(path)) & forbidden == set()


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_composition_root_imports_adapters(path: Path) -> None:
    assert "adapters" not in top_level(imported_modules(path))


CLI = sorted((ROOT / "orchestrator" / "cli").glob("*.py"))


def test_the_cli_is_a_package_of_modules() -> None:
    assert {p.name for p in CLI} >= {"__init__.py", "app.py", "client.py"}


@pytest.mark.parametrize("path", CLI, ids=lambda p: p.name)
def test_the_cli_stays_a_thin_client(path: Path) -> None:
    modules = imported_modules(path)
    assert top_level(modules) & {"sqlalchemy", "sqlite3", "adapters"} == set()
    # The engine stays out too: the CLI speaks HTTP in the wire types of orchestrator.api.
    engine = {"orchestrator.daemon", "orchestrator.lifecycle", "orchestrator.sessions"}
    assert {m for m in modules if m in engine or m.startswith("orchestrator.lifecycle.")} == set()
