"""The GraphQL schema subset stays a faithful subset of GitHub's schema, and every field in
it resolves from the world."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import GraphQLInterfaceType, GraphQLObjectType, build_schema

from tests.fakes.github import World
from tests.fakes.github.graphql_api import load_schema
from tests.fakes.github.graphql_resolvers import Resolvers
from tests.fakes.github.schema_check import subset_differences

GITHUB = """
scalar URI
interface Node { id: ID! }
type Query implements Node {
  id: ID!
  repository(followRenames: Boolean = true, name: String!, owner: String!): Repository
}
type Repository implements Node {
  id: ID!
  name: String!
  pullRequest(number: Int!): PullRequest
}
type PullRequest implements Node { id: ID! title: String! url: URI! state: PullRequestState! }
enum PullRequestState { CLOSED MERGED OPEN }
union Item = PullRequest | Repository
"""
DICT_BACKED = ("Connection", "Edge")  # and PageInfo, RateLimit: plain dicts resolved by key


def test_every_field_of_every_object_type_has_a_resolver() -> None:
    tables = Resolvers(World()).tables
    unresolved = [
        f"{name}.{field}"
        for name, type_ in load_schema().type_map.items()
        if isinstance(type_, GraphQLObjectType)
        and not name.startswith("__")
        and not name.endswith(DICT_BACKED)
        and name not in {"PageInfo", "RateLimit"}
        for field in type_.fields
        if field not in tables.get(name, {})
        and not (name == "Query" and field in {"viewer", "rateLimit"})
    ]
    assert unresolved == []


def test_interfaces_are_implemented_only_by_types_that_have_them_on_github() -> None:
    schema = load_schema()
    implementers = {
        name: {i.name for i in type_.interfaces}
        for name, type_ in schema.type_map.items()
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType) and not name.startswith("__")
    }
    # Reviews and review comments have url/resourcePath on GitHub but do not implement
    # UniformResourceLocatable; a fragment spread on it must fail here as it fails there.
    assert implementers["PullRequestReview"] == {"Node"}
    assert implementers["PullRequestReviewComment"] == {"Node"}


def test_a_faithful_subset_has_no_differences() -> None:
    github = build_schema(GITHUB)
    subset = build_schema(
        "type Query { repository(name: String!, owner: String!): Repository }"
        " type Repository { name: String! }"
    )

    assert subset_differences(subset, github) == []


@pytest.mark.parametrize(
    ("subset", "difference"),
    [
        (
            "type Query { repository(owner: String!): Repository } type Repository { name: String! }",
            "Query.repository(name): required on GitHub, missing here",
        ),
        (
            "type Query { repository(name: String!, owner: String!): Repository } type Repository { name: String }",
            "Repository.name: String here, String! on GitHub",
        ),
        (
            "type Query { repository(name: String!, owner: String!, first: Int): Repository } type Repository { name: String! }",
            "Query.repository(first): no such argument on GitHub",
        ),
        (
            "type Query { repository(followRenames: Boolean = false, name: String!, owner: String!): Repository } type Repository { name: String! }",
            "Query.repository(followRenames): default false here, true on GitHub",
        ),
        ("type Query { nodeCount: Int }", "Query.nodeCount: no such field on GitHub"),
        (
            "type Query { id: ID! } enum PullRequestState { OPEN DRAFT }",
            "PullRequestState.DRAFT: no such value on GitHub",
        ),
        ("type Query { id: ID! } type Issue { id: ID! }", "Issue: not a GitHub type"),
        (
            "type Query { id: ID! } interface UniformResourceLocatable { url: URI! } scalar URI"
            " type PullRequest implements UniformResourceLocatable { url: URI! }",
            "PullRequest: GitHub's PullRequest does not implement UniformResourceLocatable",
        ),
        (
            "type Query { id: ID! } type PullRequest { id: ID! } type Repository { id: ID! } type Issue { id: ID! }"
            " union Item = PullRequest | Issue",
            "Item: Issue is no member on GitHub",
        ),
    ],
)
def test_the_checker_finds_every_kind_of_drift(subset: str, difference: str) -> None:
    assert difference in subset_differences(build_schema(subset), build_schema(GITHUB))


@pytest.mark.skipif(
    not os.environ.get("GITHUB_GRAPHQL_SCHEMA"),
    reason="set GITHUB_GRAPHQL_SCHEMA to a copy of GitHub's public schema.graphql to compare",
)
def test_the_subset_matches_githubs_published_schema() -> None:
    text = Path(os.environ["GITHUB_GRAPHQL_SCHEMA"]).read_text()
    github = build_schema(text, assume_valid_sdl=True)  # GitHub's SDL repeats a few fields

    assert subset_differences(load_schema(), github) == []
