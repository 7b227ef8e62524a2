"""PR commands: ``pr claim`` moves a PR to a session, ``pr merge`` merges a session's PR."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from orchestrator.api import PRClaimIn, PRClaimOut, PRMergeOut
from orchestrator.cli.client import connect
from orchestrator.cli.console import echo_json, say
from orchestrator.cli.options import JsonFlag, SessionArg


def _pr_path(session_id: str, action: str) -> str:
    return f"/sessions/{quote(session_id, safe='')}/pr/{action}"


def claim_target(pr: str) -> PRClaimIn:
    """``PR`` as the claim's body: a number (``42`` or ``#42``) or a URL."""
    digits = pr.removeprefix("#")
    if digits.isascii() and digits.isdigit():
        number = int(digits)
        if number < 1:
            raise typer.BadParameter("a PR number is 1 or more", param_hint="PR")
        return PRClaimIn(number=number)
    if not pr.startswith(("https://", "http://")):
        raise typer.BadParameter(
            f"{pr!r} is neither a PR number nor an http(s) URL", param_hint="PR"
        )
    return PRClaimIn(url=pr)


def pr_claim(
    session_id: SessionArg,
    pr: Annotated[
        str,
        typer.Argument(
            metavar="URL|NUMBER",
            help="The PR's URL, or its number in the session's project repository.",
        ),
    ],
    *,
    as_json: JsonFlag = False,
) -> None:
    """Make a session the owner of a PR, taking it from the session that had it."""
    body = claim_target(pr)
    with connect() as client:
        result = client.call("POST", _pr_path(session_id, "claim"), PRClaimOut, body=body)
    if as_json:
        echo_json(result)
        return
    taken = f" (taken from {result.previous_session})" if result.previous_session else ""
    say(f"{result.session.id} owns {result.url}{taken}")


def pr_merge(session_id: SessionArg, *, as_json: JsonFlag = False) -> None:
    """Merge a session's PR now, if CI passes, it is approved and GitHub calls it mergeable."""
    with connect() as client:
        result = client.call("POST", _pr_path(session_id, "merge"), PRMergeOut)
    if as_json:
        echo_json(result)
        return
    say(f"merged {result.url} at {result.head_sha[:12]}")


__all__ = ["claim_target", "pr_claim", "pr_merge"]
