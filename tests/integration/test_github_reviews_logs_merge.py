"""The GitHub provider's reviews, job-log tails and merges against GitHub-shaped answers."""

from __future__ import annotations

import re

import httpx
import pytest
import trio.testing

from orchestrator.domain.model import ReviewDecision
from orchestrator.domain.scm import MergeMethod, PRRef, RepoRef, SCMNotFound, SCMUnavailable
from tests.github_mock import (
    BLOB,
    TOKEN,
    BrokenStream,
    MockGitHub,
    graphql_reply,
    make_provider,
    now,
    reply,
)

REPO = RepoRef(owner="acme", name="app")
PR1 = PRRef(repo=REPO, number=1)
Clock = trio.testing.MockClock


@pytest.fixture
def mock() -> MockGitHub:
    return MockGitHub()


# --- reviews -------------------------------------------------------------------------


def thread(
    thread_id: str,
    *,
    resolved: bool = False,
    bot: bool = False,
    path: str = "src/app.py",
    line: int | None = 42,
) -> dict[str, object]:
    author = {"login": "ci-bot[bot]" if bot else "reviewer", "__typename": "Bot" if bot else "User"}
    return {
        "id": thread_id,
        "isResolved": resolved,
        "isOutdated": False,
        "path": path,
        "line": line,
        "comments": {
            "nodes": [
                {
                    "id": f"{thread_id}_c",
                    "databaseId": 1,
                    "url": f"https://x/{thread_id}",
                    "body": f"fix {thread_id}",
                    "createdAt": "2026-03-01T10:00:00Z",
                    "author": author,
                }
            ]
        },
    }


def review_state(
    threads: list[dict[str, object]],
    *,
    has_previous: bool = False,
    reviews: list[dict[str, object]] | None = None,
) -> dict[str, object]:
    return {
        "repository": {
            "pullRequest": {
                "reviewDecision": "CHANGES_REQUESTED",
                "updatedAt": "2026-03-01T11:00:00Z",
                "reviewThreads": {
                    "pageInfo": {
                        "hasPreviousPage": has_previous,
                        "startCursor": "START" if has_previous else None,
                    },
                    "nodes": threads,
                },
                "reviews": {"nodes": reviews or []},
            }
        }
    }


