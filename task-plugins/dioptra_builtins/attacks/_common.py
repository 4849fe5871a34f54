"""Helpers shared by the attack plugins (not plugins themselves)."""

from __future__ import annotations

import contextlib
import math

import numpy as np


def parse_norm(norm) -> float:
    """``"inf"``/``np.inf``/``1``/``2``/``"2"``... to a float ``p >= 1``."""

    if isinstance(norm, str):
        text = norm.strip().lower()
        if text in {"inf", "np.inf", "infinity", "linf", "l_inf"}:
            return math.inf
        text = text.removeprefix("l")
        norm = float(text)
    p = float(norm)
    if not (p >= 1):
        raise ValueError(f"norm must be 'inf' or a real p >= 1, got {norm!r}")
    return p


def art_norm(p: float):
    """The value ART expects for a norm: ``np.inf`` or an int when possible."""

    if math.isinf(p):
        return np.inf
    return int(p) if float(p).is_integer() else p


def class_indices(y: np.ndarray | None) -> np.ndarray | None:
    """One-hot/score matrices to int64 indices; indices pass through."""

    if y is None:
        return None
    y = np.asarray(y)
    return (y.argmax(axis=1) if y.ndim == 2 else y).astype(np.int64)


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    y = class_indices(y)
    out = np.zeros((len(y), int(n_classes)), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def clip_range(estimator, clip_values=None) -> tuple[float, float]:
    """Explicit ``clip_values``, else the estimator's, else the testbed's [0, 1]."""

    if clip_values is None:
        clip_values = getattr(estimator, "clip_values", None)
    if clip_values is None:
        return 0.0, 1.0
    low, high = clip_values
    return float(np.min(low)), float(np.max(high))


def random_targets(
    y_true: np.ndarray, n_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """A random class different from ``y_true`` for every sample."""

    shift = rng.integers(1, n_classes, size=len(y_true))
    return ((np.asarray(y_true) + shift) % n_classes).astype(np.int64)


@contextlib.contextmanager
def numpy_global_seed(seed: int | None):
    """Seed NumPy's global RNG (which ART uses) for a block, then restore its state."""

    if seed is None:
        yield
        return
    state = np.random.get_state()
    np.random.seed(int(seed) % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


def as_float32(x) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))
