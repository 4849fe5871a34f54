"""Move files between the job's working directory and the MLflow artifact store."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from dioptra import pyplugs
from dioptra_builtins.artifacts.exceptions import UnsupportedDataFrameFileFormatError

DATA_FRAME_FORMATS = ("csv", "csv.bz2", "csv.gz", "csv.xz", "feather", "json", "pickle")


@pyplugs.register
def download_all_artifacts_in_run(
    run_id: str, artifact_path: str, destination_path: str | None = None
) -> str:
    """Download ``artifact_path`` (file or directory) of run ``run_id``; return the local path."""

    if destination_path is not None:
        Path(destination_path).mkdir(parents=True, exist_ok=True)
    return mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=artifact_path, dst_path=destination_path
    )


def _write_data_frame(data_frame: pd.DataFrame, path: Path, file_format: str, kwargs: dict):
    if file_format.startswith("csv"):
        compression = file_format.partition(".")[2] or None
        compression = {"gz": "gzip", "bz2": "bz2", "xz": "xz"}.get(compression, compression)
        data_frame.to_csv(path, compression=compression, **{"index": False, **kwargs})
    elif file_format == "feather":
        data_frame.to_feather(path, **kwargs)
    elif file_format == "json":
        data_frame.to_json(path, **kwargs)
    elif file_format == "pickle":
        data_frame.to_pickle(path, **kwargs)
    else:
        raise UnsupportedDataFrameFileFormatError(
            f"Unsupported data frame format {file_format!r}; choose one of {DATA_FRAME_FORMATS}"
        )


@pyplugs.register
def upload_data_frame_artifact(
    data_frame: pd.DataFrame,
    file_name: str,
    file_format: str,
    file_format_kwargs: dict | None = None,
    working_dir: str | Path | None = None,
) -> None:
    """Write ``data_frame`` as ``file_name`` in ``file_format`` and log it as an artifact.

    Formats: ``csv``, ``csv.bz2``, ``csv.gz``, ``csv.xz`` (written without the index
    unless ``file_format_kwargs`` says otherwise), ``feather`` (needs pyarrow), ``json``,
    ``pickle``.  The file is written in ``working_dir`` (default: a temporary directory).
    """

    if file_format not in DATA_FRAME_FORMATS:
        raise UnsupportedDataFrameFileFormatError(
            f"Unsupported data frame format {file_format!r}; choose one of {DATA_FRAME_FORMATS}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(working_dir) if working_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / file_name
        _write_data_frame(data_frame, path, file_format, dict(file_format_kwargs or {}))
        mlflow.log_artifact(str(path))


@pyplugs.register
def upload_directory_as_tarball_artifact(
    source_dir: str | Path,
    tarball_filename: str,
    tarball_write_mode: str = "w:gz",
    working_dir: str | Path | None = None,
) -> None:
    """Pack ``source_dir`` (as its own top-level folder) into a tarball and log it."""

    source = Path(source_dir)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(working_dir) if working_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        tarball = folder / tarball_filename
        with tarfile.open(tarball, tarball_write_mode) as archive:
            archive.add(source, arcname=source.name)
        mlflow.log_artifact(str(tarball))


@pyplugs.register
def upload_file_as_artifact(artifact_path: str | Path) -> None:
    """Log one local file as an artifact of the active run."""

    mlflow.log_artifact(str(artifact_path))
