"""Dioptra v0 workflows, unchanged, end to end through the client on the digits.

One server, four jobs side by side: the task-engine CLI pair of an MLproject, the same
description through POST /job/newTaskEngine, a Prefect 1.x flow script written in v0's
style, and that script with a failing task (which must fail the job, unlike v0).
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import mlflow
import pytest
import requests
import yaml
from testbed import unique

from dioptra.client import DioptraClient

HERE = Path(__file__).with_name("v0_workflow")


def pack(tmp_path: Path, name: str, paths: list[str], root: Path = HERE) -> Path:
    archive = tmp_path / name
    with tarfile.open(archive, "w:gz") as tar:
        for path in paths:
            tar.add(root / path, arcname=path, filter=_no_cache)
    return archive


def _no_cache(info: tarfile.TarInfo):
    return None if "__pycache__" in info.name else info


def finished_log(client, job_id):
    done = client.wait_for_job(job_id, timeout_s=600)
    return done, client.get_job_log(job_id)["log"]


def test_v0_workflows_run_unchanged(start_server, tmp_path, mlflow_uri):
    pytest.importorskip("prefect", reason="the [v0] extra (Prefect 1.x)")
    server = start_server(workers=2)
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("v0"))["name"]
    queue = client.register_queue(unique("v0cpu"))["name"]
    plugin = client.upload_custom_plugin_package(
        "digits_v0", pack(tmp_path, "digits_v0.tar.gz", ["__init__.py", "tasks.py"],
                          HERE / "digits_v0"))
    assert plugin["taskPluginName"] == "digits_v0", plugin
    workflow = pack(tmp_path, "workflows.tar.gz", ["MLproject", "train.yml", "train_legacy.py"])
    description = yaml.safe_load((HERE / "train.yml").read_text())

    # Refusals of newTaskEngine first: no job is created for them.
    url = f"{server.url}/api/v0/job/newTaskEngine"
    bad = dict(description, graph={**description["graph"], "model": {"fitt": []}})
    refused = requests.post(url, json={"queue": queue, "experimentName": experiment,
                                       "experimentDescription": bad}, timeout=60)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith(
        "Bad Request - The experiment description is invalid! Issues: 1. semantic.error: "
        'In step "model": unrecognized task plugin: fitt')
    missing = requests.post(url, json={"queue": queue, "experimentName": experiment},
                            timeout=60)
    assert missing.status_code == 400 and "experimentDescription" in missing.json()["message"]

    jobs = {
        "engine": client.submit_job(workflow, experiment, "train", "-P seed=7",
                                    queue=queue, timeout="10m"),
        "json": client.submit_task_engine_job(description, experiment, queue,
                                              global_parameters={"seed": 7}, timeout="10m"),
        "prefect": client.submit_job(workflow, experiment, "train_legacy", "-P seed=7",
                                     queue=queue, timeout="10m"),
        "failing": client.submit_job(workflow, experiment, "train_legacy",
                                     "-P seed=7 -P fail=true", queue=queue, timeout="10m"),
    }
    assert all("jobId" in job for job in jobs.values()), jobs
    tracking = mlflow.MlflowClient(mlflow_uri)

    done, log = finished_log(client, jobs["engine"]["jobId"])
    assert done["status"] == "finished", log
    assert "No issues!" in log and "Running step: model" in log
    assert "skipping the unknown performance metric 'auc'" in log  # as v0: skipped
    run = tracking.get_run(done["mlflowRunId"])
    assert run.data.metrics["accuracy"] > 0.9 and "auc" not in run.data.metrics
    assert run.data.params["entry_point_seed"] == "7" and "dataset_seed" in run.data.params
    assert run.data.tags["dioptra.jobId"] == jobs["engine"]["jobId"]

    done, log = finished_log(client, jobs["json"]["jobId"])
    assert done["status"] == "finished", log
    run = tracking.get_run(done["mlflowRunId"])
    assert run.data.params["seed"] == "7" and run.data.metrics["accuracy"] > 0.9
    artifacts = {a.path for a in tracking.list_artifacts(run.info.run_id)}
    assert "experiment.yaml" in artifacts
    engine_accuracy = tracking.get_run(
        client.get_job_by_id(jobs["engine"]["jobId"])["mlflowRunId"]).data.metrics["accuracy"]
    assert run.data.metrics["accuracy"] == engine_accuracy  # same seed, same result

    done, log = finished_log(client, jobs["prefect"]["jobId"])
    assert done["status"] == "finished", log
    assert "Task 'fit': Finished task run" in log
    assert f"rq_job_id={jobs['prefect']['jobId']}" in log  # structlog, through the sdk
    plugin_dir = re.search(r"plugin_dir=(\S+)", log).group(1)
    assert plugin_dir.endswith("/plugins") and re.search(r"cwd=\S+/workflow", log)
    run = tracking.get_run(done["mlflowRunId"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["accuracy"] > 0.9 and run.data.params["entry_point_seed"] == "7"

    done, log = finished_log(client, jobs["failing"]["jobId"])
    assert done["status"] == "failed", log  # v0 reported such a job "finished"
    assert "RuntimeError: this task fails on purpose" in log
    assert "accuracy" not in tracking.get_run(done["mlflowRunId"]).data.metrics
    assert tracking.get_run(done["mlflowRunId"]).info.status == "FAILED"
