"""Backdoor poisoning: stamp a trigger on some training images and relabel them."""

from __future__ import annotations

import functools

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks import _common


@pyplugs.register
def add_trigger(
    x: np.ndarray,
    size: int = 2,
    value: float = 1.0,
    pattern: str = "square",
    location: str = "bottom_right",
) -> np.ndarray:
    """A copy of ``x`` (``(N, C, H, W)``) with a ``size`` x ``size`` trigger in a corner.

    ``pattern="square"`` fills the corner with ``value``; ``"checkerboard"`` alternates
    ``value`` and 0.  ``location``: ``bottom_right``, ``bottom_left``, ``top_right``,
    ``top_left``.
    """

    out = _common.as_float32(x).copy()
    height, width = out.shape[-2:]
    size = int(size)
    rows = slice(height - size, height) if location.startswith("bottom") else slice(0, size)
    cols = slice(width - size, width) if location.endswith("right") else slice(0, size)
    if pattern == "square":
        stamp = np.full((size, size), value, dtype=np.float32)
    elif pattern == "checkerboard":
        stamp = ((np.indices((size, size)).sum(axis=0) + 1) % 2).astype(np.float32) * value
    else:
        raise ValueError("pattern must be 'square' or 'checkerboard'")
    out[..., rows, cols] = stamp
    return out


@pyplugs.register
def poison_dataset(
    x: np.ndarray,
    y: np.ndarray,
    target_class: int,
    poison_fraction: float = 0.1,
    trigger_size: int = 2,
    trigger_value: float = 1.0,
    pattern: str = "square",
    seed: int | None = 0,
) -> dict[str, np.ndarray]:
    """Poison ``poison_fraction`` of ``(x, y)`` with ART's ``PoisoningAttackBackdoor``.

    The poisoned samples are drawn (with ``seed``) among those whose label is not
    ``target_class``; they get the trigger (:func:`add_trigger`) and the label
    ``target_class``.  Returns ``x_poisoned``, ``y_poisoned`` (int64 indices, same length
    as the input) and ``poisoned_indices``.
    """

    from art.attacks.poisoning import PoisoningAttackBackdoor

    x = _common.as_float32(x)
    labels = _common.class_indices(y)
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(labels != int(target_class))
    n_poison = min(len(candidates), int(round(float(poison_fraction) * len(x))))
    chosen = np.sort(rng.choice(candidates, size=n_poison, replace=False))
    trigger = functools.partial(add_trigger, size=trigger_size, value=trigger_value,
                                pattern=pattern)
    attack = PoisoningAttackBackdoor(trigger)
    x_poisoned, y_poisoned = x.copy(), labels.copy()
    if n_poison:
        x_bad, y_bad = attack.poison(x[chosen], y=np.full(n_poison, int(target_class)))
        x_poisoned[chosen] = x_bad
        y_poisoned[chosen] = y_bad
    return {"x_poisoned": x_poisoned, "y_poisoned": y_poisoned, "poisoned_indices": chosen}


@pyplugs.register
def backdoor_success_rate(
    estimator,
    x: np.ndarray,
    y: np.ndarray,
    target_class: int,
    trigger_size: int = 2,
    trigger_value: float = 1.0,
    pattern: str = "square",
) -> float:
    """Fraction of triggered inputs (true class != target) classified as ``target_class``."""

    labels = _common.class_indices(y)
    keep = labels != int(target_class)
    triggered = add_trigger(x[keep], size=trigger_size, value=trigger_value, pattern=pattern)
    predicted = np.asarray(estimator.predict(triggered)).argmax(axis=1)
    return float(np.mean(predicted == int(target_class))) if keep.any() else float("nan")
