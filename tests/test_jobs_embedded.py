"""Jobs really run on the embedded workers: lifecycle, MLflow run, logs, timeouts,
dependencies, cancellation, a killed worker and a server restart."""

import os
import signal
import sqlite3
import time

import mlflow
import pytest
from testbed import unique, worker_pids
from workflows import echo_workflow

from dioptra.client import DioptraClient


@pytest.fixture
def testbed(start_server):
    server = start_server(workers=2)
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("jobs"))
    queue = client.register_queue(unique("cpu"))
    return server, client, experiment["name"], queue["name"]


def submit(client, tmp_path, experiment, queue, entry_point="main", **kw):
    job = client.submit_job(echo_workflow(tmp_path), experiment, entry_point, queue=queue, **kw)
    assert "jobId" in job, job
    return job


def wait_status(client, job_id, statuses, timeout_s=90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get_job_by_id(job_id)
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']}; log:\n"
                         f"{client.get_job_log(job_id)['log']}")


def test_lifecycle_mlflow_run_and_log(testbed, tmp_path, mlflow_uri):
    server, client, experiment, queue = testbed
    job = submit(client, tmp_path, experiment, queue, entry_point_kwargs="-P x=3 -P "
                 "\"word=two words\"")
    done = client.wait_for_job(job["jobId"], timeout_s=120)
    log = client.get_job_log(job["jobId"])["log"]
    assert done["status"] == "finished", log
    assert "x=3.0 word=two words" in log
    run = mlflow.MlflowClient(mlflow_uri).get_run(done["mlflowRunId"])
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == str(done["experimentId"])
    assert run.data.metrics["x_squared"] == 9.0
    # Logged as `mlflow run` logs them: shell-quoted when quoting is needed.
    assert run.data.params["x"] == "3" and run.data.params["word"] == "'two words'"
    tags = run.data.tags
    assert tags["dioptra.jobId"] == job["jobId"]
    assert tags["dioptra.queue"] == queue
    assert tags["dioptra.dependsOn"] == "None"
    assert len(tags["dioptra.workflowSha256"]) == 64
    artifacts = {a.path for a in mlflow.MlflowClient(mlflow_uri).list_artifacts(run.info.run_id)}
    assert "workflows.tar.gz" in artifacts and "job.log" in artifacts
    # The log says what happened, in order.
    assert log.index("claimed by worker") < log.index("entry point started") < log.index(
        "job finished")


def test_failure_timeout_and_cancel(testbed, tmp_path, mlflow_uri):
    server, client, experiment, queue = testbed
    failing = submit(client, tmp_path, experiment, queue, "fail")
    slow = submit(client, tmp_path, experiment, queue, "sleep", timeout="3s")
    cancelled = submit(client, tmp_path, experiment, queue, "sleep",
                       entry_point_kwargs="-P seconds=120")

    failed = client.wait_for_job(failing["jobId"], timeout_s=120)
    assert failed["status"] == "failed"
    log = client.get_job_log(failing["jobId"])["log"]
    assert "about to fail" in log and "exited with code 3" in log
    assert mlflow.MlflowClient(mlflow_uri).get_run(failed["mlflowRunId"]).info.status == "FAILED"

    timed_out = client.wait_for_job(slow["jobId"], timeout_s=120)
    assert timed_out["status"] == "failed"
    assert "timed out" in client.get_job_log(slow["jobId"])["log"]

    wait_status(client, cancelled["jobId"], {"started"})
    client.cancel_job(cancelled["jobId"])
    ended = client.wait_for_job(cancelled["jobId"], timeout_s=60)
    assert ended["status"] == "failed"
    assert "cancelled" in client.get_job_log(cancelled["jobId"])["log"]
    again = client.cancel_job(cancelled["jobId"])
    assert again["message"].startswith("Bad Request - The job has already ended")


