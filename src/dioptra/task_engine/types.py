"""The task engine's static types: simple, structured (list/tuple/mapping) and unions."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dioptra.sdk.exceptions.task_engine import InvalidTypeStructureDefinitionError


class StructureType(enum.Enum):
    MAPPING = enum.auto()
    LIST = enum.auto()
    TUPLE = enum.auto()


class TypeStructure:
    """The shape of a structured type: ``LIST[E]``, ``TUPLE[...]``, ``MAPPING[...]``.

    A MAPPING definition is either a mapping ``{property: Type}`` (enumerated) or a
    two-item sequence ``[key Type, value Type]``.
    """

    def __init__(self, struct_type: StructureType, struct_def: Any) -> None:
        if struct_type is StructureType.MAPPING:
            if isinstance(struct_def, Mapping):
                struct_def = dict(struct_def)
            elif isinstance(struct_def, Sequence) and not isinstance(struct_def, str):
                if len(struct_def) != 2:
                    raise InvalidTypeStructureDefinitionError(
                        f"A key/value mapping needs exactly two types: {struct_def!r}"
                    )
                struct_def = list(struct_def)
            else:
                raise InvalidTypeStructureDefinitionError(
                    f"Invalid mapping structure definition: {struct_def!r}"
                )
        elif struct_type is StructureType.LIST:
            if not isinstance(struct_def, Type):
                raise InvalidTypeStructureDefinitionError(
                    f"A list structure needs a type: {struct_def!r}"
                )
        elif struct_type is StructureType.TUPLE:
            if not isinstance(struct_def, Sequence) or isinstance(struct_def, str):
                raise InvalidTypeStructureDefinitionError(
                    f"A tuple structure needs a sequence of types: {struct_def!r}"
                )
            struct_def = list(struct_def)
        self.struct_type = struct_type
        self.struct_def = struct_def

    @property
    def is_enumerated_mapping(self) -> bool:
        return self.struct_type is StructureType.MAPPING and isinstance(self.struct_def, dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TypeStructure):
            return NotImplemented
        return self.struct_type is other.struct_type and self.struct_def == other.struct_def

    def __hash__(self) -> int:
        if isinstance(self.struct_def, dict):
            inner: Any = frozenset(self.struct_def.items())
        elif isinstance(self.struct_def, list):
            inner = tuple(self.struct_def)
        else:
            inner = self.struct_def
        return hash((self.struct_type, inner))

    def __str__(self) -> str:
        name = self.struct_type.name
        if isinstance(self.struct_def, dict):
            inner = "{" + ", ".join(f"{k!r}: {v}" for k, v in self.struct_def.items()) + "}"
        elif isinstance(self.struct_def, list):
            inner = ", ".join(str(t) for t in self.struct_def)
        else:
            inner = str(self.struct_def)
        return f"{name}[{inner}]"

    def __repr__(self) -> str:
        return f"TypeStructure({self.struct_type}, {self.struct_def!r})"


class Type:
    """Abstract base of the task engine's types."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        raise NotImplementedError

    def __hash__(self) -> int:
        raise NotImplementedError


class SimpleType(Type):
    """An opaque named type, with at most one super-type."""

    def __init__(self, name: str, super_type: SimpleType | None = None) -> None:
        if name is None:
            raise ValueError("Simple types must have a name")
        super().__init__(name)
        self.super_type = super_type

    def is_subtype_of(self, other: Type) -> bool:
        """Whether ``other`` is a strict ancestor of this type."""
        ancestor = self.super_type
        while ancestor is not None:
            if ancestor == other:
                return True
            ancestor = ancestor.super_type
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimpleType) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return str(self.name)

    def __repr__(self) -> str:
        return f"SimpleType(name={self.name!r}, super_type={self.super_type!r})"


class StructuredType(Type):
    """A list, tuple or mapping type; named or anonymous."""

    def __init__(self, structure: TypeStructure, name: str | None = None) -> None:
        if structure is None:
            raise ValueError("Structured types need a structure")
        super().__init__(name)
        self.structure = structure

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StructuredType):
            return False
        if self.name is not None or other.name is not None:
            return self.name == other.name
        return self.structure == other.structure

    def __hash__(self) -> int:
        return hash(self.name) if self.name is not None else hash(self.structure)

    def __str__(self) -> str:
        return f"{self.name or '<anon>'}: {self.structure}"

    def __repr__(self) -> str:
        return f"StructuredType(structure={self.structure!r}, name={self.name!r})"


class UnionType(Type):
    """Any one of its member types (members are a set: order and duplicates don't count)."""

    def __init__(self, member_types: Iterable[Type], name: str | None = None) -> None:
        super().__init__(name)
        self.member_types = frozenset(member_types)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnionType):
            return False
        if self.name is not None or other.name is not None:
            return self.name == other.name
        return self.member_types == other.member_types

    def __hash__(self) -> int:
        return hash(self.name) if self.name is not None else hash(self.member_types)

    def __str__(self) -> str:
        members = ", ".join(sorted(str(t) for t in self.member_types))
        return f"{self.name or '<anon>'}: UNION[{members}]"

    def __repr__(self) -> str:
        return f"UnionType(member_types={list(self.member_types)!r}, name={self.name!r})"
