"""Run a (validated) experiment description: each step calls its task's plugin once."""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from dioptra import pyplugs
from dioptra.sdk.exceptions.task_engine import (
    IllegalOutputReferenceError,
    IllegalPluginNameError,
    MissingGlobalParametersError,
    MissingTaskPluginNameError,
    NonIterableTaskOutputError,
    OutputNotFoundError,
    StepError,
    StepNotFoundError,
    TaskPluginNotFoundError,
    UnresolvableReferenceError,
)
from dioptra.task_engine import util

log = logging.getLogger(__name__)


def _resolve_parameters(
    param_defs: Mapping[str, Any], global_parameters: MutableMapping[str, Any]
) -> None:
    """Add declared defaults to ``global_parameters``, drop undeclared ones (in place)."""
    missing = []
    for name, param_def in param_defs.items():
        if name in global_parameters:
            continue
        if isinstance(param_def, Mapping):
            if "default" in param_def:
                global_parameters[name] = param_def["default"]
            else:
                missing.append(name)
        else:
            global_parameters[name] = param_def
    if missing:
        raise MissingGlobalParametersError(missing)
    unused = [name for name in global_parameters if name not in param_defs]
    if unused:
        log.warning("Some global parameters were unused: %s", ", ".join(unused))
        for name in unused:
            del global_parameters[name]


def _resolve_reference(
    ref: str, params: Mapping[str, Any], outputs: Mapping[str, Mapping[str, Any]]
) -> Any:
    if "." in ref:
        step, out = ref.split(".", 1)
        if step not in outputs:
            raise StepNotFoundError(step)
        if out not in outputs[step]:
            raise OutputNotFoundError(step, out)
        return outputs[step][out]
    if ref in params:
        return params[ref]
    if ref in outputs:
        if len(outputs[ref]) != 1:
            raise IllegalOutputReferenceError(ref)
        return next(iter(outputs[ref].values()))
    raise UnresolvableReferenceError(ref)


def _substitute(spec: Any, params: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    """Replace references inside lists and dict values; ``$$x`` becomes ``$x``."""
    if util.is_reference(spec):
        return _resolve_reference(spec[1:], params, outputs)
    if isinstance(spec, str):
        return util.unescape(spec)
    if isinstance(spec, Mapping):
        return {k: _substitute(v, params, outputs) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_substitute(v, params, outputs) for v in spec]
    return spec


def _plugin_coords(plugin: str) -> tuple[str, str, str]:
    """``a.b.c.d`` -> ``("a.b", "c", "d")``; ``a.b`` -> ``("", "a", "b")``."""
    parts = plugin.rsplit(".", 2)
    if len(parts) < 2:
        raise IllegalPluginNameError(plugin)
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return parts[0], parts[1], parts[2]


def _call_plugin(plugin: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    package, module, func = _plugin_coords(plugin)
    # Positional-only in pyplugs.call: kwargs named package/plugin/func reach the plugin.
    return pyplugs.call(package, module, func, *args, **kwargs)


def _bind_outputs(step_name: str, task_def: Mapping[str, Any], value: Any) -> dict[str, Any]:
    outputs = task_def.get("outputs")
    if isinstance(outputs, Mapping):
        return {next(iter(outputs)): value}
    names = [next(iter(o)) for o in outputs]
    if not util.is_iterable(value):
        raise NonIterableTaskOutputError(value)
    if hasattr(value, "__len__") and len(value) != len(names):
        log.warning(
            'Different numbers of outputs and output definitions for step "%s": %d != %d',
            step_name, len(value), len(names),
        )
    return dict(zip(names, value, strict=False))


def run_experiment(
    experiment_desc: Mapping[str, Any], global_parameters: MutableMapping[str, Any]
) -> None:
    """Run every step in dependency order; the first error stops the run and propagates."""
    _resolve_parameters(experiment_desc.get("parameters") or {}, global_parameters)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("Global parameters:\n%s", "\n".join(
            f"  {k}: {v!r}" for k, v in global_parameters.items()
        ))
    graph = experiment_desc["graph"]
    tasks = experiment_desc["tasks"]
    order = util.get_sorted_steps(graph)
    log.debug("Step order:\n%s", "\n".join(f"  {s}" for s in order))
    outputs: dict[str, dict[str, Any]] = {}
    for step_name in order:
        step = graph[step_name]
        log.info("Running step: %s", step_name)
        try:
            task_name = util.step_get_plugin_short_name(step)
            if task_name is None:
                raise MissingTaskPluginNameError()
            if task_name not in tasks:
                raise TaskPluginNotFoundError(task_name)
            task_def = tasks[task_name]
            arg_specs, kwarg_specs = util.step_get_invocation_arg_specs(step)
            args = _substitute(arg_specs, global_parameters, outputs)
            kwargs = _substitute(kwarg_specs, global_parameters, outputs)
            if args:
                log.debug("args: %r", args)
            if kwargs:
                log.debug("kwargs: %r", kwargs)
            value = _call_plugin(task_def["plugin"], args, kwargs)
            if task_def.get("outputs"):
                outputs[step_name] = _bind_outputs(step_name, task_def, value)
                log.debug("Output(s): %r", outputs[step_name])
        except StepError as err:
            if err.context_step_name is None:
                err.context_step_name = step_name
            raise
