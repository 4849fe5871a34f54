"""Exceptions v0 plugins import: ``from dioptra.sdk.exceptions import ...``.

The task-engine errors live in :mod:`dioptra.sdk.exceptions.task_engine` and the base
classes in :mod:`dioptra.sdk.exceptions.base`, as in v0.
"""

from dioptra.sdk.exceptions.generics import EstimatorPredictGenericPredTypeError
from dioptra.sdk.exceptions.optional_dependencies import (
    ARTDependencyError,
    CryptographyDependencyError,
    PrefectDependencyError,
    TensorflowDependencyError,
)
from dioptra.sdk.exceptions.pyplugs import (
    UnknownPackageError,
    UnknownPluginError,
    UnknownPluginFunctionError,
)

__all__ = [
    "ARTDependencyError",
    "CryptographyDependencyError",
    "EstimatorPredictGenericPredTypeError",
    "PrefectDependencyError",
    "TensorflowDependencyError",
    "UnknownPackageError",
    "UnknownPluginError",
    "UnknownPluginFunctionError",
]
