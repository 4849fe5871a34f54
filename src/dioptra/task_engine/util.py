"""Helpers shared by validation and execution: steps, references, inputs, schema."""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jsonschema

from dioptra.sdk.exceptions.task_engine import StepNotFoundError, StepReferenceCycleError


def is_iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def schema_validate(
    instance: Any,
    schema: Mapping[str, Any],
    location_desc_callback: Callable[[list[Any]], str] | None = None,
) -> list[str]:
    """One message per schema error (see ``error_message``)."""
    from dioptra.task_engine.error_message import validation_error_to_message

    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [validation_error_to_message(e, schema, location_desc_callback) for e in errors]


def step_get_plugin_short_name(step: Mapping[str, Any]) -> str | None:
    """The task a step invokes: ``task`` (mixed form) or its first non-dependencies key."""
    if "task" in step:
        return step["task"]
    for key in step:
        if key != "dependencies":
            return key
    return None


def step_get_invocation_arg_specs(step: Mapping[str, Any]) -> tuple[Any, Any]:
    """``(positional arg specs, keyword arg specs)``, or ``(None, None)`` without a task."""
    if "task" in step:
        args = step.get("args", [])
        if not isinstance(args, list):
            args = [args]
        return args, dict(step.get("kwargs", {}))
    name = step_get_plugin_short_name(step)
    if name is None:
        return None, None
    value = step[name]
    if isinstance(value, Mapping):
        return [], dict(value)
    if isinstance(value, list):
        return value, {}
    return [value], {}


def step_get_dependencies(step: Mapping[str, Any]) -> list[str]:
    deps = step.get("dependencies", [])
    return [deps] if isinstance(deps, str) else list(deps)


def is_reference(value: Any) -> bool:
    """``$name`` or ``$step.output``; not ``$$text`` (an escape) nor a lone ``$``."""
    return (
        isinstance(value, str) and len(value) > 1 and value[0] == "$" and value[1] != "$"
    )


def unescape(value: Any) -> Any:
    """``$$text`` -> ``$text`` (only the first ``$`` goes)."""
    if isinstance(value, str) and value.startswith("$$"):
        return value[1:]
    return value


def get_references(spec: Any) -> Iterator[str]:
    """Reference strings (without the ``$``) anywhere in an argument spec.

    Unlike v0, a nested mapping with a ``task`` key is searched like any other mapping,
    so every reference that will be substituted is also validated and ordered.
    """
    if is_reference(spec):
        yield spec[1:]
    elif isinstance(spec, Mapping):
        for value in spec.values():
            yield from get_references(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from get_references(value)


def step_references(step: Mapping[str, Any]) -> Iterator[str]:
    args, kwargs = step_get_invocation_arg_specs(step)
    yield from get_references(args or [])
    yield from get_references(kwargs or {})


def get_sorted_steps(graph: Mapping[str, Any]) -> list[str]:
    """The steps in execution order: references and explicit dependencies first."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name, step in graph.items():
        sorter.add(name)
        for ref in step_references(step):
            dep = ref.split(".", 1)[0]
            if dep in graph:
                sorter.add(name, dep)
        for dep in step_get_dependencies(step):
            if dep not in graph:
                raise StepNotFoundError(dep, context_step_name=name)
            sorter.add(name, dep)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as err:
        raise StepReferenceCycleError(err.args[1]) from None


def input_def_get_name_type(in_def: Mapping[str, Any]) -> tuple[str, str]:
    """``(name, type)`` of a short-form or long-form input definition."""
    if "name" in in_def:
        return in_def["name"], in_def["type"]
    ((name, type_),) = in_def.items()
    return name, type_


def input_def_is_required(in_def: Mapping[str, Any]) -> bool:
    return bool(in_def.get("required", True)) if "name" in in_def else True


def make_task_input_map(task_def: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Input name -> input definition, in declaration order."""
    return {input_def_get_name_type(d)[0]: d for d in task_def.get("inputs", [])}


def task_output_defs(task_def: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(output name, type name)]``; a single mapping gives one entry."""
    outputs = task_def.get("outputs")
    if not outputs:
        return []
    if isinstance(outputs, Mapping):
        outputs = [outputs]
    return [next(iter(o.items())) for o in outputs]
