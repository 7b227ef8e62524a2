"""The GitHub client and its retries against GitHub-shaped answers (``httpx.MockTransport``):
headers, conditional GETs, error classes, retries, rate limits and redirects."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from adapters.github.auth import NoToken, StaticToken, Token
from adapters.github.budget import RateBudget
from adapters.github.client import Fresh, GitHubClient, graphql_url_for
from orchestrator.domain.scm import (
    NotModified,
    PRListing,
    RepoRef,
    SCMAuthFailed,
    SCMAuthState,
    SCMError,
    SCMForbidden,
    SCMNotFound,
    SCMPriority,
    SCMRateLimited,
    SCMRejected,
    SCMUnavailable,
)
from tests.github_mock import (
    API,
    TOKEN,
    MockGitHub,
    graphql_reply,
    make_client,
    make_provider,
    now,
    rate_headers,
    reply,
)

REPO = RepoRef(owner="acme", name="app")
PULLS = r"/repos/acme/app/pulls\?"
SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}


@pytest.fixture
def mock() -> MockGitHub:
    return MockGitHub()


async def test_requests_carry_githubs_headers_and_the_token(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    mock.on("GET", r"/repos/acme/app$", reply({"full_name": "acme/app"}, etag='W/"1"'))
    answer = await make_client(mock).get("repos/acme/app")
    assert isinstance(answer, Fresh)
    assert answer.etag == 'W/"1"'
    [sent] = mock.requests
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["accept"] == "application/vnd.github+json"
    assert sent.headers["x-github-api-version"] == "2022-11-28"
    assert sent.headers["user-agent"]
    assert "if-none-match" not in sent.headers


async def test_a_conditional_get_answers_not_modified_with_the_newest_validator(
    autojump_clock: trio.testing.MockClock,
    mock: MockGitHub,
) -> None:
    mock.on("GET", PULLS, reply(status=304, etag='W/"rotated"'))
    answer = await make_provider(mock).list_open_prs(REPO, etag='W/"old"')
    assert answer == NotModified(etag='W/"rotated"')
    assert mock.requests[0].headers["if-none-match"] == 'W/"old"'
    mock.on("GET", PULLS, reply(status=304))  # no new validator: keep the one sent
    assert await make_provider(mock).list_open_prs(REPO, etag='W/"old"') == NotModified(
        etag='W/"old"'
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_server_error_is_retried(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub, status: int
) -> None:
    mock.on("GET", PULLS, reply({"message": "Server Error"}, status), reply([], etag='W/"e"'))
    answer = await make_provider(mock).list_open_prs(REPO)
    assert answer == PRListing(etag='W/"e"', prs=())
    assert len(mock.requests) == 2


async def test_a_network_failure_is_retried_then_reported_unavailable(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    def refuse(request: httpx.Request, _: object) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    mock.on("GET", PULLS, refuse)
    with pytest.raises(SCMUnavailable, match="ConnectError"):
        await make_provider(mock).list_open_prs(REPO)
    assert len(mock.requests) == 3  # the attempt cap


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"message": "Bad credentials"}, SCMAuthFailed),
        (404, {"message": "Not Found"}, SCMNotFound),
        (403, {"message": "Resource not accessible by integration"}, SCMForbidden),
        (422, {"message": "Validation Failed"}, SCMRejected),
    ],
)
async def test_client_errors_are_never_retried(
    autojump_clock: trio.testing.MockClock,
    mock: MockGitHub,
    status: int,
    body: object,
    error: type[SCMError],
) -> None:
    mock.on("GET", PULLS, reply(body, status))
    with pytest.raises(error) as raised:
        await make_provider(mock).list_open_prs(REPO)
    assert len(mock.requests) == 1
    assert TOKEN not in str(raised.value)


class RotatingTokens:
    """A token source whose token was rotated: it answers the new one once told."""

    def __init__(self) -> None:
        self.current = Token("ghp_old", "gh auth token")
        self.invalidated: list[Token] = []

    async def get(self) -> Token | NoToken:
        return self.current

    def invalidate(self, token: Token | None = None) -> None:
        self.invalidated.append(token or self.current)
        self.current = Token("ghp_new", "gh auth token")

    def state(self) -> SCMAuthState:
        return SCMAuthState(available=True, source=self.current.source)


async def test_a_401_rereads_a_rotated_token_once(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    def by_token(request: httpx.Request, _: object) -> httpx.Response:
        if request.headers["authorization"] == "Bearer ghp_new":
            return reply({"ok": True})
        return reply({"message": "Bad credentials"}, 401)

    mock.on("GET", r"/user$", by_token)
    tokens = RotatingTokens()
    client = make_client(mock, tokens=tokens)
    assert isinstance(await client.get("user"), Fresh)
    assert [r.headers["authorization"] for r in mock.requests] == [
        "Bearer ghp_old",
        "Bearer ghp_new",
    ]
    assert tokens.invalidated[0].reveal() == "ghp_old"


async def test_no_token_sends_nothing(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    client = make_client(mock, tokens=StaticToken(None))
    with pytest.raises(SCMAuthFailed, match="no GitHub token"):
        await client.get("user")
    assert mock.requests == []


async def test_a_secondary_limit_with_retry_after_sends_nothing_until_then(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    sent_at: list[float] = []

    def listing(request: httpx.Request, _: object) -> httpx.Response:
        sent_at.append(trio.current_time())
        if len(sent_at) == 1:
            return reply(SECONDARY, 403, headers={"retry-after": "60"})
        return reply([], etag='W/"e"')

    mock.on("GET", PULLS, listing)
    provider = make_provider(mock)
    start = trio.current_time()
    with pytest.raises(SCMRateLimited) as raised:
        await provider.list_open_prs(REPO)  # 60 s is too long to sleep inside a call
    assert raised.value.until.timestamp() == pytest.approx(now() + 60)
    for _ in range(2):
        await trio.sleep(10)
        with pytest.raises(SCMRateLimited):
            await provider.list_open_prs(REPO)  # refused before anything is sent
    assert len(sent_at) == 1
    await trio.sleep(11)  # 29 s left: short enough to wait out inside the call
    assert isinstance(await provider.list_open_prs(REPO), PRListing)
    assert len(sent_at) == 2
    assert sent_at[1] - start >= 60


async def test_a_short_retry_after_is_slept_through(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    mock.on("GET", PULLS, reply(SECONDARY, 429, headers={"retry-after": "5"}), reply([]))
    started = trio.current_time()
    assert isinstance(await make_provider(mock).list_open_prs(REPO), PRListing)
    assert trio.current_time() - started >= 5
    assert len(mock.requests) == 2


async def test_a_secondary_limit_without_retry_after_backs_off_exponentially(
    autojump_clock: trio.testing.MockClock,
    mock: MockGitHub,
) -> None:
    mock.on("GET", PULLS, reply(SECONDARY, 403))
    provider = make_provider(mock)
    waits = []
    for _ in range(3):
        with pytest.raises(SCMRateLimited) as raised:
            await provider.list_open_prs(REPO)
        waits.append(round(raised.value.until.timestamp() - now()))
        await trio.sleep(waits[-1])
    assert waits == [60, 120, 240]
    assert len(mock.requests) == 3


async def test_primary_exhaustion_waits_for_the_reset_and_spares_graphql(
    autojump_clock: trio.testing.MockClock,
    mock: MockGitHub,
) -> None:
    exhausted = reply(
        {"message": "API rate limit exceeded"}, 403, headers=rate_headers(0, reset_in=600)
    )
    mock.on("GET", PULLS, exhausted)
    mock.on("POST", r"/graphql$", graphql_reply({"viewer": {"login": "me"}}))
    client = make_client(mock)
    with pytest.raises(SCMRateLimited) as raised:
        await client.get("repos/acme/app/pulls?state=open")
    assert raised.value.resource == "core"
    assert raised.value.until.timestamp() == pytest.approx(now() + 600, abs=1)
    with pytest.raises(SCMRateLimited):
        await client.get("repos/acme/app/pulls?state=open")
    assert len(mock.sent(PULLS)) == 1
    await client.graphql("query { viewer { login } }", {})
    assert len(mock.sent("/graphql")) == 1


async def test_graphql_rate_limited_at_200_blocks_only_graphql(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    rate_limited = graphql_reply(
        None,
        [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}],
        remaining=0,
    )
    mock.on("POST", r"/graphql$", rate_limited)
    mock.on("GET", r"/user$", reply({"login": "me"}))
    client = make_client(mock)
    with pytest.raises(SCMRateLimited) as raised:
        await client.graphql("query { viewer { login } }", {})
    assert raised.value.resource == "graphql"
    with pytest.raises(SCMRateLimited):
        await client.graphql("query { viewer { login } }", {})
    assert len(mock.sent("/graphql")) == 1
    assert isinstance(await client.get("user"), Fresh)


async def test_a_graphql_secondary_limit_at_200_blocks_everything(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    mock.on(
        "POST",
        r"/graphql$",
        graphql_reply(None, [{"message": "You have exceeded a secondary rate limit."}]),
    )
    mock.on("GET", r"/user$", reply({"login": "me"}))
    client = make_client(mock)
    with pytest.raises(SCMRateLimited):
        await client.graphql("query { viewer { login } }", {})
    with pytest.raises(SCMRateLimited):
        await client.get("user")
    assert len(mock.requests) == 1


async def test_a_graphql_error_without_data_is_classified(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    mock.on(
        "POST",
        r"/graphql$",
        graphql_reply(None, [{"message": "Field 'nosuchField' doesn't exist on type 'Query'"}]),
    )
    with pytest.raises(SCMRejected, match="nosuchField"):
        await make_client(mock).graphql("query { nosuchField }", {})


async def test_a_background_poll_stops_at_the_reserve_while_a_kick_passes(
    autojump_clock: trio.testing.MockClock,
    mock: MockGitHub,
) -> None:
    mock.on("GET", PULLS, reply([], headers=rate_headers(400)))
    provider = make_provider(mock)
    await provider.list_open_prs(REPO)  # learns that only 400 of 5000 are left
    with pytest.raises(SCMRateLimited):
        await provider.list_open_prs(REPO, priority=SCMPriority.BACKGROUND)
    assert len(mock.requests) == 1
    assert isinstance(await provider.list_open_prs(REPO, priority=SCMPriority.KICK), PRListing)
    assert len(mock.requests) == 2


async def test_a_same_origin_redirect_keeps_the_token(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    moved = httpx.Response(301, headers={"location": f"{API}/repos/acme/renamed/pulls?state=open"})
    mock.on("GET", r"/repos/acme/app/pulls", moved)
    mock.on("GET", r"/repos/acme/renamed/pulls", reply([]))
    await make_client(mock).get("repos/acme/app/pulls?state=open")
    assert [r.headers.get("authorization") for r in mock.requests] == [f"Bearer {TOKEN}"] * 2


async def test_enterprise_urls(autojump_clock: trio.testing.MockClock, mock: MockGitHub) -> None:
    assert graphql_url_for("https://api.github.com") == "https://api.github.com/graphql"
    assert (
        graphql_url_for("https://ghe.example.com/api/v3/") == "https://ghe.example.com/api/graphql"
    )
    mock.on("GET", r"^https://ghe\.test/api/v3/user$", reply({"login": "me"}))
    mock.on("POST", r"^https://ghe\.test/api/graphql$", graphql_reply({"viewer": {"login": "me"}}))
    client = make_client(mock, api_url="https://ghe.test/api/v3")
    await client.get("user")
    await client.graphql("query { viewer { login } }", {})
    assert [str(r.url) for r in mock.requests] == [
        "https://ghe.test/api/v3/user",
        "https://ghe.test/api/graphql",
    ]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in mock.requests)


async def test_the_token_is_absent_from_the_client_and_its_errors(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    client = make_client(mock)
    assert TOKEN not in repr(client)
    mock.on("GET", r"/user$", reply({"message": "Bad credentials"}, 401))
    with pytest.raises(SCMAuthFailed) as raised:
        await client.get("user")
    assert TOKEN not in str(raised.value)
    assert TOKEN not in repr(raised.value)


async def test_one_budget_is_shared_by_every_client(
    autojump_clock: trio.testing.MockClock, mock: MockGitHub
) -> None:
    budget = RateBudget(clock=now)
    mock.on("GET", r"/user$", reply(SECONDARY, 403, headers={"retry-after": "120"}))
    first: GitHubClient = make_client(mock, budget=budget)
    second = make_client(mock, budget=budget)
    with pytest.raises(SCMRateLimited):
        await first.get("user")
    with pytest.raises(SCMRateLimited):
        await second.get("user")
    assert len(mock.requests) == 1
