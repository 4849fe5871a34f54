"""Builtin types and the registry built from an experiment's ``types`` section."""

from __future__ import annotations

import graphlib
from collections.abc import Iterator, Mapping
from typing import Any

from dioptra.sdk.exceptions.task_engine import (
    AnonymousSimpleTypeError,
    BuiltinTypeRedefinitionError,
    DioptraTypeError,
    InvalidKeyTypeError,
    NonSimpleSuperTypeError,
    TooManyTypeStructuresError,
    TypeNotFoundError,
    TypeReferenceCycleError,
)
from dioptra.task_engine.types import (
    SimpleType,
    StructuredType,
    StructureType,
    Type,
    TypeStructure,
    UnionType,
)

TYPE_ANY = SimpleType("any")
TYPE_NUMBER = SimpleType("number")
TYPE_INTEGER = SimpleType("integer", TYPE_NUMBER)
TYPE_STRING = SimpleType("string")
TYPE_BOOLEAN = SimpleType("boolean")
TYPE_NULL = SimpleType("null")

BUILTIN_TYPES: dict[str, Type] = {
    t.name: t for t in (TYPE_ANY, TYPE_STRING, TYPE_INTEGER, TYPE_NUMBER, TYPE_BOOLEAN, TYPE_NULL)
}  # type: ignore[misc]

_STRUCTURE_KEYS = {"list": StructureType.LIST, "tuple": StructureType.TUPLE,
                   "mapping": StructureType.MAPPING}


def get_dependency_types(type_def: Any) -> Iterator[str]:
    """Every type name a definition refers to, inline definitions included."""
    if isinstance(type_def, str):
        yield type_def
    elif isinstance(type_def, Mapping):
        for key, value in type_def.items():
            if key == "is_a" and isinstance(value, str):
                yield value
            elif key in ("list",):
                yield from get_dependency_types(value)
            elif key in ("tuple", "union") and isinstance(value, list):
                for item in value:
                    yield from get_dependency_types(item)
            elif key == "mapping":
                items = value.values() if isinstance(value, Mapping) else value
                for item in items or ():
                    yield from get_dependency_types(item)


def get_sorted_types(type_defs: Mapping[str, Any]) -> list[str]:
    """The type names in dependency order (what a type refers to comes first)."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name, type_def in type_defs.items():
        sorter.add(name)
        for dep in get_dependency_types(type_def):
            if dep not in type_defs and dep not in BUILTIN_TYPES:
                raise TypeNotFoundError(dep, context_type_name=name)
            sorter.add(name, dep)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as err:
        cycle = list(err.args[1])
        raise TypeReferenceCycleError(cycle) from None


def build_or_get_type(type_def_or_name: Any, registry: Mapping[str, Type]) -> Type:
    """A registered type by name (KeyError if unknown), or a new anonymous type."""
    if isinstance(type_def_or_name, str):
        return registry[type_def_or_name]
    return build_type(None, type_def_or_name, registry)


def _lookup(name: Any, registry: Mapping[str, Type]) -> Type:
    try:
        return build_or_get_type(name, registry)
    except KeyError:
        raise TypeNotFoundError(str(name)) from None


def build_type(name: str | None, type_def: Any, registry: Mapping[str, Type]) -> Type:
    """Build the type ``name`` (None: anonymous) from its definition."""
    if type_def is None or (isinstance(type_def, Mapping) and not type_def):
        if name is None:
            raise AnonymousSimpleTypeError()
        return SimpleType(name)
    if not isinstance(type_def, Mapping):
        raise DioptraTypeError(f"Invalid type definition: {type_def!r}")
    structures = [k for k in type_def if k in _STRUCTURE_KEYS]
    has_union = "union" in type_def
    if "is_a" in type_def and (structures or has_union):
        raise DioptraTypeError("A type with a super-type cannot have a structure or union")
    if structures and has_union:
        raise DioptraTypeError("A type cannot have both a structure and a union")
    if len(structures) > 1:
        raise TooManyTypeStructuresError([_STRUCTURE_KEYS[k] for k in structures])
    if "is_a" in type_def:
        if name is None:
            raise AnonymousSimpleTypeError()
        super_type = _lookup(type_def["is_a"], registry)
        if not isinstance(super_type, SimpleType):
            raise NonSimpleSuperTypeError(str(type_def["is_a"]))
        return SimpleType(name, super_type)
    if has_union:
        members = type_def["union"] or []
        if not members:  # v0 quietly made this a simple type; an empty union fits nothing
            if name is None:
                raise AnonymousSimpleTypeError()
            return SimpleType(name)
        return UnionType([_lookup(m, registry) for m in members], name)
    if not structures:
        raise DioptraTypeError(f"Invalid type definition: {type_def!r}")
    key = structures[0]
    struct_type = _STRUCTURE_KEYS[key]
    value = type_def[key]
    if struct_type is StructureType.LIST:
        struct_def: Any = _lookup(value, registry)
    elif struct_type is StructureType.TUPLE:
        struct_def = [_lookup(v, registry) for v in value]
    elif isinstance(value, Mapping):
        struct_def = {k: _lookup(v, registry) for k, v in value.items()}
    else:
        struct_def = [_lookup(v, registry) for v in value]
        if struct_def[0] not in (TYPE_STRING, TYPE_INTEGER):
            raise InvalidKeyTypeError(struct_def[0])
    return StructuredType(TypeStructure(struct_type, struct_def), name)


def build_type_registry(type_defs: Mapping[str, Any] | None) -> dict[str, Type]:
    """The builtins plus every type of ``type_defs``, built in dependency order."""
    registry: dict[str, Type] = dict(BUILTIN_TYPES)
    type_defs = type_defs or {}
    for name in type_defs:
        if name in BUILTIN_TYPES:
            raise BuiltinTypeRedefinitionError(name)
    for name in get_sorted_types(type_defs):
        if name in BUILTIN_TYPES:
            continue
        try:
            registry[name] = build_type(name, type_defs[name], registry)
        except DioptraTypeError as err:
            if err.context_type_name is None:
                err.context_type_name = name
            raise
    return registry
