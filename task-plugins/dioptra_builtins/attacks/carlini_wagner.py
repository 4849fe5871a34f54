"""Carlini & Wagner attacks (L2 and L-inf), via ART."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks import _common


@pyplugs.register
def generate_cw(
    estimator,
    x: np.ndarray,
    y: np.ndarray | None = None,
    norm="2",
    confidence: float = 0.0,
    targeted: bool = False,
    learning_rate: float = 0.01,
    max_iter: int = 10,
    binary_search_steps: int = 10,
    initial_const: float = 0.01,
    batch_size: int = 32,
) -> np.ndarray:
    """Carlini-Wagner adversarial copies of ``x`` (float32, clipped to the pixel range).

    ``norm`` ``"2"`` uses ART's ``CarliniL2Method`` (with ``binary_search_steps`` and
    ``initial_const``); ``"inf"`` uses ``CarliniLInfMethod`` (``initial_const`` is its
    starting constant; ``binary_search_steps`` is unused).  ``y``: true labels
    (untargeted, default: model predictions) or target labels (``targeted=True``).
    """

    from art.attacks.evasion import CarliniL2Method, CarliniLInfMethod

    p = _common.parse_norm(norm)
    x = _common.as_float32(x)
    labels = _common.class_indices(y)
    if targeted and labels is None:
        raise ValueError("targeted=True needs the target labels y")
    if p == 2:
        attack = CarliniL2Method(
            estimator,
            confidence=float(confidence),
            targeted=targeted,
            learning_rate=float(learning_rate),
            binary_search_steps=int(binary_search_steps),
            max_iter=int(max_iter),
            initial_const=float(initial_const),
            batch_size=int(batch_size),
            verbose=False,
        )
    elif np.isinf(p):
        attack = CarliniLInfMethod(
            estimator,
            confidence=float(confidence),
            targeted=targeted,
            learning_rate=float(learning_rate),
            max_iter=int(max_iter),
            initial_const=float(initial_const),
            batch_size=int(batch_size),
            verbose=False,
        )
    else:
        raise ValueError("Carlini-Wagner supports the norms 2 and inf")
    y_art = None if labels is None else _common.one_hot(labels, estimator.nb_classes)
    x_adv = attack.generate(x=x, y=y_art)
    return np.clip(x_adv, *_common.clip_range(estimator)).astype(np.float32)
