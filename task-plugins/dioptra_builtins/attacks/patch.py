"""Adversarial patch: a small square that pushes any image towards a target class.

The patch is optimised by gradient descent on the classifier's loss (through ART's
``loss_gradient``, so any differentiable ART classifier works) at random positions of
training images, i.e. an expectation over translations.  This is our own compact
version: ART's ``AdversarialPatch`` needs torchvision for PyTorch models and its
rotations/rescaling make little sense on 8x8 images.
"""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks import _common


def _locations(n, height, width, size, location, rng):
    if location is not None:
        row, col = (int(v) for v in location)
        if not (0 <= row <= height - size and 0 <= col <= width - size):
            raise ValueError(f"patch at {location} does not fit in {height}x{width}")
        return np.full(n, row), np.full(n, col)
    return rng.integers(0, height - size + 1, n), rng.integers(0, width - size + 1, n)


def _paste(x, patch, rows, cols):
    size = patch.shape[-1]
    out = x.copy()
    for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
        out[i, :, r : r + size, c : c + size] = patch
    return out


@pyplugs.register
def generate_patch(
    estimator,
    x: np.ndarray,
    target_class: int,
    patch_size: int = 3,
    max_iter: int = 200,
    learning_rate: float = 0.05,
    batch_size: int = 64,
    location: tuple[int, int] | None = None,
    seed: int | None = 0,
) -> np.ndarray:
    """Optimise a ``(C, patch_size, patch_size)`` patch in [0, 1] for ``target_class``.

    Each of the ``max_iter`` iterations draws ``batch_size`` images of ``x`` and a random
    position per image (or the fixed ``location=(row, col)``), pastes the patch, and
    takes a signed-gradient step of size ``learning_rate`` on the patch that lowers the
    loss towards ``target_class``.
    """

    x = _common.as_float32(x)
    low, high = _common.clip_range(estimator)
    rng = np.random.default_rng(seed)
    channels, height, width = x.shape[1:]
    size = int(patch_size)
    patch = rng.uniform(low, high, (channels, size, size)).astype(np.float32)
    y_target = _common.one_hot(np.full(min(int(batch_size), len(x)), int(target_class)),
                               estimator.nb_classes)
    for _ in range(int(max_iter)):
        index = rng.choice(len(x), size=len(y_target), replace=False)
        rows, cols = _locations(len(index), height, width, size, location, rng)
        grad = estimator.loss_gradient(_paste(x[index], patch, rows, cols), y_target)
        patch_grad = np.zeros_like(patch)
        for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
            patch_grad += grad[i, :, r : r + size, c : c + size]
        patch = np.clip(patch - learning_rate * np.sign(patch_grad), low, high)
    return patch.astype(np.float32)


@pyplugs.register
def apply_patch(
    x: np.ndarray,
    patch: np.ndarray,
    location: tuple[int, int] | None = None,
    seed: int | None = 0,
) -> np.ndarray:
    """Paste ``patch`` into every image of ``x`` at ``location`` or at random positions."""

    x = _common.as_float32(x)
    patch = _common.as_float32(patch)
    rng = np.random.default_rng(seed)
    rows, cols = _locations(len(x), x.shape[2], x.shape[3], patch.shape[-1], location, rng)
    return _paste(x, patch, rows, cols)