def test_dependency_chains(testbed, tmp_path):
    server, client, experiment, queue = testbed
    parent = submit(client, tmp_path, experiment, queue, "sleep", entry_point_kwargs="-P seconds=2")
    child = submit(client, tmp_path, experiment, queue, depends_on=parent["jobId"])
    assert child["status"] == "deferred"
    assert client.wait_for_job(child["jobId"], timeout_s=120)["status"] == "finished"
    child_log = client.get_job_log(child["jobId"])["log"]
    assert f"dependency {parent['jobId']} finished" in child_log
    assert client.get_job_by_id(parent["jobId"])["status"] == "finished"
    # A failed parent failing its children is a rule: tests/inprocess/test_dependencies.py.


def test_log_can_be_followed_while_running(testbed, tmp_path):
    server, client, experiment, queue = testbed
    job = submit(client, tmp_path, experiment, queue, "sleep", entry_point_kwargs="-P seconds=3")
    wait_status(client, job["jobId"], {"started"})
    deadline = time.monotonic() + 30
    page = client.get_job_log(job["jobId"])
    while "sleeping" not in page["log"] and time.monotonic() < deadline:
        time.sleep(0.2)
        page = client.get_job_log(job["jobId"])
    assert "sleeping" in page["log"]
    assert client.get_job_by_id(job["jobId"])["status"] == "started"
    tail = client.get_job_log(job["jobId"], offset=page["nextOffset"])
    assert tail["offset"] == page["nextOffset"]
    assert "sleeping" not in tail["log"]
    followed = "".join(client.follow_job_log(job["jobId"]))
    assert "job finished" in followed


def test_killed_worker_fails_its_job(start_server, tmp_path):
    server = start_server(workers=1, env={"DIOPTRA_HEARTBEAT_TIMEOUT": "4"})
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("kill"))["name"]
    queue = client.register_queue(unique("cpu"))["name"]
    job = submit(client, tmp_path, experiment, queue, "sleep", entry_point_kwargs="-P seconds=300")
    wait_status(client, job["jobId"], {"started"})
    victims = worker_pids(server.url)
    assert victims
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    ended = client.wait_for_job(job["jobId"], timeout_s=60)
    assert ended["status"] == "failed"
    assert "stopped sending heartbeats" in client.get_job_log(job["jobId"])["log"]
    # The supervisor restarts the worker: the next job runs.
    after = submit(client, tmp_path, experiment, queue)
    assert client.wait_for_job(after["jobId"], timeout_s=120)["status"] == "finished"


def test_server_restart_recovers(start_server, tmp_path):
    server = start_server(workers=1)
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("restart"))["name"]
    queue = client.register_queue(unique("cpu"))["name"]
    running = submit(client, tmp_path, experiment, queue, "sleep",
                     entry_point_kwargs="-P seconds=300")
    wait_status(client, running["jobId"], {"started"})
    waiting = submit(client, tmp_path, experiment, queue)
    assert client.get_job_by_id(waiting["jobId"])["status"] == "queued"
    # A stop stops the workers while the API still serves: the running job is reported
    # failed by its worker before the server is gone, and the queued one waits.
    assert server.stop() == 0
    with sqlite3.connect(server.data_dir / "dioptra.db") as db:
        statuses = dict(db.execute("SELECT job_id, status FROM jobs"))
    assert statuses[running["jobId"]] == "failed"
    assert statuses[waiting["jobId"]] == "queued"
    server.start()
    client = DioptraClient(server.url)
    log = client.get_job_log(running["jobId"])["log"]
    assert "the worker was stopped" in log and "server restarted" not in log, log
    assert client.wait_for_job(waiting["jobId"], timeout_s=120)["status"] == "finished"
    # A server killed outright cannot: the next start fails what it left running.
    running = submit(client, tmp_path, experiment, queue, "sleep",
                     entry_point_kwargs="-P seconds=300")
    wait_status(client, running["jobId"], {"started"})
    server.stop(signal.SIGKILL)
    server.start()
    client = DioptraClient(server.url)
    lost = client.wait_for_job(running["jobId"], timeout_s=60)
    assert lost["status"] == "failed"
    assert "server restarted" in client.get_job_log(running["jobId"])["log"]
