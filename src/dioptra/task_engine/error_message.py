"""Readable messages for JSON-schema errors, located in the experiment's own terms."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jsonschema
import jsonschema.exceptions


def json_path_to_string(path: Iterable[Any]) -> str:
    """``["a", 0, "b"]`` -> ``/a/0/b``."""
    return "/" + "/".join(str(p) for p in path)


def _resolve(schema_part: Any, schema: Mapping[str, Any]) -> Any:
    while isinstance(schema_part, Mapping) and "$ref" in schema_part:
        ref = schema_part["$ref"]
        node: Any = schema
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        schema_part = node
    return schema_part


def _alternative_names(alternatives: Sequence[Any], schema: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, alt in enumerate(alternatives, 1):
        resolved = _resolve(alt, schema)
        title = resolved.get("title") if isinstance(resolved, Mapping) else None
        title = title or f"Alternative #{i}"
        seen[title] = seen.get(title, 0) + 1
        names.append(title if seen[title] == 1 else f"{title} ({seen[title]})")
    return names


def _explain(
    error: jsonschema.exceptions.ValidationError,
    schema: Mapping[str, Any],
    location_desc_callback: Callable[[list[Any]], str] | None,
) -> str:
    if error.validator != "oneOf":
        return error.message
    alternatives = error.validator_value
    names = _alternative_names(alternatives, schema)
    listed = ", ".join(names)
    by_alt: dict[int, list[jsonschema.exceptions.ValidationError]] = {}
    for sub in error.context or []:
        by_alt.setdefault(sub.schema_path[0], []).append(sub)
    failed = [i for i in range(len(alternatives)) if i in by_alt]
    if len(failed) < len(alternatives):  # more than one alternative was satisfied
        ok = ", ".join(names[i] for i in range(len(alternatives)) if i not in by_alt)
        return (
            f"Must be exactly one of: {listed}.  "
            f"Content satisfied more than one alternative: {ok}."
        )
    lines = [f"Must be exactly one of: {listed}; all alternatives failed validation."]
    for i in failed:
        lines.append(f'Errors associated with alternative "{names[i]}":')
        for sub in by_alt[i]:
            text = validation_error_to_message(sub, schema, location_desc_callback)
            lines.append(textwrap.indent(text, "    "))
    return "\n".join(lines)


def validation_error_to_message(
    error: jsonschema.exceptions.ValidationError,
    schema: Mapping[str, Any],
    location_desc_callback: Callable[[list[Any]], str] | None = None,
) -> str:
    """``In <location>: <explanation>`` (a multi-line explanation goes indented below)."""
    path = list(error.absolute_path)
    location = (
        location_desc_callback(path)
        if location_desc_callback
        else f"location {json_path_to_string(path)}"
    )
    explanation = _explain(error, schema, location_desc_callback)
    if "\n" in explanation:
        return f"In {location}:\n" + textwrap.indent(explanation, "    ")
    return f"In {location}: {explanation}"


def validation_errors_to_message(
    errors: Iterable[jsonschema.exceptions.ValidationError],
    schema: Mapping[str, Any],
    location_desc_callback: Callable[[list[Any]], str] | None = None,
) -> str:
    return "\n\n".join(
        validation_error_to_message(e, schema, location_desc_callback) for e in errors
    )
