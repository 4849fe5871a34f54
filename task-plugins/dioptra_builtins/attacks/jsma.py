"""Jacobian-based saliency map attack (Papernot et al.), via ART."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks import _common


@pyplugs.register
def generate_jsma(
    estimator,
    x: np.ndarray,
    y_target: np.ndarray | None = None,
    theta: float = 0.1,
    gamma: float = 1.0,
    batch_size: int = 32,
    seed: int | None = 0,
) -> np.ndarray:
    """Targeted adversarial copies of ``x`` changing few pixels (float32).

    ``theta``: change applied to each selected feature (pixel range units); ``gamma``:
    maximum fraction of features changed.  Without ``y_target`` each sample gets a random
    class other than its predicted one, drawn with ``seed``.
    """

    from art.attacks.evasion import SaliencyMapMethod

    x = _common.as_float32(x)
    n_classes = estimator.nb_classes
    if y_target is None:
        predicted = np.asarray(estimator.predict(x)).argmax(axis=1)
        y_target = _common.random_targets(predicted, n_classes, np.random.default_rng(seed))
    attack = SaliencyMapMethod(
        estimator, theta=float(theta), gamma=float(gamma), batch_size=int(batch_size),
        verbose=False,
    )
    x_adv = attack.generate(x=x, y=_common.one_hot(y_target, n_classes))
    return np.clip(x_adv, *_common.clip_range(estimator)).astype(np.float32)
