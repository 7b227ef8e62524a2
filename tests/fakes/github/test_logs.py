"""Job logs: a 302 from the API to a second origin with a URL that expires after a minute of
the world's time; that origin refuses the GitHub token; logs keep GitHub's shape."""

from __future__ import annotations

import re

import httpx

from tests.fakes.github import FakeClock, FakeGitHub
from tests.fakes.github.conftest import TOKEN
from tests.fakes.github.model import Account, CheckRun, Repo

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z ")


def _failed_job(fake: FakeGitHub, repo: Repo, alice: Account) -> CheckRun:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    run = fake.world.add_check_run(pr, "test")
    fake.world.start_check(run)
    fake.world.finish_check(run, "failure")
    return run


async def test_the_logs_endpoint_redirects_to_another_origin(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    run = _failed_job(fake, repo, alice)

    redirect = await github.get(f"/repos/acme/api/actions/jobs/{run.id}/logs")

    assert redirect.status_code == 302
    location = httpx.URL(redirect.headers["location"])
    assert location.host == "blob.test"
    assert set(location.params) >= {"se", "sig"}
    assert fake.log.entries[0].charged


async def test_following_the_redirect_drops_the_token_and_gets_githubs_log_shape(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    run = _failed_job(fake, repo, alice)

    log = await github.get(f"/repos/acme/api/actions/jobs/{run.id}/logs", follow_redirects=True)

    assert log.status_code == 200
    assert [r.authorization for r in fake.blobs.requests] == [None]
    text = log.text
    assert text.startswith("\ufeff")
    lines = text.removeprefix("\ufeff").splitlines()
    assert all(STAMP.match(line) for line in lines)
    assert "\x1b[31mFAILED\x1b[0m" in text
    assert lines[-1].endswith("##[error]Process completed with exit code 1.")


async def test_the_blob_origin_refuses_a_request_carrying_the_github_token(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    run = _failed_job(fake, repo, alice)
    location = (await github.get(f"/repos/acme/api/actions/jobs/{run.id}/logs")).headers["location"]

    leaked = await github.get(location)  # the client sends its Authorization header along

    assert leaked.status_code == 400
    assert "InvalidAuthenticationInfo" in leaked.text
    assert fake.blobs.requests[-1].authorization == f"Bearer {TOKEN}"


async def test_a_log_url_expires_after_a_minute_and_a_forged_one_never_works(
    fake: FakeGitHub, clock: FakeClock, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    run = _failed_job(fake, repo, alice)
    location = (await github.get(f"/repos/acme/api/actions/jobs/{run.id}/logs")).headers["location"]
    forged = location.replace(f"/{run.id}.txt", f"/{run.id + 1}.txt")

    async with fake.client() as blob_client:
        clock.advance(60)
        in_time = await blob_client.get(location)
        clock.advance(1)
        expired = await blob_client.get(location)
        tampered = await blob_client.get(forged)

    assert in_time.status_code == 200
    assert expired.status_code == 403
    assert "AuthenticationFailed" in expired.text
    assert tampered.status_code == 403


async def test_no_log_while_the_job_runs_or_for_an_apps_check_run(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    running = fake.world.add_check_run(pr, "test", status="in_progress")
    app = fake.world.add_app("circleci-checks", "CircleCI Checks")
    third_party = fake.world.add_check_run(pr, "circle", app=app, conclusion="failure")

    while_running = await github.get(f"/repos/acme/api/actions/jobs/{running.id}/logs")
    for_an_app = await github.get(f"/repos/acme/api/actions/jobs/{third_party.id}/logs")
    unknown = await github.get("/repos/acme/api/actions/jobs/1/logs")

    assert (while_running.status_code, for_an_app.status_code, unknown.status_code) == (
        404,
        404,
        404,
    )


async def test_a_test_can_give_a_jobs_log_lines_or_a_whole_log(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    lines = fake.world.add_check_run(pr, "a", conclusion="failure", log=["one", "two"])
    huge_text = "x" * 100 + "\n"
    huge = fake.world.add_check_run(pr, "b", conclusion="failure", log=huge_text * 20_000)

    got_lines = await github.get(
        f"/repos/acme/api/actions/jobs/{lines.id}/logs", follow_redirects=True
    )
    got_huge = await github.get(
        f"/repos/acme/api/actions/jobs/{huge.id}/logs", follow_redirects=True
    )

    assert [line.split(" ", 1)[1] for line in got_lines.text.lstrip("\ufeff").splitlines()] == [
        "one",
        "two",
    ]
    assert len(got_huge.content) == len(huge_text) * 20_000
