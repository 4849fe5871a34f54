"""Mini-batch iteration over in-memory arrays."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dioptra import pyplugs


@pyplugs.register
def iterate_minibatches(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    rng: np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Yield ``(x_batch, y_batch)``; shuffled with ``rng`` when one is given."""

    n = len(x)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, int(batch_size)):
        index = order[start : start + int(batch_size)]
        if drop_last and len(index) < batch_size:
            break
        yield x[index], (y[index] if y is not None else None)
