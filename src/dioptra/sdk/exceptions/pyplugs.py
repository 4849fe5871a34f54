"""Errors of the task-plugin registry, shared by ``dioptra.pyplugs``."""

from dioptra.sdk.exceptions.base import BasePyPlugsException


class UnknownPackageError(BasePyPlugsException):
    """The plugin package cannot be imported."""


class UnknownPluginError(BasePyPlugsException):
    """The package has no such plugin module (or it registered nothing)."""


class UnknownPluginFunctionError(BasePyPlugsException):
    """The plugin module has no registered function of that name."""
