"""Validation of an experiment description: ``validate`` lists issues, ``is_valid`` judges.

The checks run in v0's order (schema; names; tasks; steps; references; cycles;
parameter and type definitions; then types), and a later check runs only where the
earlier ones leave it something sound to look at. Unlike v0, no description makes
``validate`` raise: a type definition the registry cannot build (a redefined builtin, a
bad key type, a structured super-type) is reported as an issue.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dioptra.sdk.exceptions.task_engine import BaseTaskEngineError, StepReferenceCycleError
from dioptra.task_engine import type_registry, util
from dioptra.task_engine.issues import IssueSeverity, IssueType, ValidationIssue
from dioptra.task_engine.type_validation import check_types

_SCHEMA_FILE = Path(__file__).with_name("experiment_schema.json")


def _schema() -> dict[str, Any]:
    return json.loads(_SCHEMA_FILE.read_text(encoding="utf-8"))


def _error(type_: IssueType, message: str) -> ValidationIssue:
    return ValidationIssue(type_, IssueSeverity.ERROR, message)


def _semantic(message: str) -> ValidationIssue:
    return _error(IssueType.SEMANTIC, message)


def _location(path: list[Any]) -> str:
    """Where a schema error is, in the experiment's terms."""
    if not path:
        return "root level of experiment description"
    section, rest = path[0], path[1:]
    names = {"types": "types section", "parameters": "global parameters section",
             "tasks": "tasks section", "graph": "graph section"}
    if not rest and section in names:
        return names[section]
    deeper = "/" + "/".join(str(p) for p in rest[1:]) if len(rest) > 1 else ""
    if section == "types":
        return f'definition of type "{rest[0]}"' + (f" at location {deeper}" if deeper else "")
    if section == "parameters" and len(rest) == 1:
        return f'parameter "{rest[0]}"'
    if section == "tasks":
        where = f'task plugin "{rest[0]}"'
        if len(rest) > 1:
            where += {"outputs": " outputs", "inputs": " inputs", "plugin": " plugin ID"}.get(
                rest[1], ""
            )
        return where
    if section == "graph":
        where = f'step "{rest[0]}"'
        if len(rest) > 1 and rest[1] == "dependencies":
            where += " dependencies"
        return where
    return "experiment description location /" + "/".join(str(p) for p in path)


def _check_names(desc: Mapping[str, Any]) -> list[ValidationIssue]:
    issues = []
    for section, what in (("types", "Type names"), ("parameters", "Global parameter names"),
                          ("tasks", "Task short names"), ("graph", "Graph step names")):
        for key in desc.get(section) or {}:
            if not isinstance(key, str):
                issues.append(_semantic(f"{what} must be strings: {key!r}"))
            elif not key.strip():
                issues.append(_semantic(f"{what} must be non-empty/whitespace: {key!r}"))
    if issues:
        return issues
    for name in desc.get("parameters") or {}:
        if "." in name:
            issues.append(_semantic(
                f'Parameter name "{name}" contains a dot. References to it would be'
                " mistaken for step.output references."
            ))
    for name in desc["graph"]:
        if "." in name:
            issues.append(_semantic(
                f'Step name "{name}" contains a dot. References to it would be'
                " mistaken for step.output references."
            ))
    return issues


def _check_tasks(desc: Mapping[str, Any]) -> list[ValidationIssue]:
    issues = []
    known_types = set(type_registry.BUILTIN_TYPES) | set(desc.get("types") or {})
    tasks = desc["tasks"]
    for task_name, task_def in tasks.items():
        in_names = [util.input_def_get_name_type(d) for d in task_def.get("inputs", [])]
        out_names = util.task_output_defs(task_def)
        for kind, pairs in (("input", in_names), ("output", out_names)):
            repeated = sorted(n for n, c in Counter(n for n, _ in pairs).items() if c > 1)
            if repeated:
                issues.append(_semantic(
                    f'In task "{task_name}": some {kind} names are repeated: '
                    + ", ".join(repeated)
                ))
    for task_name, task_def in tasks.items():
        for kind, pairs in (
            ("input", [util.input_def_get_name_type(d) for d in task_def.get("inputs", [])]),
            ("output", util.task_output_defs(task_def)),
        ):
            for name, type_name in pairs:
                if type_name not in known_types:
                    issues.append(_semantic(
                        f'In task "{task_name}": {kind} "{name}" has undefined type: {type_name}'
                    ))
    for task_name, task_def in tasks.items():
        plugin = task_def["plugin"]
        if "." not in plugin:
            issues.append(_semantic(
                f'In task "{task_name}": plugin ID requires at least one ".": {plugin}'
            ))
        elif not all(plugin.split(".")):
            issues.append(_semantic(
                f'In task "{task_name}": all plugin module components must be of non-zero'
                f" length: {plugin}"
            ))
    return issues


