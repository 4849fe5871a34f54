"""Errors of the generic functions in ``dioptra.sdk.generics``."""

from dioptra.sdk.exceptions.base import BaseGenericsRegistryError


class EstimatorPredictGenericPredTypeError(BaseGenericsRegistryError):
    """``estimator_predict`` was asked for a prediction type it does not know."""
