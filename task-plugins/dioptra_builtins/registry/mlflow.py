"""MLflow model registry: register logged models and load them back as ART classifiers."""

from __future__ import annotations

import tempfile

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dioptra import pyplugs
from dioptra_builtins.estimators.serialization import load_pytorch_classifier as _load_dir


@pyplugs.register
def add_model_to_registry(active_run, name: str | None, model_dir: str):
    """Register ``<run artifact URI>/<model_dir>`` as a new version of model ``name``.

    Does nothing (returns None) when ``name`` is blank.  The registered model is
    created when missing.  Returns the ``ModelVersion``.
    """

    if name is None or not str(name).strip():
        return None
    name = str(name).strip()
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    source = f"{active_run.info.artifact_uri.rstrip('/')}/{model_dir}"
    return client.create_model_version(name=name, source=source, run_id=active_run.info.run_id)


@pyplugs.register
def get_experiment_name(active_run) -> str:
    """Name of the experiment the run belongs to."""

    return MlflowClient().get_experiment(active_run.info.experiment_id).name


@pyplugs.register
def load_pytorch_classifier(name: str, version: str | int, device_type: str = "gpu"):
    """Load registered model ``name`` version ``version`` as an ART ``PyTorchClassifier``."""

    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=tmp
        )
        return _load_dir(local, device_type=device_type)


@pyplugs.register
def load_pytorch_classifier_from_run(
    run_id: str, artifact_path: str = "model", device_type: str = "gpu"
):
    """Load the classifier logged under ``artifact_path`` of run ``run_id``."""

    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, dst_path=tmp
        )
        return _load_dir(local, device_type=device_type)
