"""Per-sample distances between clean and perturbed inputs (e.g. adversarial examples).

Every metric takes ``(y_true, y_pred)`` -- two arrays of the same shape ``(N, ...)``,
e.g. clean and adversarial images -- and returns one value per sample (shape ``(N,)``),
computed on the flattened samples.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance

from dioptra import pyplugs
from dioptra_builtins.metrics._registry import named_metrics


def _flat_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    return a.reshape(len(a), -1), b.reshape(len(b), -1)


def _difference_norm(y_true, y_pred, order) -> np.ndarray:
    a, b = _flat_pair(y_true, y_pred)
    return np.linalg.norm(a - b, ord=order, axis=1)


@pyplugs.register
def l_inf_norm(y_true, y_pred) -> np.ndarray:
    """``max |x - x'|`` per sample."""

    return _difference_norm(y_true, y_pred, np.inf)


@pyplugs.register
def l_1_norm(y_true, y_pred) -> np.ndarray:
    """``sum |x - x'|`` per sample."""

    return _difference_norm(y_true, y_pred, 1)


@pyplugs.register
def l_2_norm(y_true, y_pred) -> np.ndarray:
    """``sqrt(sum (x - x')^2)`` per sample."""

    return _difference_norm(y_true, y_pred, 2)


@pyplugs.register
def paired_cosine_similarities(y_true, y_pred) -> np.ndarray:
    """``<x, x'> / (|x| |x'|)`` per sample (0 when either vector is zero)."""

    a, b = _flat_pair(y_true, y_pred)
    denominator = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    numerator = np.sum(a * b, axis=1)
    return np.divide(numerator, denominator, out=np.zeros(len(a)), where=denominator > 0)


@pyplugs.register
def paired_euclidean_distances(y_true, y_pred) -> np.ndarray:
    """Euclidean distance per sample (same as :func:`l_2_norm`)."""

    return l_2_norm(y_true, y_pred)


@pyplugs.register
def paired_manhattan_distances(y_true, y_pred) -> np.ndarray:
    """Manhattan distance per sample (same as :func:`l_1_norm`)."""

    return l_1_norm(y_true, y_pred)


@pyplugs.register
def paired_wasserstein_distances(y_true, y_pred, **kwargs) -> np.ndarray:
    """1-d Wasserstein distance between the value distributions of each pair of samples."""

    a, b = _flat_pair(y_true, y_pred)
    return np.asarray([wasserstein_distance(u, v, **kwargs) for u, v in zip(a, b, strict=True)])


DISTANCE_METRICS_REGISTRY: dict[str, Callable[..., np.ndarray]] = {
    "l_inf_norm": l_inf_norm,
    "l_1_norm": l_1_norm,
    "l_2_norm": l_2_norm,
    "paired_cosine_similarities": paired_cosine_similarities,
    "paired_euclidean_distances": paired_euclidean_distances,
    "paired_manhattan_distances": paired_manhattan_distances,
    "paired_wasserstein_distances": paired_wasserstein_distances,
}

#: The metric set the v0 FGM entry point reports (column name, registry function).
DEFAULT_REQUEST = [
    {"name": "l_infinity_norm", "func": "l_inf_norm"},
    {"name": "l_1_norm", "func": "l_1_norm"},
    {"name": "l_2_norm", "func": "l_2_norm"},
    {"name": "cosine_similarity", "func": "paired_cosine_similarities"},
    {"name": "euclidean_distance", "func": "paired_euclidean_distances"},
    {"name": "manhattan_distance", "func": "paired_manhattan_distances"},
    {"name": "wasserstein_distance", "func": "paired_wasserstein_distances"},
]


@pyplugs.register
def get_distance_metric(func: str) -> Callable[..., np.ndarray]:
    """The registry function called ``func``."""

    try:
        return DISTANCE_METRICS_REGISTRY[func]
    except KeyError:
        raise ValueError(
            f"Unknown distance metric {func!r}; choose one of {sorted(DISTANCE_METRICS_REGISTRY)}"
        ) from None


@pyplugs.register
def get_distance_metric_list(
    request: list[dict[str, str]],
) -> list[tuple[str, Callable[..., np.ndarray]]]:
    """``[{"name": ..., "func": ...}, ...]`` to ``[(name, function), ...]``.

    As in v0, a ``func`` the registry does not know is skipped with a warning (so a v0
    request naming a metric this testbed lacks still runs);
    :func:`get_distance_metric` itself raises on an unknown name.
    """
    return named_metrics(request, DISTANCE_METRICS_REGISTRY, "distance")


@pyplugs.register
def compute_distance_metrics(
    x: np.ndarray,
    x_adv: np.ndarray,
    request: list[dict[str, str]] | None = None,
    labels: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per sample, one column per requested metric (default: ``DEFAULT_REQUEST``).

    With ``labels`` a ``label`` column comes first.
    """

    columns = {}
    if labels is not None:
        labels = np.asarray(labels)
        columns["label"] = labels.argmax(axis=1) if labels.ndim == 2 else labels
    for name, func in get_distance_metric_list(request or DEFAULT_REQUEST):
        columns[name] = func(x, x_adv)
    return pd.DataFrame(columns)


@pyplugs.register
def summarize_distance_metrics(
    data_frame: pd.DataFrame, exclude: tuple[str, ...] = ("image", "label")
) -> dict[str, float]:
    """``<column>_mean``, ``_median``, ``_stdev``, ``_iqr``, ``_min``, ``_max`` of each metric."""

    summary: dict[str, float] = {}
    for column in data_frame.columns:
        if column in exclude:
            continue
        values = data_frame[column].to_numpy(dtype=np.float64)
        q1, q3 = np.percentile(values, [25, 75])
        summary[f"{column}_mean"] = float(np.mean(values))
        summary[f"{column}_median"] = float(np.median(values))
        summary[f"{column}_stdev"] = float(np.std(values))
        summary[f"{column}_iqr"] = float(q3 - q1)
        summary[f"{column}_min"] = float(np.min(values))
        summary[f"{column}_max"] = float(np.max(values))
    return summary