def _check_step_structure(graph: Mapping[str, Any]) -> list[ValidationIssue]:
    issues = []
    for step_name, step in graph.items():
        if "task" in step:
            continue
        keys = [k for k in step if k != "dependencies"]
        if len(keys) != 1:
            issues.append(_semantic(
                f'In step "{step_name}": illegal task invocation: a short-form invocation'
                " must have exactly one property named after the task to invoke (besides"
                " \"dependencies\"); found: " + ", ".join(map(str, keys))
            ))
    return issues


def _check_invocations(desc: Mapping[str, Any]) -> list[ValidationIssue]:
    issues = []
    tasks = desc["tasks"]
    for step_name, step in desc["graph"].items():
        task_name = util.step_get_plugin_short_name(step)
        inputs = util.make_task_input_map(tasks[task_name])
        names = list(inputs)
        args, kwargs = util.step_get_invocation_arg_specs(step)
        prefix = f'In step "{step_name}": illegal task invocation: '
        if len(args) > len(names):
            issues.append(_semantic(
                prefix + "there are more positional args given than task parameters: "
                f"{len(args)} > {len(names)}"
            ))
        for key in kwargs:
            if key not in inputs:
                issues.append(_semantic(
                    prefix + f"keyword arg does not correspond to a task parameter: {key}"
                ))
            elif names.index(key) < len(args):
                issues.append(_semantic(
                    prefix + f'task parameter "{key}" is assigned a value both as a keyword'
                    f" arg and positional arg #{names.index(key) + 1}"
                ))
        for i, (name, in_def) in enumerate(inputs.items()):
            if i >= len(args) and name not in kwargs and util.input_def_is_required(in_def):
                issues.append(_semantic(
                    prefix + f"required task parameter is not assigned a value: {name}"
                ))
    return issues


def _check_references(desc: Mapping[str, Any]) -> list[ValidationIssue]:
    issues = []
    params = desc.get("parameters") or {}
    graph = desc["graph"]
    tasks = desc["tasks"]
    for step_name, step in graph.items():
        for ref in util.step_references(step):
            head, dot, out = ref.partition(".")
            where = f'In step "{step_name}": reference "{ref}": '
            if head in params:
                if dot:
                    issues.append(_semantic(
                        where + f"references to parameters may not include an output name: {out}"
                    ))
                continue
            if head not in graph:
                issues.append(_semantic(f'In step "{step_name}": unresolvable reference: {head}'))
                continue
            outputs = [n for n, _ in util.task_output_defs(
                tasks[util.step_get_plugin_short_name(graph[head])]
            )]
            if dot:
                if out not in outputs:
                    issues.append(_semantic(where + f"unrecognized output: {out}"))
            elif not outputs:
                issues.append(_semantic(where + "referenced step produces no output"))
            elif len(outputs) > 1:
                issues.append(_semantic(
                    where + "an output name must be given when the step produces several"
                    " outputs: " + ", ".join(outputs)
                ))
        unknown = [d for d in util.step_get_dependencies(step) if d not in graph]
        if unknown:
            issues.append(_semantic(
                f'In step "{step_name}": unrecognized dependency step(s): ' + ", ".join(unknown)
            ))
    return issues


