"""Errors raised by :mod:`dioptra.pyplugs` (the classes of ``dioptra.sdk.exceptions``)."""

from dioptra.sdk.exceptions.base import BasePyPlugsException as PyPlugsError
from dioptra.sdk.exceptions.pyplugs import (
    UnknownPackageError,
    UnknownPluginError,
    UnknownPluginFunctionError,
)

__all__ = [
    "PyPlugsError",
    "UnknownPackageError",
    "UnknownPluginError",
    "UnknownPluginFunctionError",
]
