"""Small array transforms: scaling, standardisation, one-hot labels, flattening."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs


@pyplugs.register
def scale_to_unit_range(x: np.ndarray, max_value: float = 255.0) -> np.ndarray:
    """Divide by ``max_value`` and clip to [0, 1] (float32)."""

    return np.clip(np.asarray(x, dtype=np.float32) / np.float32(max_value), 0.0, 1.0)


@pyplugs.register
def standardize(x: np.ndarray, mean, std) -> np.ndarray:
    """``(x - mean) / std`` with broadcasting (float32)."""

    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    return ((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32)


@pyplugs.register
def to_one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Class indices to a float32 one-hot matrix."""

    y = np.asarray(y, dtype=np.int64)
    out = np.zeros((len(y), int(n_classes)), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


@pyplugs.register
def to_class_indices(y: np.ndarray) -> np.ndarray:
    """One-hot or score matrices to int64 indices (indices pass through)."""

    y = np.asarray(y)
    return (y.argmax(axis=1) if y.ndim == 2 else y).astype(np.int64)


@pyplugs.register
def flatten(x: np.ndarray) -> np.ndarray:
    """``(N, ...)`` to ``(N, features)`` (for scikit-learn estimators)."""

    x = np.asarray(x)
    return x.reshape(len(x), -1)
