"""scikit-learn's bundled 8x8 handwritten digits (no download needed)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from dioptra import pyplugs


@pyplugs.register
def load_digits_dataset(
    test_size: float = 0.25, seed: int = 0, as_images: bool = True
) -> dict[str, np.ndarray]:
    """Load the 1797 digits and split them into train and test sets.

    The split is ``sklearn.model_selection.train_test_split`` stratified by class, with
    ``test_size`` and ``random_state=seed`` (the defaults give 1347 training and 450 test
    samples).  Pixels (0..16 in the source) are divided by 16 so they lie in [0, 1].

    Returns a dict with ``x_train``, ``y_train``, ``x_test``, ``y_test`` and ``n_classes``:
    ``x_*`` are float32, shaped ``(N, 1, 8, 8)`` when ``as_images`` else ``(N, 64)``;
    ``y_*`` are int64 class indices.
    """

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    if as_images:
        x = x.reshape(-1, 1, 8, 8)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    return {
        "x_train": np.ascontiguousarray(x_train),
        "y_train": np.ascontiguousarray(y_train),
        "x_test": np.ascontiguousarray(x_test),
        "y_test": np.ascontiguousarray(y_test),
        "n_classes": 10,
    }
