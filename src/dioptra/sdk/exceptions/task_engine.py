"""Errors of the declarative task engine (``dioptra.task_engine``).

Step errors say which step they happened in (``In step "<s>": ...``) once the engine
knows it; type errors say which type definition (``In definition of type "<T>": ...``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dioptra.sdk.exceptions.base import BaseTaskEngineError


class StepError(BaseTaskEngineError):
    """An error while handling one step; ``context_step_name`` may be set later."""

    def __init__(self, message: str, context_step_name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context_step_name = context_step_name

    def __str__(self) -> str:
        if self.context_step_name is None:
            return self.message
        return f'In step "{self.context_step_name}": {self.message}'


class StepNotFoundError(StepError):
    def __init__(self, step_name: str, context_step_name: str | None = None) -> None:
        super().__init__(f"Step not found: {step_name}", context_step_name)
        self.step_name = step_name


class OutputNotFoundError(StepError):
    def __init__(
        self, step_name: str, output_name: str, context_step_name: str | None = None
    ) -> None:
        super().__init__(
            f'Unrecognized output of step "{step_name}": {output_name}', context_step_name
        )
        self.step_name = step_name
        self.output_name = output_name


class IllegalOutputReferenceError(StepError):
    def __init__(self, step_name: str, context_step_name: str | None = None) -> None:
        super().__init__(
            "An output name must be given when referring to a step with several"
            f" outputs: {step_name}",
            context_step_name,
        )
        self.step_name = step_name


class NonIterableTaskOutputError(StepError):
    def __init__(self, value: Any, context_step_name: str | None = None) -> None:
        super().__init__(
            "A task declaring a list of outputs must return an iterable value:"
            f" {value!r} ({type(value)})",
            context_step_name,
        )
        self.value = value


class UnresolvableReferenceError(StepError):
    def __init__(self, reference_name: str, context_step_name: str | None = None) -> None:
        super().__init__(f"Unresolvable reference: {reference_name}", context_step_name)
        self.reference_name = reference_name


class TaskPluginNotFoundError(StepError):
    def __init__(self, task_plugin_short_name: str, context_step_name: str | None = None) -> None:
        super().__init__(f"Task plugin not found: {task_plugin_short_name}", context_step_name)
        self.task_plugin_short_name = task_plugin_short_name


class MissingTaskPluginNameError(StepError):
    def __init__(self, context_step_name: str | None = None) -> None:
        super().__init__("Step is missing a task plugin name", context_step_name)


class MissingGlobalParametersError(BaseTaskEngineError):
    def __init__(self, parameter_names: Iterable[str]) -> None:
        self.parameter_names = list(parameter_names)
        super().__init__(
            "Missing values for global parameters: " + ", ".join(self.parameter_names)
        )


class IllegalPluginNameError(BaseTaskEngineError):
    def __init__(self, plugin_name: str) -> None:
        super().__init__(
            f"A plugin name needs at least two dot-separated components: {plugin_name}"
        )
        self.plugin_name = plugin_name


class StepReferenceCycleError(BaseTaskEngineError):
    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("Step cycle detected: " + " > ".join(self.cycle))


class DioptraTypeError(BaseTaskEngineError):
    def __init__(self, message: str, context_type_name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context_type_name = context_type_name

    def __str__(self) -> str:
        if self.context_type_name is None:
            return self.message
        return f'In definition of type "{self.context_type_name}": {self.message}'


class TypeNotFoundError(DioptraTypeError):
    def __init__(self, type_name: str, context_type_name: str | None = None) -> None:
        super().__init__(f"Type not found: {type_name}", context_type_name)
        self.type_name = type_name


class NonSimpleSuperTypeError(DioptraTypeError):
    def __init__(self, super_type_name: str, context_type_name: str | None = None) -> None:
        super().__init__(f"Super-types must be simple: {super_type_name}", context_type_name)
        self.super_type_name = super_type_name


class InvalidKeyTypeError(DioptraTypeError):
    def __init__(self, invalid_key_type: Any, context_type_name: str | None = None) -> None:
        super().__init__(
            f"Invalid key type; require string or integer: {invalid_key_type}",
            context_type_name,
        )
        self.invalid_key_type = invalid_key_type


class TooManyTypeStructuresError(DioptraTypeError):
    def __init__(self, structure_types: Iterable[Any], context_type_name: str | None = None):
        self.structure_types = list(structure_types)
        names = ", ".join(getattr(s, "name", str(s)) for s in self.structure_types)
        super().__init__(
            f"A type may have at most one structure. Found: {names}", context_type_name
        )


class InvalidTypeStructureDefinitionError(DioptraTypeError):
    pass


class BuiltinTypeRedefinitionError(DioptraTypeError):
    def __init__(self, builtin_type_name: str) -> None:
        super().__init__(f"Redefinition of builtin types not allowed: {builtin_type_name}")
        self.builtin_type_name = builtin_type_name


class AnonymousSimpleTypeError(DioptraTypeError):
    def __init__(self) -> None:
        super().__init__("Simple types cannot be anonymous")


class TypeReferenceCycleError(BaseTaskEngineError):
    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("Type reference cycle detected: " + " > ".join(self.cycle))
