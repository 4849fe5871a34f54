"""Static type checking of an experiment description (after every other check passed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dioptra.task_engine import type_registry as tr
from dioptra.task_engine import util
from dioptra.task_engine.issues import IssueSeverity, IssueType, ValidationIssue
from dioptra.task_engine.types import (
    SimpleType,
    StructuredType,
    StructureType,
    Type,
    TypeStructure,
    UnionType,
)


def common_base(a: Type, b: Type) -> Type:
    """The nearest shared ancestor of two simple types (``any`` when there is none)."""
    if not (isinstance(a, SimpleType) and isinstance(b, SimpleType)):
        return tr.TYPE_ANY
    ancestors = []
    node: SimpleType | None = a
    while node is not None:
        ancestors.append(node)
        node = node.super_type
    node = b
    while node is not None:
        if node in ancestors:
            return node
        node = node.super_type
    return tr.TYPE_ANY


def infer_type(value: Any, resolve: Any = None) -> Type:
    """The type of a literal; ``resolve(ref)`` gives the type of a ``$reference``."""
    if isinstance(value, str):
        if resolve is not None and util.is_reference(value):
            return resolve(value[1:])
        return tr.TYPE_STRING
    if isinstance(value, bool):
        return tr.TYPE_BOOLEAN
    if isinstance(value, int):
        return tr.TYPE_INTEGER
    if isinstance(value, float):
        return tr.TYPE_NUMBER
    if value is None:
        return tr.TYPE_NULL
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            struct = {k: infer_type(v, resolve) for k, v in value.items()}
            return StructuredType(TypeStructure(StructureType.MAPPING, struct))
        key_types = [infer_type(k) for k in value]
        base = key_types[0]
        for key_type in key_types[1:]:
            base = common_base(base, key_type)
        if base != tr.TYPE_INTEGER:
            return tr.TYPE_ANY
        value_types = list(dict.fromkeys(infer_type(v, resolve) for v in value.values()))
        value_type = value_types[0] if len(value_types) == 1 else UnionType(value_types)
        return StructuredType(TypeStructure(StructureType.MAPPING, [base, value_type]))
    if util.is_iterable(value):
        return StructuredType(
            TypeStructure(StructureType.TUPLE, [infer_type(v, resolve) for v in value])
        )
    return tr.TYPE_ANY


def compatible(arg: Type, param: Type) -> bool:
    """Whether a value of type ``arg`` may be given where ``param`` is expected."""
    if param == tr.TYPE_ANY:
        return True
    if arg == param:
        return True
    if isinstance(arg, UnionType):
        return all(compatible(m, param) for m in arg.member_types)
    if isinstance(param, UnionType):
        return any(compatible(arg, m) for m in param.member_types)
    if isinstance(arg, SimpleType) and isinstance(param, SimpleType):
        return arg.is_subtype_of(param)
    if isinstance(arg, StructuredType) and isinstance(param, StructuredType):
        if arg.name is not None and param.name is not None:
            return False
        return _structure_compatible(arg.structure, param.structure)
    return False


def _structure_compatible(arg: TypeStructure, param: TypeStructure) -> bool:
    a, p = arg.struct_def, param.struct_def
    if arg.struct_type is StructureType.TUPLE and param.struct_type is StructureType.LIST:
        return all(compatible(t, p) for t in a)
    if arg.struct_type is not param.struct_type:
        return False
    if arg.struct_type is StructureType.LIST:
        return compatible(a, p)
    if arg.struct_type is StructureType.TUPLE:
        return len(a) == len(p) and all(compatible(x, y) for x, y in zip(a, p, strict=True))
    if isinstance(a, dict) and isinstance(p, dict):
        return a.keys() == p.keys() and all(compatible(a[k], p[k]) for k in a)
    if isinstance(a, dict):
        return p[0] == tr.TYPE_STRING and all(compatible(v, p[1]) for v in a.values())
    if isinstance(p, dict):
        return False
    return compatible(a[0], p[0]) and compatible(a[1], p[1])


def parameter_type(param_def: Any, registry: Mapping[str, Type]) -> Type:
    """The declared type of a global parameter, or the type of its default."""
    if isinstance(param_def, Mapping):
        if "type" in param_def:
            return registry[param_def["type"]]
        return infer_type(param_def.get("default"))
    return infer_type(param_def)


def check_types(desc: Mapping[str, Any]) -> list[ValidationIssue]:
    """TYPE issues: defaults against declared types, then step arguments against inputs."""
    registry = tr.build_type_registry(desc.get("types"))
    issues: list[ValidationIssue] = []
    params = desc.get("parameters") or {}
    param_types: dict[str, Type] = {}
    for name, param_def in params.items():
        param_types[name] = parameter_type(param_def, registry)
        if isinstance(param_def, Mapping) and "type" in param_def and "default" in param_def:
            default_type = infer_type(param_def["default"])
            if not compatible(default_type, param_types[name]):
                issues.append(ValidationIssue(
                    IssueType.TYPE, IssueSeverity.ERROR,
                    f'In global parameter "{name}": default value {param_def["default"]!r}'
                    f" is incompatible with its declared type: {param_types[name]}",
                ))
    if issues:
        return issues

    tasks = desc["tasks"]
    graph = desc["graph"]

    def resolve(ref: str) -> Type:
        step, _, out = ref.partition(".")
        if not out and step in param_types:
            return param_types[step]
        outputs = util.task_output_defs(tasks[util.step_get_plugin_short_name(graph[step])])
        if not out:
            return registry[outputs[0][1]]
        return registry[dict(outputs)[out]]

    for step_name, step in graph.items():
        task_def = tasks[util.step_get_plugin_short_name(step)]
        inputs = list(util.make_task_input_map(task_def).items())
        args, kwargs = util.step_get_invocation_arg_specs(step)
        checks = [
            (f"in positional parameter #{i + 1}", arg, inputs[i][1])
            for i, arg in enumerate(args)
        ] + [
            (f'in keyword argument "{k}"', arg, dict(inputs)[k]) for k, arg in kwargs.items()
        ]
        for where, arg, in_def in checks:
            expected = registry[util.input_def_get_name_type(in_def)[1]]
            found = infer_type(arg, resolve)
            if not compatible(found, expected):
                issues.append(ValidationIssue(
                    IssueType.TYPE, IssueSeverity.ERROR,
                    f'in step "{step_name}": {where}: Inferred invocation arg type and task'
                    " plugin input type are incompatible. "
                    f"Found {found}; expected {expected}",
                ))
    return issues
