"""The two pages a person opens besides the testbed's own, in a real browser: Swagger UI
at /docs renders the (OpenAPI 3.1) document, and the MLflow UI opens an experiment made
through the testbed on its runs table, not on MLflow's GenAI view."""

from __future__ import annotations

import pytest
import requests
from testbed import ServerProcess, free_port, running, unique

from dioptra import mlflow_ui
from dioptra.client import DioptraClient
from dioptra.services.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG


@pytest.fixture(scope="module")
def served(tmp_path_factory, mlflow_uri):
    with running(ServerProcess(tmp_path_factory.mktemp("docs") / "data", free_port(),
                               ["--mlflow-tracking-uri", mlflow_uri, "--workers", "0"])
                 ) as server:
        yield server


def test_docs_render_the_v0_operations(served, browser):
    browser.open(f"{served.url}/docs")
    text = browser.wait_text("/api/v0/experiment/", "/api/v0/queue/{queueId}/lock",
                             "/api/v0/taskPlugin/dioptra_custom/{taskPluginName}")
    assert "Unable to render" not in text
    assert "Dioptra REST API" in text
    # The operations are rendered blocks that open: one of them shows its parameters.
    browser.find("#operations-experiment-get_experiment_api_v0_experiment__experimentId__get"
                 " .opblock-summary").click()
    browser.wait_text("Parameters", "Try it out")
    browser.screenshot("docs")
    browser.open(f"{served.url}/redoc")
    browser.wait_text("Dioptra REST API", "/api/v0/experiment/")
    browser.screenshot("redoc")


def test_mlflow_ui_opens_a_testbed_experiment_on_its_runs_table(served, mlflow_uri, browser):
    from mlflow import MlflowClient

    name = unique("ui")
    experiment_id = DioptraClient(served.url).register_experiment(name)["experimentId"]
    tracking = MlflowClient(tracking_uri=mlflow_uri)
    assert tracking.get_experiment(str(experiment_id)).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    run = tracking.create_run(str(experiment_id), run_name="fgm-eps-0.3")
    tracking.log_metric(run.info.run_id, "adv_accuracy", 0.25)
    tracking.set_terminated(run.info.run_id)

    # The MLflow UI where the server says it is, at the address the testbed hands out
    # (demo, web interface) for the experiment.
    ui = requests.get(f"{served.url}/api/v0/overview/config", timeout=30).json()["mlflowUi"]
    browser.open(mlflow_ui.experiment_url(ui, experiment_id))
    text = browser.wait_text("fgm-eps-0.3", "Run Name", "1 matching run")
    assert name in text
    for genai in ("Detect Issues", "No data available", "Tokens per Trace"):
        assert genai not in text, genai
    browser.screenshot("mlflow-runs")


def test_untagged_experiments_are_tagged(tmp_path, mlflow_uri):
    """What the server does as it starts (server.py): experiments of the testbed that
    MLflow holds without the tag (made by an older testbed) get it; others are left."""
    from mlflow import MlflowClient

    from dioptra.db import Database
    from dioptra.services import experiments
    from dioptra.services.tracking import Tracking

    db = Database(f"sqlite:///{tmp_path / 'dioptra.db'}")
    db.upgrade()
    tracking = Tracking(mlflow_uri)
    with db.session() as session:
        old = experiments.create(session, tracking, unique("old")).experiment_id
        deleted = experiments.create(session, tracking, unique("gone")).experiment_id
    raw = MlflowClient(tracking_uri=mlflow_uri)
    assert raw.get_experiment(str(old)).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    for experiment_id in (old, deleted):
        raw.delete_experiment_tag(str(experiment_id), EXPERIMENT_KIND_TAG)
    with db.session() as session:
        experiments.delete(session, tracking, experiments.get_by_id(session, deleted))
    foreign = raw.create_experiment(unique("not-ours"))

    with db.session() as session:
        assert experiments.tag_untagged(session, tracking) == [old]
    assert raw.get_experiment(str(old)).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert EXPERIMENT_KIND_TAG not in raw.get_experiment(foreign).tags
    with db.session() as session:
        assert experiments.tag_untagged(session, tracking) == []
    db.dispose()
