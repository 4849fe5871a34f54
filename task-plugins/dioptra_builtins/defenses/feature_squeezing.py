"""Feature squeezing (Xu et al.): reduce the colour bit depth, via ART."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs


@pyplugs.register
def apply_feature_squeezing(
    x: np.ndarray, bit_depth: int = 4, clip_values=(0.0, 1.0)
) -> np.ndarray:
    """Quantise ``x`` to ``2**bit_depth`` levels in ``clip_values``.

    ART returns float64; the result is cast back to float32 (what the PyTorch models
    take).
    """

    from art.defences.preprocessor import FeatureSqueezing

    squeezer = FeatureSqueezing(clip_values=tuple(clip_values), bit_depth=int(bit_depth))
    squeezed, _ = squeezer(np.asarray(x, dtype=np.float32))
    return np.asarray(squeezed, dtype=np.float32)
