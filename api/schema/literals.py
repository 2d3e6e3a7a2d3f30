"""The input guard for values written into the document itself: a GraphQL string literal may
spell NUL as `"\\u0000"`, which the JSON body never shows (variables are guarded while the body
is parsed, `api.input_guard`). Refused at validation, naming where it sits, before anything
runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import (
    ArgumentNode,
    FieldNode,
    GraphQLError,
    ListValueNode,
    ObjectFieldNode,
    StringValueNode,
    VariableDefinitionNode,
)
from graphql.validation import ASTValidationRule

from api.domain.errors import Invalid
from api.domain.text import unstorable


class StorableStringLiterals(ASTValidationRule):
    """Every string literal must be text a field can hold (no NUL; lone surrogates are already
    a syntax error in GraphQL)."""

    def enter_string_value(
        self,
        node: StringValueNode,
        key: Any,
        parent: Any,
        path: Sequence[Any],
        ancestors: Sequence[Any],
    ) -> None:
        reason = unstorable(node.value)
        if reason is None:
            return
        error = Invalid(reason, field=_where([*ancestors, parent], path))
        self.report_error(GraphQLError(error.message, node, original_error=error))


def _where(containers: Sequence[Any], path: Sequence[Any]) -> str:
    """`createReferral.input.reasonCodes[0].display`: fields, arguments, input fields, list
    positions; `$name` for a variable's default value."""
    parts: list[str] = []
    for index, container in enumerate(containers):
        if isinstance(container, FieldNode):
            parts.append((container.alias or container.name).value)
        elif isinstance(container, ArgumentNode | ObjectFieldNode):
            parts.append(container.name.value)
        elif isinstance(container, VariableDefinitionNode):
            parts.append(f"${container.variable.name.value}")
        elif isinstance(container, ListValueNode) and index + 1 < len(path):
            if parts:
                parts[-1] += f"[{path[index + 1]}]"
    return ".".join(parts)
