"""Log parameters, metrics, tables, figures and models to the active MLflow run."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from dioptra import pyplugs
from dioptra_builtins.artifacts.mlflow import upload_data_frame_artifact


def _scalar(value) -> float:
    if isinstance(value, np.ndarray | np.generic):
        value = value.item()
    return float(value)


@pyplugs.register
def log_metrics(metrics: dict, step: int | None = None) -> dict[str, float]:
    """Log each ``name: number`` (NumPy scalars accepted; non-finite values skipped).

    Returns what was logged.
    """

    logged = {}
    for name, value in metrics.items():
        number = _scalar(value)
        if math.isfinite(number):
            logged[str(name)] = number
    if logged:
        mlflow.log_metrics(logged, step=step)
    return logged


@pyplugs.register
def log_parameters(parameters: dict) -> dict[str, str]:
    """Log each ``name: value`` as an MLflow parameter (values as strings)."""

    params = {str(k): str(v) for k, v in parameters.items()}
    if params:
        mlflow.log_params(params)
    return params


@pyplugs.register
def log_data_frame(
    data_frame: pd.DataFrame,
    file_name: str,
    file_format: str = "csv",
    file_format_kwargs: dict | None = None,
) -> None:
    """Store a table as a run artifact (formats as in ``artifacts.mlflow``)."""

    upload_data_frame_artifact(data_frame, file_name, file_format, file_format_kwargs)


@pyplugs.register
def log_figure(figure, artifact_file: str) -> None:
    """Store a matplotlib ``Figure`` as an image artifact (e.g. ``"plots/x.png"``)."""

    mlflow.log_figure(figure, artifact_file)


@pyplugs.register
def log_pytorch_model(estimator, artifact_path: str = "model") -> str:
    """Store an ART PyTorch classifier under ``artifact_path``; returns its artifact URI.

    The files are those of ``estimators.serialization`` (JSON metadata + state dict), so
    loading needs neither MLflow's model flavour nor pickled code.
    """

    with tempfile.TemporaryDirectory() as tmp:
        # Imported here: torch and ART take seconds, and logging a metric needs neither.
        from dioptra_builtins.estimators.serialization import save_pytorch_classifier

        save_pytorch_classifier(estimator, Path(tmp))
        mlflow.log_artifacts(tmp, artifact_path=artifact_path)
    return mlflow.get_artifact_uri(artifact_path)
