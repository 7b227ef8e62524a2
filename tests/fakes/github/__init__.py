"""A faithful fake of the GitHub API subset the daemon's PR observer uses.

Build a world, serve it, and point a client at it::

    fake = FakeGitHub(FakeClock())
    alice = fake.world.add_user("alice", token="ghp_alice")
    repo = fake.world.create_repo("acme/api")
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    async with fake.client("ghp_alice") as github:
        response = await github.get("/repos/acme/api/pulls", params={"per_page": 100})

For real sockets, ``async with serve_on_loopback(fake) as urls:`` serves the API and the
log-blob origin on two loopback ports. ``fake.faults.inject("/graphql", ErrorStatus(502),
times=2)`` makes the next two GraphQL calls fail; ``fake.log`` records every request and
what it cost; ``query_errors(text)`` checks a query offline as GitHub would.

See :mod:`.world` for the scenario helpers, :mod:`.faults` for fault injection and
:mod:`.webhooks` for signed deliveries. Where GitHub's behaviour is observed rather than
documented, the fake follows the observation and says so where it does it."""

from tests.fakes.github.app import FakeGitHub, LoopbackUrls, serve_on_loopback
from tests.fakes.github.clock import FakeClock, RealClock
from tests.fakes.github.faults import (
    Delay,
    ErrorStatus,
    GraphQLRateLimited,
    PrimaryExhausted,
    SecondaryLimit,
    Truncate,
)
from tests.fakes.github.graphql_api import query_errors
from tests.fakes.github.webhooks import WebhookSender, build_delivery, signature_256
from tests.fakes.github.world import MergeRefusedError, World

__all__ = [
    "Delay",
    "ErrorStatus",
    "FakeClock",
    "FakeGitHub",
    "GraphQLRateLimited",
    "LoopbackUrls",
    "MergeRefusedError",
    "PrimaryExhausted",
    "RealClock",
    "SecondaryLimit",
    "Truncate",
    "WebhookSender",
    "World",
    "build_delivery",
    "query_errors",
    "serve_on_loopback",
    "signature_256",
]
