"""Square attack (Andriushchenko et al.): black-box, score-based, via ART."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks import _common


@pyplugs.register
def generate_square(
    estimator,
    x: np.ndarray,
    y: np.ndarray | None = None,
    eps: float = 0.3,
    norm="inf",
    max_iter: int = 100,
    p_init: float = 0.8,
    nb_restarts: int = 1,
    batch_size: int = 128,
    seed: int | None = 0,
) -> np.ndarray:
    """Adversarial copies of ``x`` found with random square-shaped updates (float32).

    Only the model's scores are queried (no gradients).  The perturbation stays within
    ``eps`` in the ``"inf"`` or ``2`` norm.  ``seed`` seeds NumPy's global generator (which
    ART draws from) for the duration of the call; the previous state is restored.
    """

    from art.attacks.evasion import SquareAttack

    p = _common.parse_norm(norm)
    labels = _common.class_indices(y)
    attack = SquareAttack(
        estimator,
        norm=_common.art_norm(p),
        eps=float(eps),
        max_iter=int(max_iter),
        p_init=float(p_init),
        nb_restarts=int(nb_restarts),
        batch_size=int(batch_size),
        verbose=False,
    )
    y_art = None if labels is None else _common.one_hot(labels, estimator.nb_classes)
    with _common.numpy_global_seed(seed):
        x_adv = attack.generate(x=_common.as_float32(x), y=y_art)
    return np.clip(x_adv, *_common.clip_range(estimator)).astype(np.float32)
