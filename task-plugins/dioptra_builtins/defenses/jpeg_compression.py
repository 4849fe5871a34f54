"""JPEG compression of the inputs (Dziugaite et al.; Das et al.), via ART and Pillow."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs


@pyplugs.register
def apply_jpeg_compression(
    x: np.ndarray, quality: int = 50, channels_first: bool = True, clip_values=(0.0, 1.0)
) -> np.ndarray:
    """Round-trip every image of ``x`` through JPEG at ``quality`` (1-95) (float32).

    Images must have 1 or 3 channels.
    """

    from art.defences.preprocessor import JpegCompression

    compressor = JpegCompression(
        clip_values=tuple(clip_values), quality=int(quality), channels_first=channels_first
    )
    compressed, _ = compressor(np.asarray(x, dtype=np.float32))
    return np.asarray(compressed, dtype=np.float32)
