"""PyTorch image classifiers wrapped as ART ``PyTorchClassifier``s."""

from __future__ import annotations

import torch
from art.estimators.classification import PyTorchClassifier
from torch import nn

from dioptra import pyplugs
from dioptra_builtins.estimators import _architectures

OPTIMIZERS = {
    "Adam": torch.optim.Adam,
    "Adagrad": torch.optim.Adagrad,
    "RMSprop": torch.optim.RMSprop,
    "SGD": torch.optim.SGD,
}


@pyplugs.register
def parse_input_shape(input_shape) -> tuple[int, int, int]:
    """``(C, H, W)`` from a channels-first sequence or a v0-style ``"H,W,C"`` string."""

    if isinstance(input_shape, str):
        height, width, channels = (int(v) for v in input_shape.split(","))
        return channels, height, width
    shape = tuple(int(v) for v in input_shape)
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    return shape


@pyplugs.register
def wrap_model(
    model: nn.Module,
    input_shape,
    n_classes: int,
    optimizer: torch.optim.Optimizer | None = None,
    clip_values=(0.0, 1.0),
    device_type: str = "gpu",
) -> PyTorchClassifier:
    """Wrap a logits-producing ``model`` for ART with a cross-entropy loss."""

    return PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(input_shape),
        nb_classes=int(n_classes),
        optimizer=optimizer,
        clip_values=tuple(clip_values) if clip_values is not None else None,
        channels_first=True,
        device_type=device_type,
    )


@pyplugs.register
def init_classifier(
    model_architecture: str,
    input_shape,
    n_classes: int,
    learning_rate: float = 1e-3,
    optimizer: str = "Adam",
    seed: int | None = None,
    clip_values=(0.0, 1.0),
    device_type: str = "gpu",
) -> PyTorchClassifier:
    """Build ``shallow_net``, ``le_net`` or ``alex_net`` and wrap it for ART.

    ``input_shape`` is ``(C, H, W)`` (a ``"H,W,C"`` string as in v0 MLprojects also
    works).  ``seed`` (when not None) seeds PyTorch before the weights are drawn.
    ``device_type="gpu"`` uses CUDA when available, as in ART.  The returned
    classifier outputs logits and has ``clip_values`` (the pixel range).
    """

    shape = parse_input_shape(input_shape)
    if seed is not None and int(seed) >= 0:
        torch.manual_seed(int(seed) % 2**63)
    model = _architectures.build(model_architecture, shape, n_classes)
    try:
        optimizer_cls = OPTIMIZERS[optimizer]
    except KeyError:
        raise ValueError(
            f"Unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}"
        ) from None
    return wrap_model(
        model,
        shape,
        n_classes,
        optimizer=optimizer_cls(model.parameters(), lr=float(learning_rate)),
        clip_values=clip_values,
        device_type=device_type,
    )
