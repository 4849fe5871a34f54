"""Gradient attacks (FGM and PGD) computed directly on an ART classifier's torch model.

ART's ``FastGradientMethod`` converts between NumPy and torch at every batch and runs two
extra prediction passes to report its success rate; running the same steps on the
wrapped ``torch.nn.Module`` avoids that overhead.  The maths follows ART:

* step direction for norm ``p``: the unit-``p``-norm vector maximising ``<grad, d>``
  (``sign(grad)`` for inf, a one-hot on the largest ``|grad|`` for 1, ``grad/||grad||_2``
  for 2, the dual-norm formula for other ``p``);
* PGD projects the perturbation on the ``eps`` ball (exactly for inf, 1 and 2; by
  rescaling for other ``p``) and clips to the pixel range after every step.  Clipping
  only shrinks each coordinate of the perturbation, so the bound still holds after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class TorchTarget:
    model: torch.nn.Module
    loss: Any
    device: torch.device
    n_classes: int
    preprocess: Any  # callable on tensors, or None
    reduce_labels: bool

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.model(x)

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        if self.reduce_labels:
            return y
        return torch.nn.functional.one_hot(y, self.n_classes).to(torch.float32)


def _is_identity_standardisation(op) -> bool:
    mean = getattr(op, "mean", None)
    std = getattr(op, "std", None)
    if mean is None or std is None or "Standardisation" not in type(op).__name__:
        return False
    return bool(np.all(np.asarray(mean) == 0) and np.all(np.asarray(std) == 1))


def torch_target(estimator) -> TorchTarget | None:
    """A :class:`TorchTarget` for an ART ``PyTorchClassifier``; ``None`` otherwise.

    Pre-processing that is not the identity is applied through ART when all of it is
    written in torch (differentiable end to end); otherwise ``None`` is returned and the
    caller falls back to ART's own attack.
    """

    try:
        from art.estimators.classification import PyTorchClassifier
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(estimator, PyTorchClassifier):
        return None
    operations = list(estimator.preprocessing_operations or [])
    preprocess = None
    if not all(_is_identity_standardisation(op) for op in operations):
        if not estimator.all_framework_preprocessing:
            return None

        def preprocess(x: torch.Tensor) -> torch.Tensor:
            return estimator._apply_preprocessing(x, y=None, fit=False, no_grad=False)[0]

    loss = estimator._loss
    reduce_labels = isinstance(
        loss, torch.nn.CrossEntropyLoss | torch.nn.NLLLoss | torch.nn.MultiMarginLoss
    )
    return TorchTarget(
        model=estimator.model,
        loss=loss,
        device=estimator.device,
        n_classes=estimator.nb_classes,
        preprocess=preprocess,
        reduce_labels=reduce_labels,
    )


class eval_mode:
    """Put a module in eval mode for a block and restore its previous mode."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.was_training = model.training

    def __enter__(self):
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was_training)