async def test_reviews_map_threads_bots_and_review_bodies(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    reviews: list[dict[str, object]] = [
        {
            "id": "R1",
            "state": "CHANGES_REQUESTED",
            "url": "https://x/r1",
            "body": "Needs tests",
            "submittedAt": "2026-03-01T09:00:00Z",
            "commit": {"oid": "sha1"},
            "author": {"login": "lead", "__typename": "User"},
        },
        {
            "id": "R2",
            "state": "CHANGES_REQUESTED",
            "url": "https://x/r2",
            "body": "Still no tests",
            "submittedAt": "2026-03-01T10:00:00Z",
            "commit": {"oid": "sha1"},
            "author": {"login": "lead", "__typename": "User"},
        },
    ]
    mock.on(
        "POST",
        r"/graphql$",
        graphql_reply(
            review_state(
                [thread("T1", resolved=True), thread("T2", bot=True, line=None)], reviews=reviews
            )
        ),
    )
    snapshot = await make_provider(mock).fetch_reviews(PR1)
    assert snapshot.decision is ReviewDecision.CHANGES_REQUESTED
    assert not snapshot.partial
    assert [
        (c.id, c.author, c.author_is_bot, c.file, c.line, c.resolved) for c in snapshot.comments
    ] == [
        ("R1", "lead", False, "", 0, True),  # superseded by the same reviewer's later review
        ("R2", "lead", False, "", 0, False),
        ("T1_c", "reviewer", False, "src/app.py", 42, True),
        ("T2_c", "ci-bot[bot]", True, "src/app.py", 0, False),
    ]


async def test_an_unresolved_oldest_thread_fetches_one_older_window(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    newest = graphql_reply(
        review_state([thread("T3"), thread("T4", resolved=True)], has_previous=True)
    )
    older = graphql_reply(review_state([thread("T1"), thread("T2")], has_previous=True))
    mock.on("POST", r"/graphql$", newest, older)
    snapshot = await make_provider(mock).fetch_reviews(PR1)
    assert [c.thread_id for c in snapshot.comments] == ["T1", "T2", "T3", "T4"]
    assert snapshot.partial  # even older threads exist: merge, never replace
    assert MockGitHub.body(mock.requests[1])["variables"] == {
        "o": "acme",
        "n": "app",
        "p": 1,
        "before": "START",
    }
    assert len(mock.requests) == 2


async def test_reviews_of_a_missing_pr(autojump_clock: Clock, mock: MockGitHub) -> None:
    mock.on(
        "POST",
        r"/graphql$",
        graphql_reply(
            {"repository": {"pullRequest": None}},
            [
                {
                    "type": "NOT_FOUND",
                    "path": ["repository", "pullRequest"],
                    "message": "Could not resolve",
                }
            ],
        ),
    )
    with pytest.raises(SCMNotFound):
        await make_provider(mock).fetch_reviews(PRRef(repo=REPO, number=9))


# --- job logs ------------------------------------------------------------------------

LOGS = r"/repos/acme/app/actions/jobs/77/logs$"


def redirect_to_blob(request: httpx.Request, _: re.Match[str]) -> httpx.Response:
    return httpx.Response(
        302, headers={"location": f"{BLOB}/logs/77?sig=abc&exp={int(now()) + 60}"}
    )


async def test_a_log_tail_follows_the_redirect_without_the_token(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    lines = [f"2026-03-01T10:00:{i % 60:02d}.1234567Z \x1b[32mstep {i}\x1b[0m" for i in range(5000)]
    lines.append("2026-03-01T10:01:00.0000000Z ##[error]Process completed with exit code 1.")
    mock.on("GET", LOGS, redirect_to_blob)
    mock.on(
        "GET",
        r"^https://blob\.test/logs/77",
        httpx.Response(200, content="\n".join(lines).encode()),
    )
    tail = await make_provider(mock, lines=3).fetch_log_tail(REPO, 77)
    assert tail == "step 4998\nstep 4999\n##[error]Process completed with exit code 1."
    api_request, blob_request = mock.requests
    assert api_request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in blob_request.headers
    assert all(TOKEN not in value for value in blob_request.headers.values())


async def test_a_huge_log_is_streamed_and_bounded(autojump_clock: Clock, mock: MockGitHub) -> None:
    chunk = b"".join(b"2026-03-01T10:00:00Z line %d\n" % i for i in range(20_000))
    mock.on("GET", LOGS, redirect_to_blob)
    mock.on("GET", r"^https://blob\.test/", httpx.Response(200, content=chunk * 10))
    tail = await make_provider(mock, lines=40, max_bytes=200).fetch_log_tail(REPO, 77)
    assert len(tail.encode()) <= 200
    assert tail.endswith("line 19999")


async def test_a_garbled_log_is_cleaned(autojump_clock: Clock, mock: MockGitHub) -> None:
    mock.on("GET", LOGS, redirect_to_blob)
    mock.on(
        "GET",
        r"^https://blob\.test/",
        httpx.Response(200, content=b"ok\n\xff\xfe\x00bad\x1b[1m\x07bytes\r\n"),
    )
    tail = await make_provider(mock).fetch_log_tail(REPO, 77)
    assert tail == "ok\n\ufffd\ufffdbadbytes"


async def test_a_truncated_log_is_retried_then_unavailable(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    mock.on("GET", LOGS, redirect_to_blob)
    mock.on(
        "GET",
        r"^https://blob\.test/",
        httpx.Response(200, stream=BrokenStream(b"partial line\n", b"more")),
    )
    with pytest.raises(SCMUnavailable, match="RemoteProtocolError"):
        await make_provider(mock).fetch_log_tail(REPO, 77)
    assert len(mock.sent(LOGS)) == 3  # each retry asks GitHub for a fresh signed URL


async def test_log_storage_failures_are_retried_with_a_fresh_url(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    expired = httpx.Response(403, content=b"<Error><Code>AuthenticationFailed</Code></Error>")
    throttled = httpx.Response(429, headers={"retry-after": "600"})
    mock.on("GET", LOGS, redirect_to_blob)
    mock.on(
        "GET", r"^https://blob\.test/", expired, throttled, httpx.Response(200, content=b"done\n")
    )
    provider = make_provider(mock)
    assert await provider.fetch_log_tail(REPO, 77) == "done"
    assert len(mock.sent(LOGS)) == 3
    # Storage's own answers never count against GitHub's budget.
    assert provider.rate_budget().blocked_until is None


async def test_the_log_of_a_running_job_is_not_found(
    autojump_clock: Clock, mock: MockGitHub
) -> None:
    mock.on("GET", LOGS, reply({"message": "Not Found"}, 404))
    with pytest.raises(SCMNotFound):
        await make_provider(mock).fetch_log_tail(REPO, 77)
    assert len(mock.requests) == 1


# --- merge ---------------------------------------------------------------------------

MERGE = r"/repos/acme/app/pulls/5/merge$"


async def test_merge_sends_the_head_sha_and_method(autojump_clock: Clock, mock: MockGitHub) -> None:
    mock.on(
        "PUT",
        MERGE,
        reply({"sha": "m1", "merged": True, "message": "Pull Request successfully merged"}),
    )
    outcome = await make_provider(mock).merge(
        PRRef(repo=REPO, number=5), sha="abc", method=MergeMethod.REBASE
    )
    assert (outcome.merged, outcome.sha) == (True, "m1")
    assert MockGitHub.body(mock.requests[0]) == {"sha": "abc", "merge_method": "rebase"}


@pytest.mark.parametrize(
    ("status", "message"),
    [(405, "Pull Request is not mergeable"), (409, "Head branch was modified")],
)
async def test_a_refused_merge_is_an_outcome_and_never_retried(
    autojump_clock: Clock, mock: MockGitHub, status: int, message: str
) -> None:
    mock.on("PUT", MERGE, reply({"message": message}, status))
    outcome = await make_provider(mock).merge(PRRef(repo=REPO, number=5), sha="abc")
    assert not outcome.merged
    assert message in outcome.message
    assert len(mock.requests) == 1


async def test_a_failed_merge_is_never_retried(autojump_clock: Clock, mock: MockGitHub) -> None:
    mock.on("PUT", MERGE, reply({"message": "Server Error"}, 502))
    with pytest.raises(SCMUnavailable):
        await make_provider(mock).merge(PRRef(repo=REPO, number=5), sha="abc")
    assert len(mock.requests) == 1
