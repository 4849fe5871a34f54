"""A function needs a package that is not installed (see ``require_package``)."""

from dioptra.sdk.exceptions.base import BaseOptionalDependencyError


class ARTDependencyError(BaseOptionalDependencyError):
    """The Adversarial Robustness Toolbox is not installed."""


class CryptographyDependencyError(BaseOptionalDependencyError):
    """``cryptography`` is not installed."""


class PrefectDependencyError(BaseOptionalDependencyError):
    """Prefect 1.x is not installed (``pip install dioptra-testbed[v0]``)."""


class TensorflowDependencyError(BaseOptionalDependencyError):
    """TensorFlow is not installed (it is not part of this testbed)."""
