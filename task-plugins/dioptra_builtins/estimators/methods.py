"""Fit and predict with any ART estimator; training time goes to MLflow."""

from __future__ import annotations

import time
from collections.abc import Mapping

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


def _as_arrays(x, y=None) -> tuple[np.ndarray, np.ndarray | None]:
    """v0's calling forms to arrays: ``(x, y)``; a dataset as ``x`` with no ``y``.

    A dataset is a mapping (``x``/``y``, ``x_train``/``y_train``, or ``data``/``labels``),
    a pair ``(x, y)``, or an iterable of ``(x_batch, y_batch)`` batches such as a
    PyTorch ``DataLoader`` or a generator (v0 fed Keras its directory iterators).
    """

    if y is not None or hasattr(x, "shape") or isinstance(x, list):
        return x, y  # arrays, tensors and lists of samples are data as they are
    if isinstance(x, Mapping):
        for xk, yk in (("x", "y"), ("x_train", "y_train"), ("data", "labels")):
            if xk in x:
                return np.asarray(x[xk]), (np.asarray(x[yk]) if yk in x else None)
        raise ValueError(f"a dataset mapping needs x/y or x_train/y_train keys: {sorted(x)}")
    if isinstance(x, tuple) and len(x) == 2:
        return np.asarray(x[0]), np.asarray(x[1])
    xs, ys = [], []
    for batch in x:
        if isinstance(batch, (tuple, list)) and len(batch) >= 2:
            xs.append(np.asarray(batch[0]))
            ys.append(np.asarray(batch[1]))
        else:
            xs.append(np.asarray(batch))
    if not xs:
        raise ValueError("the dataset given as x is empty")
    return np.concatenate(xs), (np.concatenate(ys) if ys else None)


@pyplugs.register
def fit(estimator, x=None, y=None, fit_kwargs: dict | None = None):
    """Train ``estimator`` on ``(x, y)`` and return it.

    ``y`` may be class indices or one-hot rows.  As in v0, ``x`` may instead be a
    whole dataset with no ``y``: a mapping, an ``(x, y)`` pair or an iterator of
    ``(x_batch, y_batch)`` batches.  ``fit_kwargs`` go to ``estimator.fit`` (for
    PyTorch: ``nb_epochs``, ``batch_size``); an estimator that is not an ART one is
    fitted through ``dioptra.sdk.generics.fit_estimator``, as v0 did.
    When an MLflow run is active the wall time is logged as the metric
    ``training_time_in_minutes``.
    """

    from dioptra.sdk.generics import fit_estimator

    if x is None:
        raise ValueError("fit needs the training data as x")
    x, y = _as_arrays(x, y)
    start = time.perf_counter()
    if y is None:
        fit_estimator(estimator, x, **(fit_kwargs or {}))
    else:
        fit_estimator(estimator, x, _labels_for(estimator, y), **(fit_kwargs or {}))
    minutes = (time.perf_counter() - start) / 60.0
    if mlflow.active_run() is not None:
        mlflow.log_metric("training_time_in_minutes", minutes)
    return estimator


@pyplugs.register
def predict(estimator, x=None, predict_kwargs: dict | None = None) -> np.ndarray:
    """Class scores ``(N, n_classes)`` (logits for the PyTorch classifiers).

    ``x`` may be an array or, as in v0, a dataset (its labels are ignored).
    """

    from dioptra.sdk.generics import estimator_predict

    if x is None:
        raise ValueError("predict needs the inputs as x")
    x, _ = _as_arrays(x)
    return estimator_predict(estimator, x, **(predict_kwargs or {}))
