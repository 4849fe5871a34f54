"""Madry et al. PGD adversarial training of a PyTorch classifier."""

from __future__ import annotations

import time

import numpy as np
import torch

from dioptra import pyplugs
from dioptra_builtins.attacks import _common, _torch_gradient


@pyplugs.register
def train_madry_pgd(
    estimator,
    x: np.ndarray,
    y: np.ndarray,
    eps: float = 0.3,
    eps_step: float = 0.1,
    max_iter: int = 7,
    nb_epochs: int = 10,
    batch_size: int = 128,
    norm="inf",
    ratio: float = 1.0,
    seed: int | None = 0,
):
    """Train ``estimator`` on PGD adversarial examples of ``(x, y)`` and return it.

    For every mini-batch, PGD (random start, ``max_iter`` steps of ``eps_step`` within
    ``eps``) attacks the current model, and an optimiser step is taken on the loss of the
    batch in which a ``ratio`` fraction of the samples is replaced by its adversarial
    copy (``ratio=1``: Madry et al.).  Uses the estimator's optimiser.  PyTorch
    classifiers are trained directly on their torch model; other estimators go through
    ART's ``AdversarialTrainerMadryPGD`` (``ratio`` is then ignored).  When an MLflow run
    is active the wall time is logged as ``training_time_in_minutes``.
    """

    start_time = time.perf_counter()
    x = _common.as_float32(x)
    labels = _common.class_indices(y)
    p = _common.parse_norm(norm)
    clip = _common.clip_range(estimator)
    target = _torch_gradient.torch_target(estimator)
    if target is None:
        from art.defences.trainer import AdversarialTrainerMadryPGD

        trainer = AdversarialTrainerMadryPGD(
            estimator, nb_epochs=int(nb_epochs), batch_size=int(batch_size), eps=float(eps),
            eps_step=float(eps_step), max_iter=int(max_iter), num_random_init=1,
        )
        with _common.numpy_global_seed(seed):
            trainer.fit(x, _common.one_hot(labels, estimator.nb_classes))
        _log_time(start_time)
        return trainer.get_classifier()

    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(int(seed) % 2**63 if seed is not None else 0)
    model = target.model
    optimizer = estimator.optimizer
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    was_training = model.training
    x_all = torch.from_numpy(x)
    y_all = torch.from_numpy(labels)
    for _ in range(int(nb_epochs)):
        order = torch.from_numpy(rng.permutation(len(x)))
        for begin in range(0, len(x), int(batch_size)):
            index = order[begin : begin + int(batch_size)]
            xb = x_all[index].to(target.device)
            yb = y_all[index].to(target.device)
            n_adv = int(round(float(ratio) * len(index)))
            model.eval()
            x_adv = _torch_gradient.perturb_pgd(
                target, xb[:n_adv], yb[:n_adv], float(eps), float(eps_step), int(max_iter),
                p, 1.0, True, clip, generator,
            )
            model.train()
            inputs = torch.cat([x_adv, xb[n_adv:]]) if n_adv < len(index) else x_adv
            loss = target.loss(target.logits(inputs), target.targets(yb))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.train(was_training)
    _log_time(start_time)
    return estimator


def _log_time(start_time: float) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_metric("training_time_in_minutes", (time.perf_counter() - start_time) / 60)
