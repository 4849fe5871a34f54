"""Classification performance metrics (scikit-learn based).

Every metric takes ``(y_true, y_pred)``.  Labels may be class indices, one-hot rows or
score rows (reduced with ``argmax``) -- except :func:`roc_auc`, which needs scores.
Multi-class F1, precision and recall are macro averages unless ``average`` says
otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn import metrics as skm

from dioptra import pyplugs
from dioptra_builtins.metrics._registry import named_metrics


def _labels(y) -> np.ndarray:
    y = np.asarray(y)
    return y.argmax(axis=1) if y.ndim == 2 else y


def _default_average(y_true, y_pred) -> str:
    return "binary" if len(np.union1d(_labels(y_true), _labels(y_pred))) <= 2 else "macro"


@pyplugs.register
def accuracy(y_true, y_pred, **kwargs) -> float:
    return float(skm.accuracy_score(_labels(y_true), _labels(y_pred), **kwargs))


@pyplugs.register
def categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose highest score is the true class."""

    return float(np.mean(_labels(y_true) == _labels(y_pred)))


@pyplugs.register
def roc_auc(y_true, y_pred, **kwargs) -> float:
    """Area under the ROC curve; ``y_pred`` are scores (one-vs-rest for multi-class)."""

    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_pred.ndim == 2 and y_pred.shape[1] > 2:
        probabilities = y_pred
        if not (np.allclose(y_pred.sum(axis=1), 1.0) and (y_pred >= 0).all()):
            shifted = np.exp(y_pred - y_pred.max(axis=1, keepdims=True))  # logits: softmax
            probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        kwargs.setdefault("multi_class", "ovr")
        return float(skm.roc_auc_score(_labels(y_true), probabilities, **kwargs))
    if y_pred.ndim == 2:
        y_pred = y_pred[:, -1]
    return float(skm.roc_auc_score(_labels(y_true), y_pred, **kwargs))


@pyplugs.register
def mcc(y_true, y_pred) -> float:
    """Matthews correlation coefficient."""

    return float(skm.matthews_corrcoef(_labels(y_true), _labels(y_pred)))


@pyplugs.register
def f1(y_true, y_pred, average: str | None = None, **kwargs) -> float:
    average = average or _default_average(y_true, y_pred)
    return float(skm.f1_score(_labels(y_true), _labels(y_pred), average=average, **kwargs))


@pyplugs.register
def precision(y_true, y_pred, average: str | None = None, **kwargs) -> float:
    average = average or _default_average(y_true, y_pred)
    kwargs.setdefault("zero_division", 0)
    return float(
        skm.precision_score(_labels(y_true), _labels(y_pred), average=average, **kwargs)
    )


@pyplugs.register
def recall(y_true, y_pred, average: str | None = None, **kwargs) -> float:
    average = average or _default_average(y_true, y_pred)
    kwargs.setdefault("zero_division", 0)
    return float(skm.recall_score(_labels(y_true), _labels(y_pred), average=average, **kwargs))


PERFORMANCE_METRICS_REGISTRY: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "roc_auc": roc_auc,
    "categorical_accuracy": categorical_accuracy,
    "mcc": mcc,
    "f1": f1,
    "precision": precision,
    "recall": recall,
}


@pyplugs.register
def get_performance_metric(func: str) -> Callable[..., float]:
    """The registry function called ``func``."""

    try:
        return PERFORMANCE_METRICS_REGISTRY[func]
    except KeyError:
        raise ValueError(
            f"Unknown performance metric {func!r}; "
            f"choose one of {sorted(PERFORMANCE_METRICS_REGISTRY)}"
        ) from None


@pyplugs.register
def get_performance_metric_list(
    request: list[dict[str, str]],
) -> list[tuple[str, Callable[..., float]]]:
    """``[{"name": ..., "func": ...}, ...]`` to ``[(name, function), ...]``.

    As in v0, a ``func`` the registry does not know is skipped with a warning (so a v0
    request naming a metric this testbed lacks still runs);
    :func:`get_performance_metric` itself raises on an unknown name.
    """
    return named_metrics(request, PERFORMANCE_METRICS_REGISTRY, "performance")


@pyplugs.register
def evaluate_metrics(
    y_true, y_pred, request: list[dict[str, str]] | None = None
) -> dict[str, float]:
    """``{name: value}`` for each requested metric (default: every registry metric but
    ``roc_auc``, which needs scores rather than labels)."""

    if request is None:
        request = [
            {"name": name, "func": name}
            for name in PERFORMANCE_METRICS_REGISTRY
            if name != "roc_auc"
        ]
    return {name: func(y_true, y_pred) for name, func in get_performance_metric_list(request)}
