"""Robustness summaries of an attack: success rate and robust accuracy."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs


def _labels(y) -> np.ndarray:
    y = np.asarray(y)
    return y.argmax(axis=1) if y.ndim == 2 else y


@pyplugs.register
def attack_success_rate(y_true, y_clean_pred, y_adv_pred) -> float:
    """Among samples the model classified correctly, the fraction the attack flipped.

    Arguments are labels, one-hot or score rows.  ``nan`` when no sample was correct.
    """

    y_true, clean, adv = _labels(y_true), _labels(y_clean_pred), _labels(y_adv_pred)
    correct = clean == y_true
    if not correct.any():
        return float("nan")
    return float(np.mean(adv[correct] != y_true[correct]))


@pyplugs.register
def targeted_success_rate(y_target, y_adv_pred) -> float:
    """Fraction of adversarial samples classified as their target class."""

    return float(np.mean(_labels(y_adv_pred) == _labels(y_target)))


@pyplugs.register
def robust_accuracy(y_true, y_adv_pred) -> float:
    """Accuracy on adversarial inputs."""

    return float(np.mean(_labels(y_adv_pred) == _labels(y_true)))
