"""GraphQL: batched aliases with variables, validation as GitHub words it, GitHub's static
checks, the cost formula, per-alias NOT_FOUND, connections, and the PR facts a PR observer
reads (rollup, mergeability, reviews)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fakes.github import FakeClock, FakeGitHub, query_errors
from tests.fakes.github.model import Account, PullRequest, Repo

PR_FIELDS = """
fragment PR on PullRequest {
  id number url state isDraft merged closed title
  headRefName headRefOid baseRefName headRepository { nameWithOwner }
  author { login __typename }
  mergeable mergeStateStatus reviewDecision
  createdAt updatedAt mergedAt closedAt
  commits(last: 1) { nodes { commit { oid
    statusCheckRollup { state
      contexts(first: 100) {
        pageInfo { hasNextPage endCursor }
        nodes { __typename
          ... on CheckRun { databaseId name status conclusion detailsUrl startedAt completedAt
                            checkSuite { app { slug } } }
          ... on StatusContext { context state targetUrl createdAt } } } } } } }
}
"""

CONTEXTS_PAGE = """
query($o: String!, $n: String!, $p: Int!, $after: String!) {
  repository(owner: $o, name: $n) { pullRequest(number: $p) {
    commits(last: 1) { nodes { commit { oid statusCheckRollup { contexts(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor } nodes { __typename ... on CheckRun { name } } } } } } } } }
}
"""

REVIEW_THREADS = """
query($o: String!, $n: String!, $p: Int!, $before: String) {
  repository(owner: $o, name: $n) { pullRequest(number: $p) {
    reviewDecision updatedAt
    reviewThreads(last: 50, before: $before) { pageInfo { hasPreviousPage startCursor }
      nodes { id isResolved isOutdated path line
        comments(first: 5) { nodes { id databaseId url body createdAt author { login __typename } } } } }
    reviews(last: 20, states: [APPROVED, CHANGES_REQUESTED]) {
      nodes { id state url body submittedAt commit { oid } author { login __typename } } } } }
}
"""


def batch_query(count: int) -> str:
    variables = ", ".join(f"$o{i}: String!, $n{i}: String!, $p{i}: Int!" for i in range(count))
    aliases = "\n".join(
        f"pr{i}: repository(owner: $o{i}, name: $n{i}) {{ pullRequest(number: $p{i}) {{ ...PR }} }}"
        for i in range(count)
    )
    return f"query Batch({variables}) {{\n{aliases}\nrateLimit {{ cost remaining resetAt }}\n}}\n{PR_FIELDS}"


def batch_variables(refs: list[tuple[str, str, int]]) -> dict[str, object]:
    variables: dict[str, object] = {}
    for i, (owner, name, number) in enumerate(refs):
        variables |= {f"o{i}": owner, f"n{i}": name, f"p{i}": number}
    return variables


async def _run(github: httpx.AsyncClient, query: str, **variables: object) -> Any:
    """The decoded answer; JSON, so typed as loosely as ``httpx.Response.json``."""
    response = await github.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_batch_of_25_aliased_prs_runs_and_costs_one_point(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    prs = [fake.world.open_pr(repo, head_ref=f"feat/{n}", author=alice) for n in range(25)]
    fake.world.add_check_run(prs[3], "test", conclusion="failure")
    fake.world.set_status(prs[3], "ci/jenkins", "success", target_url="https://ci.example/9")
    query = batch_query(25)

    answer = await _run(
        github, query, **batch_variables([("acme", "api", pr.number) for pr in prs])
    )

    assert query_errors(query) == []
    assert "errors" not in answer
    data = answer["data"]
    assert [data[f"pr{i}"]["pullRequest"]["number"] for i in range(25)] == [p.number for p in prs]
    fourth = data["pr3"]["pullRequest"]
    assert fourth["headRefOid"] == prs[3].head_sha
    assert (fourth["state"], fourth["merged"], fourth["mergeable"]) == ("OPEN", False, "MERGEABLE")
    assert fourth["author"] == {"login": "alice", "__typename": "User"}
    [commit] = fourth["commits"]["nodes"]
    rollup = commit["commit"]["statusCheckRollup"]
    assert rollup["state"] == "FAILURE"
    check, status = rollup["contexts"]["nodes"]
    assert check | {"__typename": "CheckRun", "name": "test", "status": "COMPLETED"} == check
    assert (check["conclusion"], check["checkSuite"]["app"]["slug"]) == (
        "FAILURE",
        "github-actions",
    )
    assert check["databaseId"] == fake.world.latest_runs(repo, prs[3].head_sha)[0].id
    assert status == status | {
        "__typename": "StatusContext",
        "context": "ci/jenkins",
        "state": "SUCCESS",
    }
    assert data["pr0"]["pullRequest"]["commits"]["nodes"][0]["commit"]["statusCheckRollup"] is None
    assert data["rateLimit"]["cost"] == 1
    assert data["rateLimit"]["remaining"] == 4999
    assert fake.log.points("graphql") == 1


async def test_a_missing_pr_is_null_with_a_not_found_error_for_its_alias_only(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    refs = [("acme", "api", pr.number), ("acme", "api", 99), ("acme", "gone", 1)]

    answer = await _run(github, batch_query(3), **batch_variables(refs))

    data = answer["data"]
    assert data["pr0"]["pullRequest"]["number"] == pr.number
    assert data["pr1"] == {"pullRequest": None}
    assert data["pr2"] is None
    errors = answer["errors"]
    assert [(e["type"], e["path"], e["message"]) for e in errors] == [
        (
            "NOT_FOUND",
            ["pr1", "pullRequest"],
            "Could not resolve to a PullRequest with the number of 99.",
        ),
        ("NOT_FOUND", ["pr2"], "Could not resolve to a Repository with the name 'acme/gone'."),
    ]
    assert all(e["locations"] for e in errors)


async def test_an_unknown_field_is_rejected_as_github_words_it_and_not_charged(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo
) -> None:
    query = '{ repository(owner: "acme", name: "api") { pullRequest(number: 1) { nosuchField } } }'

    answer = await _run(github, query)

    assert answer == {
        "errors": [
            {
                "message": "Field 'nosuchField' doesn't exist on type 'PullRequest'",
                "extensions": {
                    "code": "undefinedField",
                    "typeName": "PullRequest",
                    "fieldName": "nosuchField",
                },
                "locations": [{"line": 1, "column": 69}],
                "path": ["query", "repository", "pullRequest", "nosuchField"],
            }
        ]
    }
    assert fake.log.points("graphql") == 0


async def test_unknown_arguments_and_bad_variables_are_rejected(github: httpx.AsyncClient) -> None:
    query = 'query Q { repository(owner: "acme", name: "api") { pullRequest(number: 1) { commits(first: 1, since: "x") { totalCount } } } }'

    unknown_argument = await _run(github, query)
    bad_variable = await _run(
        github,
        'query($n: Int!) { repository(owner: "a", name: "b") { pullRequest(number: $n) { id } } }',
        n="one",
    )

    [error] = unknown_argument["errors"]
    assert error["message"] == "Field 'commits' doesn't accept argument 'since'"
    assert error["extensions"]["code"] == "argumentNotAccepted"
    assert error["path"] == ["query Q", "repository", "pullRequest", "commits"]
    assert "data" not in bad_variable
    assert "$n" in bad_variable["errors"][0]["message"]


async def test_connections_need_first_or_last_of_at_most_100(github: httpx.AsyncClient) -> None:
    query = '{ repository(owner: "acme", name: "api") { pullRequest(number: 1) { reviewThreads { totalCount } commits(last: 101) { totalCount } } } }'

    answer = await _run(github, query)

    assert [(e["type"], e["message"]) for e in answer["errors"]] == [
        (
            "MISSING_PAGINATION_BOUNDARIES",
            "You must provide a `first` or `last` value to properly paginate the `reviewThreads` connection.",
        ),
        (
            "EXCESSIVE_PAGINATION",
            "Requesting 101 records on the `commits` connection exceeds the `last` limit of 100 records.",
        ),
    ]
    assert query_errors(query) == answer["errors"]


async def test_the_cost_counts_requests_for_nested_connections(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    # 25 thread connections, each with 50 comment connections inside: 25 + 25 * 50 = 1,275
    # requests, so 13 points.
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    aliases = " ".join(
        f'r{i}: repository(owner: "acme", name: "api") {{ pullRequest(number: {pr.number}) {{ '
        "reviewThreads(last: 50) { nodes { comments(first: 5) { totalCount } } } } }"
        for i in range(25)
    )

    answer = await _run(
        github, f"{{ {aliases} rateLimit {{ cost remaining used limit nodeCount }} }}"
    )

    assert answer["data"]["rateLimit"] == {
        "cost": 13,
        "remaining": 5000 - 13,
        "used": 13,
        "limit": 5000,
        "nodeCount": 25 * 50 + 25 * 50 * 5,
    }


async def test_a_query_too_expensive_for_what_is_left_is_rate_limited(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.consume(alice, "graphql", 4999)
    cheap = "{ viewer { login } }"
    dear = (
        "{ "
        + " ".join(
            f'r{i}: repository(owner: "acme", name: "api") {{ pullRequest(number: 1) {{ reviewThreads(last: 100) {{ nodes {{ comments(first: 1) {{ totalCount }} }} }} }} }}'
            for i in range(3)
        )
        + " }"
    )

    refused = await _run(github, dear)
    served = await _run(github, cheap)

    assert refused["errors"][0]["type"] == "RATE_LIMITED"
    assert served == {"data": {"viewer": {"login": "alice"}}}


async def test_more_than_100_contexts_page_on_with_the_end_cursor(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    for n in range(130):
        fake.world.add_check_run(pr, f"job-{n:03d}", conclusion="success")
    first = await _run(github, batch_query(1), **batch_variables([("acme", "api", pr.number)]))
    page = _contexts(first["data"]["pr0"]["pullRequest"])

    second = await _run(
        github, CONTEXTS_PAGE, o="acme", n="api", p=pr.number, after=page["pageInfo"]["endCursor"]
    )
    rest = _contexts(second["data"]["repository"]["pullRequest"])

    assert (len(page["nodes"]), page["pageInfo"]["hasNextPage"]) == (100, True)
    assert (len(rest["nodes"]), rest["pageInfo"]["hasNextPage"]) == (30, False)
    names = [n["name"] for n in page["nodes"] + rest["nodes"]]
    assert names == [f"job-{n:03d}" for n in range(130)]


def _contexts(pr: Any) -> Any:
    return pr["commits"]["nodes"][0]["commit"]["statusCheckRollup"]["contexts"]


async def test_a_rerun_replaces_its_predecessor_in_the_rollup(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    failed = fake.world.add_check_run(pr, "test", conclusion="failure")
    rerun = fake.world.rerun(failed)
    fake.world.finish_check(rerun, "success")

    answer = await _run(github, batch_query(1), **batch_variables([("acme", "api", pr.number)]))

    contexts = _contexts(answer["data"]["pr0"]["pullRequest"])
    assert [(c["databaseId"], c["conclusion"]) for c in contexts["nodes"]] == [
        (rerun.id, "SUCCESS")
    ]


async def test_merge_state_follows_the_pr_through_its_life(
    fake: FakeGitHub, clock: FakeClock, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.mergeability_delay = 10.0
    bob = fake.world.add_user("bob")
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice, draft=True)

    async def facts() -> tuple[object, ...]:
        answer = await _run(github, batch_query(1), **batch_variables([("acme", "api", pr.number)]))
        got = answer["data"]["pr0"]["pullRequest"]
        return (
            got["state"],
            got["isDraft"],
            got["mergeable"],
            got["mergeStateStatus"],
            got["reviewDecision"],
        )

    computing = await facts()
    clock.advance(10)
    draft = await facts()
    fake.world.set_draft(pr, False)
    fake.world.add_review(pr, bob, state="CHANGES_REQUESTED")
    changes = await facts()
    fake.world.add_review(pr, bob, state="APPROVED")
    approved = await facts()
    fake.world.set_mergeable(pr, conflicting=True)
    conflicting = await facts()
    fake.world.set_mergeable(pr, conflicting=False)
    fake.world.merge(pr)
    merged = await facts()

    assert computing == ("OPEN", True, "UNKNOWN", "UNKNOWN", None)
    assert draft == ("OPEN", True, "MERGEABLE", "BLOCKED", None)
    assert changes == ("OPEN", False, "MERGEABLE", "BLOCKED", "CHANGES_REQUESTED")
    assert approved == ("OPEN", False, "MERGEABLE", "CLEAN", "APPROVED")
    assert conflicting == ("OPEN", False, "CONFLICTING", "DIRTY", "APPROVED")
    assert merged[0] == "MERGED"


async def test_review_threads_page_backwards_and_show_bots_and_outdated_lines(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr = fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    bot = fake.world.add_user("coderabbitai[bot]", bot=True)
    threads = [
        fake.world.add_review_thread(pr, bot, path="app.py", line=n + 1, body=f"nit {n}")
        for n in range(60)
    ]
    fake.world.resolve_thread(threads[59])
    fake.world.mark_outdated(threads[58])
    fake.world.add_review(pr, bot, state="COMMENTED", body="summary")
    fake.world.add_review(pr, alice, state="APPROVED")

    latest = await _run(github, REVIEW_THREADS, o="acme", n="api", p=pr.number)
    window = latest["data"]["repository"]["pullRequest"]
    cursor = window["reviewThreads"]["pageInfo"]["startCursor"]
    older = await _run(github, REVIEW_THREADS, o="acme", n="api", p=pr.number, before=cursor)
    older_window = older["data"]["repository"]["pullRequest"]["reviewThreads"]

    nodes = window["reviewThreads"]["nodes"]
    assert [n["comments"]["nodes"][0]["body"] for n in nodes] == [f"nit {n}" for n in range(10, 60)]
    assert window["reviewThreads"]["pageInfo"]["hasPreviousPage"] is True
    assert (nodes[-1]["isResolved"], nodes[-2]["isOutdated"], nodes[-2]["line"]) == (
        True,
        True,
        None,
    )
    assert nodes[0]["comments"]["nodes"][0]["author"] == {
        "login": "coderabbitai",
        "__typename": "Bot",
    }
    assert [r["state"] for r in window["reviews"]["nodes"]] == ["APPROVED"]
    assert window["reviewDecision"] == "APPROVED"
    assert [n["comments"]["nodes"][0]["body"] for n in older_window["nodes"]] == [
        f"nit {n}" for n in range(10)
    ]
    assert older_window["pageInfo"]["hasPreviousPage"] is False


async def test_a_renamed_repository_resolves_by_its_old_name_unless_told_not_to(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    fake.world.open_pr(repo, head_ref="feat/login", author=alice)
    fake.world.rename_repo(repo, "acme/service")

    followed = await _run(github, '{ repository(owner: "acme", name: "api") { nameWithOwner id } }')
    strict = await _run(
        github, '{ repository(owner: "acme", name: "api", followRenames: false) { id } }'
    )

    assert followed["data"] == {"repository": {"nameWithOwner": "acme/service", "id": repo.node_id}}
    assert strict["data"] == {"repository": None}


async def test_a_node_is_found_by_its_global_id(
    fake: FakeGitHub, github: httpx.AsyncClient, repo: Repo, alice: Account
) -> None:
    pr: PullRequest = fake.world.open_pr(repo, head_ref="feat/login", author=alice)

    found = await _run(
        github, f'{{ node(id: "{pr.node_id}") {{ __typename ... on PullRequest {{ number }} }} }}'
    )
    missing = await _run(github, '{ node(id: "PR_nope") { id } }')

    assert found["data"] == {"node": {"__typename": "PullRequest", "number": pr.number}}
    assert missing["errors"][0]["type"] == "NOT_FOUND"


async def test_graphql_needs_a_token(fake: FakeGitHub, repo: Repo) -> None:
    async with fake.client() as anonymous:
        response = await anonymous.post("/graphql", json={"query": "{ viewer { login } }"})

    assert response.status_code == 401
    assert response.json()["message"] == "This endpoint requires you to be authenticated."


async def test_the_page_and_review_queries_an_observer_sends_validate() -> None:
    assert query_errors(CONTEXTS_PAGE) == []
    assert query_errors(REVIEW_THREADS) == []
