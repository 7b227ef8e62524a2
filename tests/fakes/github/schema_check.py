"""Compare the fake's SDL subset with GitHub's full public schema.

The subset must never be laxer than GitHub: every type, field and argument it declares
exists there with the same type and default, and every argument or input field GitHub
requires is declared here too (else a query valid here would be refused by GitHub)."""

from __future__ import annotations

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    print_ast,
)
from graphql.utilities import ast_from_value


def subset_differences(subset: GraphQLSchema, github: GraphQLSchema) -> list[str]:
    """Every way ``subset`` is not a faithful subset of ``github`` (empty when it is)."""
    problems: list[str] = []
    for name, ours in subset.type_map.items():
        if name.startswith("__"):
            continue
        theirs = github.type_map.get(name)
        if theirs is None:
            problems.append(f"{name}: not a GitHub type")
        elif type(ours) is not type(theirs):
            problems.append(f"{name}: is a {type(theirs).__name__} on GitHub")
        else:
            problems.extend(_type_differences(ours, theirs))
    return problems


def _type_differences(ours: GraphQLNamedType, theirs: GraphQLNamedType) -> list[str]:
    name = ours.name
    if isinstance(ours, GraphQLObjectType | GraphQLInterfaceType):
        assert isinstance(theirs, GraphQLObjectType | GraphQLInterfaceType)
        problems = [
            f"{name}: GitHub's {name} does not implement {interface.name}"
            for interface in ours.interfaces
            if interface.name not in {i.name for i in theirs.interfaces}
        ]
        for field_name, field in ours.fields.items():
            real = theirs.fields.get(field_name)
            if real is None:
                problems.append(f"{name}.{field_name}: no such field on GitHub")
                continue
            if str(field.type) != str(real.type):
                problems.append(f"{name}.{field_name}: {field.type} here, {real.type} on GitHub")
            problems.extend(_argument_differences(f"{name}.{field_name}", field.args, real.args))
        return problems
    if isinstance(ours, GraphQLUnionType):
        assert isinstance(theirs, GraphQLUnionType)
        real_members = {member.name for member in theirs.types}
        return [
            f"{name}: {m.name} is no member on GitHub"
            for m in ours.types
            if m.name not in real_members
        ]
    if isinstance(ours, GraphQLEnumType):
        assert isinstance(theirs, GraphQLEnumType)
        return [
            f"{name}.{value}: no such value on GitHub"
            for value in ours.values
            if value not in theirs.values
        ]
    if isinstance(ours, GraphQLInputObjectType):
        assert isinstance(theirs, GraphQLInputObjectType)
        problems = []
        for field_name, field in ours.fields.items():
            real_field = theirs.fields.get(field_name)
            if real_field is None:
                problems.append(f"{name}.{field_name}: no such input field on GitHub")
            elif str(field.type) != str(real_field.type):
                problems.append(
                    f"{name}.{field_name}: {field.type} here, {real_field.type} on GitHub"
                )
        problems.extend(
            f"{name}.{field_name}: required on GitHub, missing here"
            for field_name, real_field in theirs.fields.items()
            if field_name not in ours.fields and _required(real_field.type, real_field.default)
        )
        return problems
    return []  # a scalar: the same kind is all a query can depend on


def _argument_differences(
    where: str, ours: dict[str, GraphQLArgument], theirs: dict[str, GraphQLArgument]
) -> list[str]:
    problems: list[str] = []
    for arg_name, arg in ours.items():
        real = theirs.get(arg_name)
        if real is None:
            problems.append(f"{where}({arg_name}): no such argument on GitHub")
        elif str(arg.type) != str(real.type):
            problems.append(f"{where}({arg_name}): {arg.type} here, {real.type} on GitHub")
        elif _default(arg) != _default(real):
            problems.append(
                f"{where}({arg_name}): default {_default(arg)} here, {_default(real)} on GitHub"
            )
    problems.extend(
        f"{where}({arg_name}): required on GitHub, missing here"
        for arg_name, real in theirs.items()
        if arg_name not in ours and _required(real.type, real.default)
    )
    return problems


def _default(arg: GraphQLArgument) -> str | None:
    """The declared default as SDL text (None for none), however graphql-core holds it."""
    default = arg.default
    if default is None:
        return None
    if default.literal is not None:
        return print_ast(default.literal)
    node = ast_from_value(default.value, arg.type)
    return None if node is None else print_ast(node)


def _required(type_: GraphQLInputType, default: object) -> bool:
    return isinstance(type_, GraphQLNonNull) and default is None
