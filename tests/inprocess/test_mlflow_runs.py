"""A job failed by the server for its worker (reaped, or lost in a restart) ends its
MLflow run FAILED too, as the worker would have: it must not stay RUNNING forever.
Against the session's real MLflow server (the only test here that needs one)."""

import pytest


@pytest.fixture
def tracking_uri(mlflow_uri):
    return mlflow_uri


def started_with_run(bed, worker, mlflow):
    job_id = bed.submit()["jobId"]
    run = mlflow.create_run(mlflow.create_experiment(f"reaped-{job_id}"))
    assert bed.claim(worker, job_id)["mlflowTrackingUri"] == bed.ctx.tracking.tracking_uri
    bed.report(job_id, worker=worker, mlflowRunId=run.info.run_id, status="started")
    return job_id, run.info.run_id


def test_reaped_and_recovered_jobs_fail_their_runs(bed):
    from mlflow import MlflowClient

    from dioptra.services import reaper

    mlflow = MlflowClient(bed.ctx.tracking.tracking_uri)
    silent, silent_run = started_with_run(bed, "remote", mlflow)
    lost, lost_run = started_with_run(bed, "embedded:old:0", mlflow)
    ended, ended_run = started_with_run(bed, "remote", mlflow)
    mlflow.set_terminated(ended_run, "KILLED")  # its entry point ended it itself
    for job_id in (silent, ended):
        bed.set_columns(job_id, heartbeat_on=bed.ago(60))

    assert sorted(reaper.reap(bed.ctx)) == sorted([silent, ended])
    reaper.recover(bed.ctx, "embedded:")
    assert bed.status(lost) == "failed"
    assert mlflow.get_run(silent_run).info.status == "FAILED"
    assert mlflow.get_run(lost_run).info.status == "FAILED"
    assert mlflow.get_run(ended_run).info.status == "KILLED"
