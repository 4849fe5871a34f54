"""Builtins as v0 had them: metric lists, fit/predict forms, FGM over an image folder,
and MLflow 3 model logging + v0 registration."""

from __future__ import annotations

import logging
import uuid

import mlflow
import numpy as np
import pytest

from dioptra import pyplugs

pytestmark = pytest.mark.usefixtures("single_threaded")
METRICS = "dioptra_builtins.metrics"


@pytest.fixture(scope="module")
def digits():
    return pyplugs.call("dioptra_builtins.data", "digits", "load_digits_dataset",
                        as_images=False)


def new_classifier():
    return pyplugs.call("dioptra_builtins.estimators", "sklearn_classifiers",
                        "init_classifier", "logistic_regression")


def test_metric_lists_skip_unknown_names_with_a_warning(caplog):
    request = [{"name": "acc", "func": "accuracy"}, {"name": "auc", "func": "auc"}]
    with caplog.at_level(logging.WARNING):
        pairs = pyplugs.call(METRICS, "performance", "get_performance_metric_list", request)
        dist = pyplugs.call(METRICS, "distance", "get_distance_metric_list",
                            [{"name": "l2", "func": "l_2_norm"}, {"name": "x", "func": "nope"}])
    assert [name for name, _ in pairs] == ["acc"] and [name for name, _ in dist] == ["l2"]
    assert "skipping the unknown performance metric 'auc'" in caplog.text
    assert "skipping the unknown distance metric 'nope'" in caplog.text
    with pytest.raises(ValueError):
        pyplugs.call(METRICS, "performance", "get_performance_metric", "auc")


def test_fit_and_predict_accept_v0_calling_forms(digits):
    methods = ("dioptra_builtins.estimators", "methods")
    reference = pyplugs.call(*methods, "fit", new_classifier(), digits["x_train"],
                             digits["y_train"])
    expected = pyplugs.call(*methods, "predict", reference, digits["x_test"])

    def batches():
        for i in range(0, len(digits["x_train"]), 400):
            yield digits["x_train"][i:i + 400], digits["y_train"][i:i + 400]

    for dataset in (digits, batches()):
        model = pyplugs.call(*methods, "fit", estimator=new_classifier(), x=dataset,
                             fit_kwargs={})
        for test_set in ({"x": digits["x_test"], "y": digits["y_test"]},
                         (digits["x_test"], digits["y_test"])):
            got = pyplugs.call(*methods, "predict", model, x=test_set)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert (expected.argmax(1) == digits["y_test"]).mean() > 0.9


def test_create_adversarial_fgm_dataset(tmp_path, digits, store):
    images = tmp_path / "images"
    x = digits["x_test"][:30].reshape(-1, 1, 8, 8)
    y = digits["y_test"][:30]
    pyplugs.call("dioptra_builtins.data", "image_folder", "save_image_folder", x, y, images)
    model = pyplugs.call("dioptra_builtins.estimators", "methods", "fit", new_classifier(),
                         digits["x_train"], digits["y_train"])
    metrics = pyplugs.call(METRICS, "distance", "get_distance_metric_list",
                           [{"name": "linf", "func": "l_inf_norm"},
                            {"name": "l2", "func": "l_2_norm"}])
    with mlflow.start_run(experiment_id=store) as run:
        table = pyplugs.call("dioptra_builtins.attacks", "fgm",
                             "create_adversarial_fgm_dataset", data_dir=images,
                             adv_data_dir=tmp_path / "adv", keras_classifier=model,
                             image_size=(8, 8, 1), distance_metrics_list=metrics, eps=0.2)
    assert list(table.columns) == ["image", "label", "linf", "l2"]
    assert len(table) == 30
    written = sorted((tmp_path / "adv").rglob("*.png"))
    assert len(written) == 30
    assert {p.parent.name for p in written} == {str(int(c)) for c in y}
    assert all((tmp_path / "adv" / name).is_file() for name in table["image"])
    assert table["linf"].max() <= 0.2 + 1e-6 and table["linf"].min() > 0
    logged = mlflow.get_run(run.info.run_id).data.metrics
    assert logged["linf_max"] == pytest.approx(table["linf"].max())


@pytest.fixture(scope="module")
def store(mlflow_uri):
    """An experiment on the session's MLflow server (no store of its own to create)."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_uri)
    yield mlflow.create_experiment(f"v0-builtins-{uuid.uuid4().hex[:8]}")
    mlflow.set_tracking_uri(previous)


def test_v0_style_log_model_then_add_model_to_registry(store, digits):
    import mlflow.sklearn

    model = pyplugs.call("dioptra_builtins.estimators", "methods", "fit", new_classifier(),
                         digits["x_train"], digits["y_train"])
    with mlflow.start_run(experiment_id=store) as run:
        # As v0-era code does it: log with the flavor, register the run's "model" dir.
        mlflow.sklearn.log_model(model.model, artifact_path="model",
                                 pip_requirements=["scikit-learn"])  # no slow inference
        # a second, later model of another name must not be the one registered
        mlflow.sklearn.log_model(new_classifier().model.fit(digits["x_train"][:50],
                                                            digits["y_train"][:50]),
                                 artifact_path="other", pip_requirements=["scikit-learn"])
        version = pyplugs.call("dioptra_builtins.registry", "mlflow",
                               "add_model_to_registry", run, "v0_digits", "model")
    loaded = mlflow.sklearn.load_model(f"models:/v0_digits/{version.version}")
    np.testing.assert_array_equal(loaded.predict(digits["x_test"]),
                                  model.model.predict(digits["x_test"]))
