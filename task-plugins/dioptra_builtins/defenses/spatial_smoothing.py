"""Spatial smoothing (median filter over each channel), via ART."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs


@pyplugs.register
def apply_spatial_smoothing(
    x: np.ndarray, window_size: int = 3, channels_first: bool = True, clip_values=(0.0, 1.0)
) -> np.ndarray:
    """Median-filter each image of ``x`` with a ``window_size`` square window (float32)."""

    from art.defences.preprocessor import SpatialSmoothing

    smoother = SpatialSmoothing(
        window_size=int(window_size),
        channels_first=channels_first,
        clip_values=tuple(clip_values) if clip_values is not None else None,
    )
    smoothed, _ = smoother(np.asarray(x, dtype=np.float32))
    return np.asarray(smoothed, dtype=np.float32)
