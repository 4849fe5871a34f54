"""Model inversion (Fredrikson et al. MI-Face), via ART."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks import _common


def _with_probabilities(estimator):
    """For a logits PyTorch classifier, the same network followed by a softmax.

    MI-Face stops on ``1 - score <= threshold`` and so expects probabilities.
    """

    from art.estimators.classification import PyTorchClassifier

    if not isinstance(estimator, PyTorchClassifier):
        return estimator
    import torch

    return PyTorchClassifier(
        model=torch.nn.Sequential(estimator.model, torch.nn.Softmax(dim=1)),
        loss=torch.nn.NLLLoss(),
        input_shape=estimator.input_shape,
        nb_classes=estimator.nb_classes,
        clip_values=estimator.clip_values,
        channels_first=estimator.channels_first,
        device_type="cpu" if str(estimator.device) == "cpu" else "gpu",
    )


@pyplugs.register
def infer_model_inversion(
    estimator,
    classes=None,
    max_iter: int = 1000,
    window_length: int = 100,
    threshold: float = 0.99,
    learning_rate: float = 0.1,
    batch_size: int = 16,
    x_init: np.ndarray | None = None,
) -> np.ndarray:
    """One representative input per class in ``classes`` (default: every class).

    Gradient ascent on the class probability from ``x_init`` (default: all zeros),
    clipped to the pixel range, for at most ``max_iter`` steps (ART's MI-Face stopping
    rules with ``window_length`` and ``threshold``).  Logit-output PyTorch classifiers are
    given a softmax first.  Returns float32 ``(len(classes), C, H, W)`` in the pixel range.
    """

    from art.attacks.inference.model_inversion import MIFace

    if classes is None:
        classes = np.arange(estimator.nb_classes)
    classes = np.asarray(classes, dtype=np.int64)
    attack = MIFace(
        _with_probabilities(estimator),
        max_iter=int(max_iter),
        window_length=int(window_length),
        threshold=float(threshold),
        learning_rate=float(learning_rate),
        batch_size=int(batch_size),
        verbose=False,
    )
    x0 = None if x_init is None else _common.as_float32(x_init)
    inferred = attack.infer(x0, y=classes)
    return np.clip(inferred, *_common.clip_range(estimator)).astype(np.float32)
