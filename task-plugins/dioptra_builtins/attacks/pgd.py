"""Projected gradient descent (Madry et al.)."""

from __future__ import annotations

import numpy as np
import torch

from dioptra import pyplugs
from dioptra_builtins.attacks import _common, _torch_gradient


@pyplugs.register
def generate_pgd(
    estimator,
    x: np.ndarray,
    y: np.ndarray | None = None,
    eps: float = 0.3,
    eps_step: float = 0.1,
    max_iter: int = 10,
    norm="inf",
    targeted: bool = False,
    random_init: bool = True,
    batch_size: int = 256,
    seed: int | None = None,
    clip_values=None,
) -> np.ndarray:
    """Adversarial copies of ``x`` (float32) after ``max_iter`` projected gradient steps.

    Starts from a uniformly random point of the ``eps`` ball when ``random_init`` (drawn
    with ``seed``, or with torch's global generator when ``seed`` is None), takes steps of
    size ``eps_step`` in the steepest direction of the chosen ``norm`` (``"inf"``, ``1``,
    ``2``), projects back on the ``eps`` ball and clips to ``clip_values`` (default: the
    estimator's, else [0, 1]) after every step.  ``y`` as
    in :func:`dioptra_builtins.attacks.fgm.generate_fgm`.  The final iterate is returned.

    PyTorch classifiers are attacked directly on their torch model; other ART estimators
    go through ART's ``ProjectedGradientDescent``.
    """

    p = _common.parse_norm(norm)
    x = _common.as_float32(x)
    labels = _common.class_indices(y)
    if targeted and labels is None:
        raise ValueError("targeted=True needs the target labels y")
    clip = _common.clip_range(estimator, clip_values)
    target = _torch_gradient.torch_target(estimator)
    if target is not None:
        generator = None  # torch's global generator (seeded by init_torch)
        if seed is not None:
            generator = torch.Generator().manual_seed(int(seed) % 2**63)
        return _torch_gradient.pgd(
            target, x, labels, float(eps), float(eps_step), int(max_iter), p, targeted,
            bool(random_init), int(batch_size), clip, generator,
        )

    from art.attacks.evasion import ProjectedGradientDescent

    attack = ProjectedGradientDescent(
        estimator,
        norm=_common.art_norm(p),
        eps=float(eps),
        eps_step=float(eps_step),
        max_iter=int(max_iter),
        targeted=targeted,
        num_random_init=1 if random_init else 0,
        batch_size=int(batch_size),
        verbose=False,
    )
    y_art = None if labels is None else _common.one_hot(labels, estimator.nb_classes)
    with _common.numpy_global_seed(seed):
        x_adv = attack.generate(x=x, y=y_art)
    return np.clip(x_adv, *clip).astype(np.float32)
