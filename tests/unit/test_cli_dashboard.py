"""``orchestrator dashboard``'s link address and ``ls --by-zone``'s grouping
(orchestrator/cli/dashboard.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.api import SessionZoneOut
from orchestrator.cli.dashboard import browser_address, print_zones
from orchestrator.domain.model import SessionStatus
from orchestrator.domain.zones import Zone

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def test_the_link_names_an_address_the_host_check_accepts() -> None:
    assert browser_address("127.0.0.1:8731") == "127.0.0.1:8731"
    assert browser_address("0.0.0.0:8731") == "127.0.0.1:8731"
    assert browser_address("[::]:9000") == "127.0.0.1:9000"
    assert browser_address("[::1]:9000") == "[::1]:9000"


def _zoned(session_id: str, zone: Zone, status: SessionStatus) -> SessionZoneOut:
    return SessionZoneOut(
        id=session_id,
        project_id="p",
        zone=zone,
        status=status,
        title=f"title of {session_id}",
        updated_at=NOW,
    )


def test_zones_print_in_board_order_with_done_last(capsys: pytest.CaptureFixture[str]) -> None:
    print_zones(
        [
            _zoned("p-1", Zone.DONE, SessionStatus.KILLED),
            _zoned("p-2", Zone.WORKING, SessionStatus.WORKING),
            _zoned("p-3", Zone.NEEDS_YOU, SessionStatus.STUCK),
            _zoned("p-4", Zone.NEEDS_YOU, SessionStatus.NEEDS_INPUT),
        ]
    )
    text = capsys.readouterr().out
    order = [
        text.index(mark)
        for mark in ("Needs you (2)", "p-3", "p-4", "Working (1)", "p-2", "Done (1)", "p-1")
    ]
    assert order == sorted(order)
    assert "In review" not in text  # empty zones are left out


def test_no_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    print_zones([])
    assert capsys.readouterr().out.strip() == "no sessions"
