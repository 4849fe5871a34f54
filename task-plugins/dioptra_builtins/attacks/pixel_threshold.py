"""Pixel and threshold attacks (Su et al.; Kotyan & Vargas): differential evolution, via ART."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks import _common


@pyplugs.register
def generate_pixel_threshold(
    estimator,
    x: np.ndarray,
    y: np.ndarray | None = None,
    th: int | None = 1,
    es: int = 1,
    max_iter: int = 100,
    attack_type: str = "pixel",
    targeted: bool = False,
    seed: int | None = 0,
) -> np.ndarray:
    """Black-box adversarial copies of ``x`` (float32).

    ``attack_type="pixel"``: change at most ``th`` pixels (ART ``PixelAttack``);
    ``"threshold"``: change every pixel by at most ``th`` (out of 255; ART
    ``ThresholdAttack``).  ``es`` selects the evolution strategy: 1 (default) differential
    evolution, built into ART; 0 CMA-ES, which needs the ``cma`` package.  ART works on a
    0-255 scale internally and rescales to the estimator's clip values, so pixels stay in
    range.  ``seed`` seeds NumPy's global generator for the call and restores it
    afterwards.
    """

    from art.attacks.evasion import PixelAttack, ThresholdAttack

    cls = {"pixel": PixelAttack, "threshold": ThresholdAttack}.get(attack_type)
    if cls is None:
        raise ValueError("attack_type must be 'pixel' or 'threshold'")
    attack = cls(estimator, th=th, es=int(es), max_iter=int(max_iter), targeted=targeted)
    labels = _common.class_indices(y)
    y_art = None if labels is None else _common.one_hot(labels, estimator.nb_classes)
    with _common.numpy_global_seed(seed):
        x_adv = attack.generate(x=_common.as_float32(x), y=y_art)
    return np.clip(x_adv, *_common.clip_range(estimator)).astype(np.float32)
