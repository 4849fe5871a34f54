"""Errors raised by :mod:`dioptra.pyplugs`."""


class PyPlugsError(Exception):
    """Base class of every pyplugs error."""


class UnknownPackageError(PyPlugsError):
    """The plugin package cannot be imported."""


class UnknownPluginError(PyPlugsError):
    """The package has no such plugin module."""


class UnknownPluginFunctionError(PyPlugsError):
    """The plugin module has no registered function of that name."""
