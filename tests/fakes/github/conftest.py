"""Fixtures for the fake GitHub's own tests: a fake on a fake clock, a user with a token,
a repository, and an in-process client authenticated as that user."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.github import FakeClock, FakeGitHub
from tests.fakes.github.model import Account, Repo

TOKEN = "ghp_alice_0123456789"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeGitHub:
    return FakeGitHub(clock)


@pytest.fixture
def alice(fake: FakeGitHub) -> Account:
    return fake.world.add_user("alice", token=TOKEN, name="Alice")


@pytest.fixture
def repo(fake: FakeGitHub, alice: Account) -> Repo:
    return fake.world.create_repo("acme/api")


@pytest.fixture
async def github(fake: FakeGitHub, alice: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with fake.client(TOKEN) as client:
        yield client