def _check_types_section(desc: Mapping[str, Any]) -> list[ValidationIssue]:
    issues = []
    type_defs = desc.get("types") or {}
    known = set(type_registry.BUILTIN_TYPES) | set(type_defs)
    for name, param_def in (desc.get("parameters") or {}).items():
        if isinstance(param_def, Mapping):
            if "type" in param_def and param_def["type"] not in known:
                issues.append(_semantic(
                    f'In global parameter "{name}": undefined type: {param_def["type"]}'
                ))
            elif "type" not in param_def and "default" not in param_def:
                issues.append(_error(
                    IssueType.TYPE,
                    f'In global parameter "{name}": unable to obtain a type: it has neither'
                    " a type nor a default",
                ))
    undefined = False
    for name, type_def in type_defs.items():
        for dep in dict.fromkeys(type_registry.get_dependency_types(type_def)):
            if dep not in known:
                undefined = True
                issues.append(_semantic(
                    f'In definition of type "{name}": reference to undefined type: {dep}'
                ))
    if not undefined:  # v0 reported an undefined type a second time here
        for name in type_defs:
            if name in type_registry.BUILTIN_TYPES:
                issues.append(_semantic(
                    f"Redefinition of builtin types not allowed: {name}"
                ))
        if not issues:
            try:
                type_registry.build_type_registry(type_defs)
            except BaseTaskEngineError as err:  # cycles, and what v0 let escape (§3.6)
                issues.append(_semantic(str(err)))
    return issues


def _check_union_duplicates(desc: Mapping[str, Any]) -> list[ValidationIssue]:
    issues = []
    for name, type_def in (desc.get("types") or {}).items():
        for members in _unions(type_def):
            names = [m if isinstance(m, str) else json.dumps(m, sort_keys=True) for m in members]
            duplicates = sorted(n for n, c in Counter(names).items() if c > 1)
            if duplicates:
                issues.append(ValidationIssue(
                    IssueType.SEMANTIC, IssueSeverity.WARNING,
                    f'In definition of type "{name}": duplicate member types encountered: '
                    + ", ".join(duplicates),
                ))
    return issues


def _unions(type_def: Any):
    if isinstance(type_def, Mapping):
        for key, value in type_def.items():
            if key == "union" and isinstance(value, list):
                yield value
            items = value.values() if isinstance(value, Mapping) else (
                value if isinstance(value, list) else [value]
            )
            for item in items:
                yield from _unions(item)


def _manually_validate(desc: Mapping[str, Any]) -> list[ValidationIssue]:
    issues = _check_names(desc)
    names_ok = not issues
    issues += _check_tasks(desc)
    structure = _check_step_structure(desc["graph"])
    issues += structure
    params = desc.get("parameters") or {}
    clashes = sorted(set(params) & set(desc["graph"])) if names_ok else []
    if clashes:
        issues.append(_semantic(
            "Some parameters and steps have the same name: " + ", ".join(clashes)
        ))
    if not structure:
        unknown = [
            _semantic(f'In step "{s}": unrecognized task plugin: {t}')
            for s, step in desc["graph"].items()
            if (t := util.step_get_plugin_short_name(step)) not in desc["tasks"]
        ]
        issues += unknown
        if not unknown:
            issues += _check_invocations(desc)
            if not clashes and names_ok:
                refs = _check_references(desc)
                issues += refs
                if not refs:
                    try:
                        util.get_sorted_steps(desc["graph"])
                    except StepReferenceCycleError as err:
                        issues.append(_semantic(str(err)))
    issues += _check_types_section(desc)
    return issues


def validate(experiment_desc: Any) -> list[ValidationIssue]:
    """Every issue of the description (an empty list: none at all)."""
    schema = _schema()
    messages = util.schema_validate(experiment_desc, schema, _location)
    if messages:
        return [_error(IssueType.SCHEMA, m) for m in messages]
    issues = _manually_validate(experiment_desc)
    if not any(i.severity is IssueSeverity.ERROR for i in issues):
        issues += check_types(experiment_desc)
        issues += _check_union_duplicates(experiment_desc)
    return issues


def is_valid(experiment_desc: Any) -> bool:
    """True when no issue is an ERROR (warnings are allowed)."""
    return not any(i.severity is IssueSeverity.ERROR for i in validate(experiment_desc))
