"""Fast gradient method (FGSM for the inf norm)."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks import _common, _torch_gradient


@pyplugs.register
def generate_fgm(
    estimator,
    x: np.ndarray,
    y: np.ndarray | None = None,
    eps: float = 0.3,
    eps_step: float = 0.1,
    norm="inf",
    targeted: bool = False,
    minimal: bool = False,
    batch_size: int = 256,
    clip_values=None,
) -> np.ndarray:
    """Adversarial copies of ``x`` (float32, same shape) made with one gradient step.

    ``y``: true labels (untargeted; default: the model's own predictions, which avoids
    label leaking) or target labels (``targeted=True``, required), as indices or one-hot.
    ``norm``: ``"inf"``, ``1``, ``2`` (or any ``p >= 1``); the perturbation has ``p``-norm
    at most ``eps``.  ``minimal=True`` searches ``eps_step, 2*eps_step, ... <= eps`` for
    the smallest step that changes the prediction.  Results are clipped to
    ``clip_values`` (default: the estimator's, else [0, 1]).

    PyTorch classifiers are attacked directly on their torch model (fast path); other
    ART estimators go through ART's ``FastGradientMethod``.
    """

    p = _common.parse_norm(norm)
    x = _common.as_float32(x)
    labels = _common.class_indices(y)
    if targeted and labels is None:
        raise ValueError("targeted=True needs the target labels y")
    clip = _common.clip_range(estimator, clip_values)
    target = _torch_gradient.torch_target(estimator)
    if target is not None:
        if minimal:
            return _torch_gradient.fgm_minimal(
                target, x, labels, float(eps), float(eps_step), p, targeted, int(batch_size),
                clip,
            )
        return _torch_gradient.fgm(
            target, x, labels, float(eps), p, targeted, int(batch_size), clip
        )

    from art.attacks.evasion import FastGradientMethod

    attack = FastGradientMethod(
        estimator,
        norm=_common.art_norm(p),
        eps=float(eps),
        eps_step=float(eps_step),
        targeted=targeted,
        batch_size=int(batch_size),
        minimal=minimal,
    )
    y_art = None if labels is None else _common.one_hot(labels, estimator.nb_classes)
    x_adv = attack.generate(x=x, y=y_art)
    return np.clip(x_adv, *clip).astype(np.float32)
