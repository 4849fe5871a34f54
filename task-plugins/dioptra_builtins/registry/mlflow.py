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
    run_id = active_run.info.run_id
    logged = _logged_model(client, active_run, model_dir)
    if logged is not None:
        # MLflow 3: mlflow.<flavor>.log_model(..., "model") keeps the model outside the
        # run's artifacts, where v0-era code (and this function's rule) looked for it.
        return client.create_model_version(
            name=name, source=logged.model_uri, run_id=run_id, model_id=logged.model_id
        )
    source = f"{active_run.info.artifact_uri.rstrip('/')}/{model_dir}"
    return client.create_model_version(name=name, source=source, run_id=run_id)


def _logged_model(client: MlflowClient, active_run, model_dir: str):
    """The run's MLflow 3 logged model named ``model_dir`` (the newest), if any.

    It wins over ``<artifact_uri>/<model_dir>``: MLflow 3 lists a logged model's files
    under the run's artifacts too, but the run's artifact folder does not hold them.
    """

    model_dir = model_dir.strip("/")
    try:
        found = client.search_logged_models(
            experiment_ids=[active_run.info.experiment_id],
            filter_string=f"source_run_id = '{active_run.info.run_id}'",
        )
    except (MlflowException, AttributeError):  # an MLflow 2 server: no logged models
        return None
    named = [m for m in found if m.name == model_dir]
    return max(named, key=lambda m: m.creation_timestamp) if named else None


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
