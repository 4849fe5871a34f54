"""What validation reports: one ``ValidationIssue`` per problem found."""

from __future__ import annotations

import enum


class IssueType(enum.Enum):
    SYNTAX = enum.auto()  # kept for v0 compatibility; never produced
    SCHEMA = enum.auto()
    SEMANTIC = enum.auto()
    TYPE = enum.auto()


class IssueSeverity(enum.Enum):
    ERROR = enum.auto()
    WARNING = enum.auto()


class ValidationIssue:
    """An issue found in an experiment description: ``semantic.error: <message>``."""

    def __init__(self, type_: IssueType, severity: IssueSeverity, message: str) -> None:
        self.type = type_
        self.severity = severity
        self.message = message

    def __str__(self) -> str:
        return f"{self.type.name.lower()}.{self.severity.name.lower()}: {self.message}"

    def __repr__(self) -> str:
        return f"ValidationIssue({self.type}, {self.severity}, {self.message!r})"
