"""DeepFool (Moosavi-Dezfooli et al.), via ART."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks import _common


@pyplugs.register
def generate_deepfool(
    estimator,
    x: np.ndarray,
    max_iter: int = 100,
    epsilon: float = 1e-6,
    nb_grads: int = 10,
    batch_size: int = 32,
) -> np.ndarray:
    """Untargeted minimal-L2 adversarial copies of ``x`` (float32, clipped).

    ``epsilon`` is DeepFool's overshoot; ``nb_grads`` limits the candidate classes to the
    ``nb_grads`` highest scores.
    """

    from art.attacks.evasion import DeepFool

    attack = DeepFool(
        estimator,
        max_iter=int(max_iter),
        epsilon=float(epsilon),
        nb_grads=int(nb_grads),
        batch_size=int(batch_size),
        verbose=False,
    )
    x_adv = attack.generate(x=_common.as_float32(x))
    return np.clip(x_adv, *_common.clip_range(estimator)).astype(np.float32)
