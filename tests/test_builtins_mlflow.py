"""Tracking, artifact and registry plugins against a real local MLflow store (SQLite)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from dioptra import pyplugs

pytestmark = pytest.mark.usefixtures("single_threaded")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri("sqlite:///" + str(root / "mlflow.db"))
    experiment_id = mlflow.create_experiment("builtins", artifact_location=(root / "art").as_uri())
    yield experiment_id
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def classifier():
    d = pyplugs.call("dioptra_builtins.data", "digits", "load_digits_dataset")
    clf = pyplugs.call("dioptra_builtins.estimators", "pytorch_classifiers", "init_classifier",
                       "le_net", (1, 8, 8), 10, learning_rate=3e-3, seed=0)
    return clf, d


def test_metrics_parameters_tables_and_figures(store, tmp_path):
    frame = pd.DataFrame({"image": ["a", "b"], "l_2_norm": [0.5, 1.5]})
    with mlflow.start_run(experiment_id=store) as run:
        logged = pyplugs.call("dioptra_builtins.tracking", "mlflow", "log_metrics",
                              {"accuracy": np.float32(0.75), "bad": float("nan"), "n": 3})
        assert logged == {"accuracy": 0.75, "n": 3.0}
        pyplugs.call("dioptra_builtins.tracking", "mlflow", "log_parameters",
                     {"seed": 4, "norm": "inf"})
        pyplugs.call("dioptra_builtins.tracking", "mlflow", "log_data_frame", frame,
                     "distance_metrics.csv.gz", "csv.gz")
        pyplugs.call("dioptra_builtins.artifacts", "mlflow", "upload_data_frame_artifact",
                     frame, "table.json", "json")
        figure = pyplugs.call("dioptra_builtins.tracking", "figures", "image_grid",
                              np.random.default_rng(0).uniform(0, 1, (3, 1, 8, 8)),
                              titles=["0", "1", "2"])
        pyplugs.call("dioptra_builtins.tracking", "mlflow", "log_figure", figure,
                     "plots/grid.png")
        with pytest.raises(ValueError):
            pyplugs.call("dioptra_builtins.artifacts", "mlflow", "upload_data_frame_artifact",
                         frame, "t.xlsx", "xlsx")
    data = mlflow.get_run(run.info.run_id).data
    assert data.metrics == {"accuracy": 0.75, "n": 3.0}
    assert data.params == {"seed": "4", "norm": "inf"}
    local = pyplugs.call("dioptra_builtins.artifacts", "mlflow", "download_all_artifacts_in_run",
                         run.info.run_id, "distance_metrics.csv.gz", str(tmp_path / "dl"))
    pd.testing.assert_frame_equal(pd.read_csv(local), frame)
    png = pyplugs.call("dioptra_builtins.artifacts", "mlflow", "download_all_artifacts_in_run",
                       run.info.run_id, "plots", str(tmp_path / "plots"))
    assert (Path(png) / "grid.png").read_bytes().startswith(b"\x89PNG")


def test_tarball_round_trip(store, tmp_path):
    source = tmp_path / "adv_testing"
    (source / "3").mkdir(parents=True)
    (source / "3" / "img.png").write_bytes(b"png bytes")
    (source / "notes.txt").write_text("hello")
    with mlflow.start_run(experiment_id=store) as run:
        pyplugs.call("dioptra_builtins.artifacts", "mlflow",
                     "upload_directory_as_tarball_artifact", source, "adv.tar.gz")
        extra = tmp_path / "extra.txt"
        extra.write_text("x")
        pyplugs.call("dioptra_builtins.artifacts", "mlflow", "upload_file_as_artifact", extra)
    tarball = pyplugs.call("dioptra_builtins.artifacts", "mlflow",
                           "download_all_artifacts_in_run", run.info.run_id, "adv.tar.gz",
                           str(tmp_path / "dl"))
    out = pyplugs.call("dioptra_builtins.artifacts", "utils", "extract_tarfile", tarball,
                       output_dir=tmp_path / "out")
    assert (out / "adv_testing" / "3" / "img.png").read_bytes() == b"png bytes"
    assert (out / "adv_testing" / "notes.txt").read_text() == "hello"
    names = [p.path for p in mlflow.MlflowClient().list_artifacts(run.info.run_id)]
    assert sorted(names) == ["adv.tar.gz", "extra.txt"]


def _tar_with(tmp_path, name, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as archive:
        member.size = len(data) if member.isfile() else 0
        archive.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_extract_tarfile_refuses_unsafe_members(tmp_path, kind):
    if kind == "dotdot":
        member = tarfile.TarInfo("../escape.txt")
    elif kind == "absolute":
        member = tarfile.TarInfo("/tmp/escape.txt")
    else:
        member = tarfile.TarInfo("link")
        member.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
        member.linkname = "/etc/passwd"
    tarball = _tar_with(tmp_path, f"{kind}.tar.gz", member, b"bad")
    out = tmp_path / "out"
    from dioptra_builtins.artifacts.utils import UnsafeArchiveError

    with pytest.raises(UnsafeArchiveError):
        pyplugs.call("dioptra_builtins.artifacts", "utils", "extract_tarfile", tarball,
                     output_dir=out)
    assert not (tmp_path / "escape.txt").exists()
    assert not out.exists() or not any(out.iterdir())  # nothing was written


def test_make_directories_and_unique_subdir(tmp_path, monkeypatch):
    made = pyplugs.call("dioptra_builtins.artifacts", "utils", "make_directories",
                        [tmp_path / "a" / "b", tmp_path / "c"])
    assert all(p.is_dir() for p in made)
    tarball = _tar_with(tmp_path, "ok.tar.gz", tarfile.TarInfo("f.txt"), b"ok")
    monkeypatch.chdir(tmp_path)
    first = pyplugs.call("dioptra_builtins.artifacts", "utils",
                         "extract_tarfile_in_unique_subdir", tarball)
    second = pyplugs.call("dioptra_builtins.artifacts", "utils",
                          "extract_tarfile_in_unique_subdir", tarball)
    assert first != second and (first / "f.txt").read_text() == "ok"


def test_train_log_register_load_and_attack(store, classifier):
    clf, d = classifier
    with mlflow.start_run(experiment_id=store) as run:
        pyplugs.call("dioptra_builtins.estimators", "methods", "fit", clf, d["x_train"],
                     d["y_train"], {"nb_epochs": 3, "batch_size": 64})
        uri = pyplugs.call("dioptra_builtins.tracking", "mlflow", "log_pytorch_model", clf,
                           "model")
        assert uri.endswith("/model")
        version = pyplugs.call("dioptra_builtins.registry", "mlflow", "add_model_to_registry",
                               run, "digits_le_net", "model")
        assert pyplugs.call("dioptra_builtins.registry", "mlflow", "add_model_to_registry",
                            run, "  ", "model") is None
        assert pyplugs.call("dioptra_builtins.registry", "mlflow", "get_experiment_name",
                            run) == "builtins"
    assert version.version in ("1", 1)
    assert "training_time_in_minutes" in mlflow.get_run(run.info.run_id).data.metrics

    x, y = d["x_test"], d["y_test"]
    expected = clf.predict(x)
    loaded = pyplugs.call("dioptra_builtins.registry", "mlflow", "load_pytorch_classifier",
                          "digits_le_net", 1, device_type="cpu")
    from_run = pyplugs.call("dioptra_builtins.registry", "mlflow",
                            "load_pytorch_classifier_from_run", run.info.run_id, "model",
                            device_type="cpu")
    for model in (loaded, from_run):
        np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-5)
        assert model.clip_values is not None and tuple(model.input_shape) == (1, 8, 8)
    x_adv = pyplugs.call("dioptra_builtins.attacks", "fgm", "generate_fgm", loaded, x, y,
                         eps=0.2)
    assert np.mean(loaded.predict(x_adv).argmax(1) == y) < np.mean(expected.argmax(1) == y)

    # a second registration of the same name makes version 2
    with mlflow.start_run(experiment_id=store) as run2:
        pyplugs.call("dioptra_builtins.tracking", "mlflow", "log_pytorch_model", clf, "model")
        again = pyplugs.call("dioptra_builtins.registry", "mlflow", "add_model_to_registry",
                             run2, "digits_le_net", "model")
    assert str(again.version) == "2"


def test_custom_torch_module_round_trip(tmp_path):
    from dioptra_builtins.estimators.pytorch_classifiers import wrap_model

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    clf = wrap_model(model, (1, 2, 2), 3)
    directory = pyplugs.call("dioptra_builtins.estimators", "serialization",
                             "save_pytorch_classifier", clf, tmp_path / "m")
    assert (directory / "module.pt").exists()
    back = pyplugs.call("dioptra_builtins.estimators", "serialization",
                        "load_pytorch_classifier", directory, device_type="cpu")
    x = np.random.default_rng(0).uniform(0, 1, (5, 1, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(back.predict(x), clf.predict(x), rtol=1e-6)
