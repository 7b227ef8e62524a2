"""GitHub's static checks and cost of a GraphQL query, by its documented rules:

* every connection needs ``first`` or ``last``, at most 100;
* the nodes a query may return (each connection's page size times its parents') stay under
  500,000;
* the cost is the number of requests needed to fill every connection (a connection costs
  one request per page of its parent connections), divided by 100 and rounded, at least 1.

Errors carry GitHub's ``type`` and a graphql-ruby style ``path`` (the operation or
fragment, then the response keys)."""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    value_from_ast_untyped,
)

MAX_PAGE = 100
MAX_NODES = 500_000


@dataclass
class QueryCost:
    cost: int = 1
    node_count: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)


def operation_label(operation: OperationDefinitionNode) -> str:
    kind = operation.operation.value
    return f"{kind} {operation.name.value}" if operation.name else kind


def analyse(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, object],
) -> QueryCost:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walker = _Walker(schema, fragments, variables)
    root = schema.query_type
    assert root is not None
    walker.walk(operation.selection_set, root, 1, [operation_label(operation)])
    result = QueryCost(
        cost=max(1, round(walker.requests / 100)),
        node_count=walker.nodes,
        errors=walker.errors,
    )
    if not result.errors and walker.nodes > MAX_NODES:
        result.errors.append(
            {
                "type": "MAX_NODE_LIMIT_EXCEEDED",
                "message": f"This query requests up to {walker.nodes:,} possible nodes which "
                f"exceeds the maximum limit of {MAX_NODES:,}.",
            }
        )
    return result


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, object],
    ) -> None:
        self.schema, self.fragments, self.variables = schema, fragments, variables
        self.requests = 0
        self.nodes = 0
        self.errors: list[dict[str, object]] = []

    def walk(
        self, selections: SelectionSetNode, parent: object, multiplier: int, path: list[str]
    ) -> None:
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                self._field(selection, parent, multiplier, path)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                label = [*path, f"... on {condition.name.value}"] if condition else path
                self.walk(selection.selection_set, target, multiplier, label)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                target = self.schema.get_type(fragment.type_condition.name.value)
                self.walk(fragment.selection_set, target, multiplier, path)

    def _field(self, node: FieldNode, parent: object, multiplier: int, path: list[str]) -> None:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return
        definition = parent.fields[name]
        arguments = {arg.name.value: self._value(arg.value) for arg in node.arguments or ()}
        here = [*path, node.alias.value if node.alias else name]
        named = get_named_type(definition.type)
        if named.name.endswith("Connection"):
            multiplier = self._connection(name, arguments, multiplier, here)
        if node.selection_set is not None:
            self.walk(node.selection_set, named, multiplier, here)

    def _connection(
        self, name: str, arguments: dict[str, object], multiplier: int, path: list[str]
    ) -> int:
        sizes = {k: v for k in ("first", "last") if isinstance(v := arguments.get(k), int)}
        if not sizes:
            self.errors.append(
                {
                    "type": "MISSING_PAGINATION_BOUNDARIES",
                    "path": path,
                    "message": f"You must provide a `first` or `last` value to properly "
                    f"paginate the `{name}` connection.",
                }
            )
            return multiplier
        for argument, size in sizes.items():
            if not 0 <= size <= MAX_PAGE:
                self.errors.append(
                    {
                        "type": "EXCESSIVE_PAGINATION",
                        "path": path,
                        "message": f"Requesting {size} records on the `{name}` connection "
                        f"exceeds the `{argument}` limit of {MAX_PAGE} records.",
                    }
                )
        page = min(max(sizes.values()), MAX_PAGE)
        self.requests += multiplier
        self.nodes += multiplier * page
        return multiplier * max(page, 1)

    def _value(self, value: ValueNode) -> object:
        if isinstance(value, VariableNode):
            return self.variables.get(value.name.value)
        return value_from_ast_untyped(value, self.variables)
