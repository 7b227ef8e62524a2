"""``POST /graphql``: graphql-core executes the query against the schema subset, after
GitHub's own checks (pagination bounds, node limit), pricing it by GitHub's formula and
charging the ``graphql`` bucket. Answers are shaped like GitHub's: HTTP 200 for query
errors and for ``RATE_LIMITED``; graphql-ruby's wording and ``extensions`` for an unknown
field or argument; ``type: NOT_FOUND`` beside partial data for a missing repository or PR.

:func:`query_errors` lets a client's tests validate their query texts offline."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
    visit,
)
from graphql.execution.values import get_variable_values
from graphql.language import ArgumentNode, Node, Visitor
from starlette.requests import Request

from tests.fakes.github import bodies
from tests.fakes.github.clock import iso
from tests.fakes.github.gateway import ApiResult, Caller
from tests.fakes.github.graphql_connection import GitHubFieldError
from tests.fakes.github.graphql_cost import analyse, operation_label
from tests.fakes.github.graphql_resolvers import RequestContext, Resolvers
from tests.fakes.github.world import World

SCHEMA_PATH = Path(__file__).with_name("schema_subset.graphql")
JSON = dict[str, object]
_UNDEFINED_FIELD = re.compile(r"Cannot query field '(\w+)' on type '(\w+)'\.")
_UNKNOWN_ARGUMENT = re.compile(r"Unknown argument '(\w+)' on field '(\w+)\.(\w+)'\.")


@cache
def load_schema() -> GraphQLSchema:
    return build_schema(SCHEMA_PATH.read_text())


def query_errors(query: str, variables: dict[str, object] | None = None) -> list[JSON]:
    """What GitHub would refuse ``query`` for before running it (empty when it is valid).
    Without ``variables`` they are not checked; pass them when a page size is a variable."""
    schema = load_schema()
    prepared = _prepare(schema, query, variables, None)
    if isinstance(prepared, list):
        return prepared
    return analyse(schema, *prepared).errors


class GraphQLApi:
    def __init__(self, world: World) -> None:
        self.world = world
        self.schema = load_schema()
        self.resolvers = Resolvers(world)

    async def handle(self, request: Request, caller: Caller) -> ApiResult:
        if caller.account is None:
            return ApiResult(401, bodies.graphql_requires_authentication(), points=0)
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return ApiResult(400, bodies.rest_error(400, "Problems parsing JSON"), points=0)
        query = payload.get("query") if isinstance(payload, dict) else None
        if not isinstance(query, str):
            message = "A query attribute must be specified and must be a string."
            return ApiResult(200, {"errors": [{"message": message}]}, points=0)
        variables = payload.get("variables") or {}
        if isinstance(variables, str):
            variables = json.loads(variables or "{}")
        prepared = _prepare(self.schema, query, variables, payload.get("operationName"))
        if isinstance(prepared, list):
            return ApiResult(200, {"errors": prepared}, points=0)
        document, operation, coerced = prepared
        cost = analyse(self.schema, document, operation, coerced)
        if cost.errors:
            return ApiResult(200, {"errors": cost.errors}, points=0)
        limits = self.world.rate_limits
        if limits.bucket(caller.identity, "graphql").remaining < cost.cost:
            return ApiResult(200, bodies.graphql_rate_limited(caller.account.id), points=0)
        bucket = limits.charge(caller.identity, "graphql", cost.cost)
        context = RequestContext(
            viewer=caller.account,
            rate_limit={
                "cost": cost.cost,
                "limit": bucket.limit,
                "nodeCount": cost.node_count,
                "remaining": bucket.remaining,
                "resetAt": iso(bucket.reset_at),
                "used": bucket.used,
            },
        )
        result = execute_sync(
            self.schema,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=payload.get("operationName"),
            field_resolver=self.resolvers.resolve,
            type_resolver=self.resolvers.type_name,
        )
        answer: JSON = {"data": result.data}
        if result.errors:
            answer["errors"] = [_execution_error(error) for error in result.errors]
        return ApiResult(200, answer, points=cost.cost, already_charged=True)


def _prepare(
    schema: GraphQLSchema, query: str, variables: dict[str, object] | None, operation_name: object
) -> tuple[DocumentNode, OperationDefinitionNode, dict[str, object]] | list[JSON]:
    """The parsed, validated operation and its coerced variables, or GitHub's errors for
    the query (GitHub's own static checks come after, in :func:`analyse`)."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return [dict(error.formatted)]
    errors = validate(schema, document)
    if errors:
        paths = _paths(document)
        return [_validation_error(error, paths) for error in errors]
    name = operation_name if isinstance(operation_name, str) else None
    operation = get_operation_ast(document, name)
    if operation is None:
        message = f'No operation named "{name}"' if name else "An operation name is required"
        return [{"message": message}]
    if variables is None:
        return document, operation, {}
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
    if isinstance(coerced, list):
        return [dict(error.formatted) for error in coerced]
    return document, operation, coerced.coerced


def _execution_error(error: GraphQLError) -> JSON:
    original = error.original_error
    if original is not None and not isinstance(original, GitHubFieldError):
        raise original  # a bug in the fake: fail the test rather than answer an error
    formatted = dict(error.formatted)
    return {"type": original.error_type, **formatted} if original else formatted


def _validation_error(error: GraphQLError, paths: dict[int, list[str]]) -> JSON:
    path = paths.get(id(error.nodes[0])) if error.nodes else None
    locations = [{"line": loc.line, "column": loc.column} for loc in error.locations or ()]
    shaped: JSON
    if match := _UNDEFINED_FIELD.match(error.message):
        field, type_name = match.groups()
        shaped = {
            "message": f"Field '{field}' doesn't exist on type '{type_name}'",
            "extensions": {"code": "undefinedField", "typeName": type_name, "fieldName": field},
        }
    elif match := _UNKNOWN_ARGUMENT.match(error.message):
        argument, _, field = match.groups()
        shaped = {
            "message": f"Field '{field}' doesn't accept argument '{argument}'",
            "extensions": {
                "code": "argumentNotAccepted",
                "name": field,
                "typeName": "Field",
                "argumentName": argument,
            },
        }
    else:
        shaped = {"message": error.message}
    return {**shaped, "locations": locations, **({"path": path} if path else {})}


def _paths(document: DocumentNode) -> dict[int, list[str]]:
    """graphql-ruby's error path for every field and argument node: the operation or
    fragment, then the response keys (with ``... on Type`` for inline fragments)."""
    paths: dict[int, list[str]] = {}
    stack: list[str] = []

    class Paths(Visitor):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
            stack.append(operation_label(node))

        def enter_fragment_definition(self, node: Node, *_: object) -> None:
            stack.append(f"fragment {node.name.value}")  # type: ignore[attr-defined]

        def enter_inline_fragment(self, node: Node, *_: object) -> None:
            condition = node.type_condition  # type: ignore[attr-defined]
            stack.append(f"... on {condition.name.value}" if condition else "...")

        def enter_field(self, node: FieldNode, *_: object) -> None:
            stack.append(node.alias.value if node.alias else node.name.value)
            paths[id(node)] = list(stack)

        def enter_argument(self, node: ArgumentNode, *_: object) -> None:
            paths[id(node)] = list(stack)

        def leave(self, node: Node, *_: object) -> None:
            if node.kind in {
                "operation_definition",
                "fragment_definition",
                "inline_fragment",
                "field",
            }:
                stack.pop()

    visit(document, Paths())
    return paths
