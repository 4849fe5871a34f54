"""Draw integers (typically seeds for other components) from a generator."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs


@pyplugs.register
def draw_random_integer(rng: np.random.Generator, low: int = 0, high: int = 2**31 - 1) -> int:
    """One integer in ``[low, high)``."""

    return int(rng.integers(low=low, high=high))


@pyplugs.register
def draw_random_integers(
    rng: np.random.Generator,
    low: int = 0,
    high: int = 2**31 - 1,
    size: int | tuple[int, ...] | None = None,
) -> np.ndarray:
    """An array of integers in ``[low, high)``."""

    return rng.integers(low=low, high=high, size=size)
