"""A job's MLflow run as people look at it: parameters, tags, metrics, artifacts."""

from __future__ import annotations

import mimetypes
import posixpath
import tempfile
from pathlib import Path

from dioptra.db.models import Job
from dioptra.services.errors import BadGateway, BadRequest, NotFound
from dioptra.services.tracking import Tracking

NO_RUN = "The job has no MLflow run yet"


def _run_id(job: Job) -> str:
    if not job.mlflow_run_id:
        raise NotFound(NO_RUN)
    return job.mlflow_run_id


def _mlflow_call(call, *args, **kwargs):
    from dioptra.services.tracking import import_mlflow

    import_mlflow()
    from mlflow.exceptions import MlflowException

    try:
        return call(*args, **kwargs)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"MLflow does not know this: {exc.message}") from exc
        raise BadGateway(f"The MLflow Tracking backend failed: {exc.message}") from exc
    except OSError as exc:
        raise BadGateway(f"The MLflow Tracking backend cannot be reached: {exc}") from exc


def summary(tracking: Tracking, job: Job) -> dict:
    run_id = _run_id(job)
    run = _mlflow_call(tracking.client.get_run, run_id)
    return {
        "runId": run.info.run_id,
        "experimentId": run.info.experiment_id,
        "status": run.info.status,
        "startTime": run.info.start_time,
        "endTime": run.info.end_time,
        "params": dict(sorted(run.data.params.items())),
        "metrics": dict(sorted(run.data.metrics.items())),
        "tags": dict(sorted(run.data.tags.items())),
    }


def metric_history(tracking: Tracking, job: Job, key: str) -> list[dict]:
    run_id = _run_id(job)
    history = _mlflow_call(tracking.client.get_metric_history, run_id, key)
    return [{"step": m.step, "value": m.value, "timestamp": m.timestamp}
            for m in sorted(history, key=lambda m: (m.step, m.timestamp))]


def _check_path(path: str) -> str:
    path = path.rstrip("/")
    if path and (posixpath.isabs(path) or ".." in path.split("/") or "\\" in path):
        raise BadRequest(f"path {path!r} is not a path inside the run's artifacts.")
    return path


def list_artifacts(tracking: Tracking, job: Job, path: str = "") -> list[dict]:
    run_id, path = _run_id(job), _check_path(path)  # checked before MLflow is asked
    found = _mlflow_call(tracking.client.list_artifacts, run_id, path or None)
    return [{"path": f.path, "isDir": f.is_dir, "size": f.file_size} for f in found]


def read_artifact(tracking: Tracking, job: Job, path: str) -> tuple[bytes, str, str]:
    """The bytes of one artifact file, its media type and its file name."""
    path = _check_path(path)
    if not path:
        raise BadRequest("path names no artifact file.")
    run_id = _run_id(job)
    with tempfile.TemporaryDirectory(prefix="dioptra-artifact-") as tmp:
        local = Path(_mlflow_call(tracking.client.download_artifacts, run_id, path, tmp))
        if local.is_dir():
            raise BadRequest(f"path {path!r} is a folder: list it instead.")
        data = local.read_bytes()
    media = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return data, media, posixpath.basename(path)
