"""Adversarial data sets as MLflow artifacts (shipped at the root of every workflow archive).

An attack run logs ``adversarial.npz`` (arrays ``x_adv`` and ``y``: the adversarial
images and the true labels of the clean images they came from), the per-image distances
to the clean images (``distance_metrics.csv.gz``) and their summary as metrics
(``l_infinity_norm_max``, ``l_2_norm_mean``, ...). Other runs read it back by run id.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from dioptra_builtins.artifacts import mlflow as artifacts
from dioptra_builtins.data import npz
from dioptra_builtins.metrics import distance
from dioptra_builtins.tracking import mlflow as tracking

FILE_NAME = "adversarial.npz"


def log_adversarial_set(x: np.ndarray, x_adv: np.ndarray, y: np.ndarray) -> None:
    """Log ``x_adv`` and ``y`` as ``adversarial.npz``, and how far ``x_adv`` is from ``x``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = npz.save_npz(Path(tmp) / FILE_NAME, x_adv=x_adv, y=y)
        artifacts.upload_file_as_artifact(path)
    distances = distance.compute_distance_metrics(x, x_adv, labels=y)
    tracking.log_data_frame(distances, "distance_metrics.csv.gz", "csv.gz")
    summary = distance.summarize_distance_metrics(distances)
    tracking.log_metrics(summary)
    print(f"{len(x_adv)} adversarial images, L-inf distance to the clean ones at most "
          f"{summary['l_infinity_norm_max']:.4f}, L2 on average "
          f"{summary['l_2_norm_mean']:.4f}", flush=True)


def load_adversarial_set(run_id: str) -> dict[str, np.ndarray]:
    """``{"x_adv": ..., "y": ...}`` logged by the attack run ``run_id``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = artifacts.download_all_artifacts_in_run(run_id, FILE_NAME, tmp)
        return npz.load_npz(path)
