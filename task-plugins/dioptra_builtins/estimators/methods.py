"""Fit and predict with any ART estimator; training time goes to MLflow."""

from __future__ import annotations

import time

import mlflow
import numpy as np

from dioptra import pyplugs


def _labels_for(estimator, y):
    """ART's scikit-learn wrappers need one-hot labels in ``fit``; indices are converted."""

    from art.estimators.classification.scikitlearn import ScikitlearnClassifier

    y = np.asarray(y)
    if isinstance(estimator, ScikitlearnClassifier) and y.ndim == 1:
        n_classes = max(int(y.max()) + 1, int(getattr(estimator, "nb_classes", 0) or 0))
        one_hot = np.zeros((len(y), n_classes), dtype=np.float32)
        one_hot[np.arange(len(y)), y.astype(np.int64)] = 1.0
        return one_hot
    return y


@pyplugs.register
def fit(estimator, x: np.ndarray, y: np.ndarray, fit_kwargs: dict | None = None):
    """Train ``estimator`` on ``(x, y)`` and return it.

    ``y`` may be class indices or one-hot rows.  ``fit_kwargs`` go to ``estimator.fit``
    (for PyTorch: ``nb_epochs``, ``batch_size``).
    When an MLflow run is active the wall time is logged as the metric
    ``training_time_in_minutes``.
    """

    y = _labels_for(estimator, y)
    start = time.perf_counter()
    estimator.fit(x, y, **(fit_kwargs or {}))
    minutes = (time.perf_counter() - start) / 60.0
    if mlflow.active_run() is not None:
        mlflow.log_metric("training_time_in_minutes", minutes)
    return estimator


@pyplugs.register
def predict(estimator, x: np.ndarray, predict_kwargs: dict | None = None) -> np.ndarray:
    """Class scores ``(N, n_classes)`` (logits for the PyTorch classifiers)."""

    return estimator.predict(x, **(predict_kwargs or {}))