def predicted_labels(target: TorchTarget, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return target.logits(x).argmax(dim=1)


def input_gradient(target: TorchTarget, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient of the loss with respect to the input only (no parameter gradients)."""

    x = x.detach().requires_grad_(True)
    loss = target.loss(target.logits(x), target.targets(y))
    return torch.autograd.grad(loss, x)[0]


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def steepest_direction(grad: torch.Tensor, p: float) -> torch.Tensor:
    """The ``d`` with ``||d||_p = 1`` maximising ``<grad, d>`` (0 where ``grad`` is 0)."""

    if math.isinf(p):
        return grad.sign()
    g = _flat(grad)
    if p == 1:
        index = g.abs().argmax(dim=1, keepdim=True)
        d = torch.zeros_like(g).scatter_(1, index, 1.0) * g.sign()
    elif p == 2:
        norm = g.norm(p=2, dim=1, keepdim=True)
        d = g / torch.where(norm > 0, norm, torch.ones_like(norm))
    else:
        q = p / (p - 1)
        norm = g.norm(p=q, dim=1, keepdim=True)
        d = (g.abs() / torch.where(norm > 0, norm, torch.ones_like(norm))) ** (q - 1) * g.sign()
    return d.reshape(grad.shape)


def _project_l1(v: torch.Tensor, eps: float) -> torch.Tensor:
    """Euclidean projection of each row of ``v`` on the L1 ball of radius ``eps``."""

    a = v.abs()
    inside = a.sum(dim=1) <= eps
    if bool(inside.all()):
        return v
    u, _ = torch.sort(a, dim=1, descending=True)
    css = u.cumsum(dim=1) - eps
    ks = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    condition = u * ks > css
    # rho = last index where the condition holds (it holds for a prefix of the indices).
    rho = (condition * torch.arange(v.shape[1], device=v.device)).max(dim=1, keepdim=True)[0]
    theta = css.gather(1, rho) / (rho + 1).to(v.dtype)
    projected = v.sign() * torch.clamp(a - theta, min=0.0)
    return torch.where(inside.unsqueeze(1), v, projected)


def project(delta: torch.Tensor, eps: float, p: float) -> torch.Tensor:
    """Project each sample's perturbation on the ``eps`` ball of the ``p`` norm."""

    if math.isinf(p):
        return delta.clamp(-eps, eps)
    d = _flat(delta)
    if p == 1:
        d = _project_l1(d, eps)
    else:
        norm = d.norm(p=p, dim=1, keepdim=True)
        factor = torch.clamp(eps / torch.where(norm > 0, norm, torch.ones_like(norm)), max=1.0)
        d = d * factor
    return d.reshape(delta.shape)


def random_in_ball(
    shape: tuple[int, ...], eps: float, p: float, generator: torch.Generator | None, device
) -> torch.Tensor:
    """Uniform random points in the ``eps`` ball (inf, 1, 2; rescaled L2 for other p)."""

    n = shape[0]
    dim = int(np.prod(shape[1:]))
    if math.isinf(p):
        return (torch.rand(shape, generator=generator) * 2 - 1).mul_(eps).to(device)
    if p == 1:
        # d+1 exponentials normalised by their sum are uniform on the simplex; dropping the
        # slack coordinate and drawing signs gives a uniform point of the L1 ball.
        e = -torch.log(torch.rand((n, dim + 1), generator=generator).clamp_min(1e-12))
        point = e[:, :dim] / e.sum(dim=1, keepdim=True)
        signs = torch.randint(0, 2, (n, dim), generator=generator) * 2 - 1
        return (point * signs * eps).reshape(shape).to(device)
    g = torch.randn((n, dim), generator=generator)
    g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
    radius = torch.rand((n, 1), generator=generator) ** (1.0 / dim)
    point = g * radius * eps
    if p != 2:
        point = project(point, eps, p)
    return point.reshape(shape).to(device)


def _labels_tensor(target, x_t, y, start, stop):
    if y is not None:
        return torch.from_numpy(y[start:stop]).to(target.device)
    return predicted_labels(target, x_t)


def over_batches(
    target: TorchTarget,
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> np.ndarray:
    """Apply ``attack(x_batch, labels)`` batch by batch, in eval mode; float32 out."""
    out = np.empty_like(x)
    with eval_mode(target.model):
        for start in range(0, len(x), batch_size):
            stop = start + batch_size
            x_t = torch.from_numpy(x[start:stop]).to(target.device)
            labels = _labels_tensor(target, x_t, y, start, stop)
            out[start:stop] = attack(x_t, labels).detach().cpu().numpy()
    return out


def fgm(
    target: TorchTarget,
    x: np.ndarray,
    y: np.ndarray | None,
    eps: float,
    p: float,
    targeted: bool,
    batch_size: int,
    clip: tuple[float, float],
) -> np.ndarray:
    """One gradient step of size ``eps`` in the steepest direction, then clip."""

    low, high = clip
    sign = -1.0 if targeted else 1.0

    def step(x_t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        direction = steepest_direction(input_gradient(target, x_t, labels), p)
        return (x_t + (sign * eps) * direction).clamp_(low, high)

    return over_batches(target, x, y, batch_size, step)


def fgm_minimal(
    target: TorchTarget,
    x: np.ndarray,
    y: np.ndarray | None,
    eps: float,
    eps_step: float,
    p: float,
    targeted: bool,
    batch_size: int,
    clip: tuple[float, float],
) -> np.ndarray:
    """FGM with the smallest ``k * eps_step <= eps`` that succeeds, per sample.

    The direction is the one at the clean input (as in ART's ``minimal=True``); samples
    that never succeed get the full ``eps``.
    """

    low, high = clip
    sign = -1.0 if targeted else 1.0
    n_steps = max(1, math.ceil(eps / eps_step - 1e-9))

    def smallest_step(x_t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        direction = sign * steepest_direction(input_gradient(target, x_t, labels), p)
        best = x_t.clone()
        done = torch.zeros(len(x_t), dtype=torch.bool, device=target.device)
        for k in range(1, n_steps + 1):
            size = min(k * eps_step, eps)
            candidate = (x_t + size * direction).clamp_(low, high)
            pred = predicted_labels(target, candidate)
            success = (pred == labels) if targeted else (pred != labels)
            take = ~done & (success | (k == n_steps))
            best[take] = candidate[take]
            done |= take
            if bool(done.all()):
                break
        return best

    return over_batches(target, x, y, batch_size, smallest_step)


def pgd(
    target: TorchTarget,
    x: np.ndarray,
    y: np.ndarray | None,
    eps: float,
    eps_step: float,
    max_iter: int,
    p: float,
    targeted: bool,
    random_init: bool,
    batch_size: int,
    clip: tuple[float, float],
    generator: torch.Generator | None,
) -> np.ndarray:
    """Projected gradient descent (Madry et al.): ``max_iter`` steps of size ``eps_step``."""

    sign = -1.0 if targeted else 1.0

    def attack(x_t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return perturb_pgd(target, x_t, labels, eps, eps_step, max_iter, p, sign,
                           random_init, clip, generator)

    return over_batches(target, x, y, batch_size, attack)


def perturb_pgd(
    target: TorchTarget,
    x_t: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    eps_step: float,
    max_iter: int,
    p: float,
    sign: float,
    random_init: bool,
    clip: tuple[float, float],
    generator: torch.Generator | None,
) -> torch.Tensor:
    """PGD on one batch of tensors (also used by adversarial training)."""

    low, high = clip
    if random_init:
        delta = random_in_ball(tuple(x_t.shape), eps, p, generator, x_t.device)
        x_adv = (x_t + delta).clamp_(low, high)
    else:
        x_adv = x_t.clone()
    for _ in range(int(max_iter)):
        direction = steepest_direction(input_gradient(target, x_adv, labels), p)
        x_adv = x_adv + (sign * eps_step) * direction
        x_adv = (x_t + project(x_adv - x_t, eps, p)).clamp_(low, high)
    return x_adv.detach()
