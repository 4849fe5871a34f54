"""Gaussian data augmentation (Zantedeschi et al.), via ART."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks._common import numpy_global_seed


@pyplugs.register
def augment_with_gaussian_noise(
    x: np.ndarray,
    y: np.ndarray,
    sigma: float = 0.3,
    ratio: float = 1.0,
    clip_values=(0.0, 1.0),
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Training data plus ``ratio * N`` noisy copies (noise N(0, sigma^2), clipped).

    The originals come first, in order; ART draws the images to copy at random *with
    replacement*, so some images get several noisy copies and others none.

    Train on the result to get a model that tolerates small perturbations.  ``seed``
    seeds NumPy's global generator (which ART uses) for the call, then restores it.
    """

    from art.defences.preprocessor import GaussianAugmentation

    augmenter = GaussianAugmentation(
        sigma=float(sigma),
        augmentation=True,
        ratio=float(ratio),
        clip_values=tuple(clip_values) if clip_values is not None else None,
    )
    with numpy_global_seed(seed):
        x_aug, y_aug = augmenter(np.asarray(x, dtype=np.float32), np.asarray(y))
    return np.asarray(x_aug, dtype=np.float32), np.asarray(y_aug)


@pyplugs.register
def add_gaussian_noise(
    x: np.ndarray, sigma: float = 0.1, clip_values=(0.0, 1.0), seed: int | None = 0
) -> np.ndarray:
    """``x`` plus N(0, sigma^2) noise, clipped (ART's augmentation=False mode; float32)."""

    from art.defences.preprocessor import GaussianAugmentation

    noiser = GaussianAugmentation(
        sigma=float(sigma),
        augmentation=False,
        clip_values=tuple(clip_values) if clip_values is not None else None,
        apply_predict=True,
    )
    with numpy_global_seed(seed):
        noisy, _ = noiser(np.asarray(x, dtype=np.float32))
    return np.asarray(noisy, dtype=np.float32)
