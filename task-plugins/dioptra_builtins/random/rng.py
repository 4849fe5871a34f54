"""Initialise the entry point's random number generator."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs


@pyplugs.register
@pyplugs.task_nout(2)
def init_rng(seed: int = -1) -> tuple[int, np.random.Generator]:
    """Return ``(seed, rng)``.

    A negative ``seed`` asks the operating system for entropy; the entropy actually used
    is returned as the seed, so that the run can be repeated.
    """

    seed = int(seed)
    if seed < 0:
        seed = int(np.random.SeedSequence().entropy)
    return seed, np.random.default_rng(seed)
