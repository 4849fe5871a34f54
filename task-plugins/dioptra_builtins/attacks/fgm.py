"""Fast gradient method (FGSM for the inf norm)."""

from __future__ import annotations

from pathlib import Path

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


@pyplugs.register
def create_adversarial_fgm_dataset(
    data_dir,
    adv_data_dir,
    keras_classifier,
    image_size,
    distance_metrics_list=None,
    rescale: float = 1.0 / 255,
    batch_size: int = 32,
    label_mode: str = "categorical",
    eps: float = 0.3,
    eps_step: float = 0.1,
    minimal: bool = False,
    norm=np.inf,
):
    """v0's FGM over an image folder: adversarial PNGs per class and distance metrics.

    Reads ``data_dir/<class>/<image>`` at ``image_size`` (pixels times ``rescale``),
    attacks every image with :func:`generate_fgm` on ``keras_classifier`` (any ART
    classifier, despite v0's name: PyTorch ones take ``(N, C, H, W)``, others with a
    flat ``input_shape`` get flattened images), writes ``adv_data_dir/<class>/adv_*.png``
    and returns one row per image: ``image`` (the written file, relative to
    ``adv_data_dir``), ``label`` (the class) and one column per distance metric of
    ``distance_metrics_list`` (``[(name, function)]`` as ``get_distance_metric_list``
    returns; default: its default request). With an active MLflow run the summaries
    (``<metric>_mean`` ...) are logged as metrics, as v0 did. ``label_mode`` is accepted
    for v0 compatibility (the labels are only used to name folders).
    """

    import mlflow
    import pandas as pd

    from dioptra_builtins.data.image_folder import load_image_folder, save_image_folder
    from dioptra_builtins.metrics.distance import (
        DEFAULT_REQUEST,
        get_distance_metric_list,
        summarize_distance_metrics,
    )

    x, y, class_names = load_image_folder(data_dir, image_size)
    x = (x * 255.0 * float(rescale)).astype(np.float32)
    shape = getattr(keras_classifier, "input_shape", None)
    flat = shape is not None and len(shape) == 1
    x_in = x.reshape(len(x), -1) if flat else x
    x_adv = generate_fgm(
        keras_classifier, x_in, eps=eps, eps_step=eps_step, norm=norm, minimal=minimal,
        batch_size=batch_size,
    ).reshape(x.shape)
    root = Path(adv_data_dir)
    written = save_image_folder(x_adv, y, root, class_names, prefix="adv")
    metrics = distance_metrics_list or get_distance_metric_list(DEFAULT_REQUEST)
    table = pd.DataFrame({
        "image": [str(p.relative_to(root)) for p in written],
        "label": [class_names[int(i)] for i in y],
    })
    for name, func in metrics:
        table[name] = func(x, x_adv)
    if mlflow.active_run() is not None and len(table):
        mlflow.log_metrics(summarize_distance_metrics(table))
    return table
