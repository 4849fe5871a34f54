"""Pipeline rules in-process: jobs made at submission, released by the server with the
references resolved when their parents finish, failed with a failed parent, cancel,
restart recovery. Workers are played through the worker API; MLflow is a local file
store (the pipeline's run is real)."""

from __future__ import annotations

import json

import mlflow
import pytest

from dioptra.db.models import Experiment, utcnow
from dioptra.services import pipelines

GRID = {
    "first": {"entryPoint": "main", "grid": {"x": [1, 2]}},
    "second": {"entryPoint": "needs", "after": "first",
               "params": {"run_id": "${first.runId}", "x": "${first.params.x}"},
               "grid": {"word": ["a", "b"]}},
    "last": {"entryPoint": "main", "afterAll": "second",
             "params": {"word": "${second.runIds}"}},
}


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    # A file store: no server, no database migrations; enough for a run and its tags.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return (tmp_path / "mlruns").as_uri()


@pytest.fixture
def pbed(bed, tracking_uri):
    experiment_id = int(mlflow.MlflowClient(tracking_uri).create_experiment("pexp"))
    with bed.ctx.db.session() as session:
        session.add(Experiment(experiment_id=experiment_id, name="pexp", created_on=utcnow(),
                               last_modified=utcnow()))
    return bed


def submit(bed, stages: dict) -> dict:
    definition = {"name": "p", "experiment": "pexp", "queue": "cpu", "stages": stages}
    with bed.archive.open("rb") as fh:
        answer = bed.api.post("/api/v0/pipeline/", data={"definition": json.dumps(definition)},
                              files={"workflow": ("wf.tar.gz", fh)})
    assert answer.status_code == 200, answer.text
    return answer.json()


def jobs_of(bed, state: dict, stage: str) -> list[dict]:
    return [j for j in bed.api.get(f"/api/v0/pipeline/{state['pipelineId']}").json()["jobs"]
            if j["stage"] == stage]


def finish(bed, job_id: str, run_id: str, status: str = "finished") -> None:
    spec = bed.claim("w1", job_id)
    assert spec["jobId"] == job_id
    bed.report(job_id, "w1", mlflowRunId=run_id, status="started")
    bed.report(job_id, "w1", status=status, **({"reason": "exit 3"} if status == "failed"
                                                 else {}))
    return spec


def test_released_with_references_resolved_and_nested_under_the_pipeline_run(pbed):
    state = submit(pbed, GRID)
    first = jobs_of(pbed, state, "first")
    assert pbed.dispatcher.ready == [j["jobId"] for j in first]  # only the first stage
    assert {pbed.status(j["jobId"]) for j in jobs_of(pbed, state, "second")} == {"deferred"}

    spec = finish(pbed, first[0]["jobId"], "run-x1")
    assert spec["mlflowTags"]["mlflow.parentRunId"] == state["mlflowRunId"]
    assert spec["mlflowTags"]["dioptra.stage"] == "first"
    released = [j for j in jobs_of(pbed, state, "second") if j["status"] == "queued"]
    assert len(released) == 2 and all(j["parents"] == [first[0]["jobId"]] for j in released)
    for job in released:
        kwargs = pbed.job(job["jobId"])["entryPointKwargs"]
        assert "-P run_id=run-x1" in kwargs and "-P x=1" in kwargs, kwargs
        assert "the jobs it comes after finished" in pbed.log(job["jobId"])
    assert pbed.dispatcher.ready[-2:] == [j["jobId"] for j in released]

    finish(pbed, first[1]["jobId"], "run-x2")
    for i, job in enumerate(jobs_of(pbed, state, "second")):
        finish(pbed, job["jobId"], f"run-s{i}")
        if i < 3:
            assert pbed.status(jobs_of(pbed, state, "last")[0]["jobId"]) == "deferred"
    (last,) = jobs_of(pbed, state, "last")
    assert pbed.job(last["jobId"])["entryPointKwargs"] == \
        "-P x=1.5 -P word=run-s0,run-s1,run-s2,run-s3"  # x: the MLproject's default
    finish(pbed, last["jobId"], "run-last")
    final = pbed.api.get(f"/api/v0/pipeline/{state['pipelineId']}").json()
    assert final["status"] == "finished" and final["reason"] is None
    assert [s["counts"] for s in final["stages"]] == [{"finished": 2}, {"finished": 4},
                                                      {"finished": 1}]


def test_a_failed_parent_fails_its_descendants_and_the_pipeline(pbed):
    state = submit(pbed, GRID)
    first = jobs_of(pbed, state, "first")
    finish(pbed, first[0]["jobId"], "run-x1", status="failed")
    second = jobs_of(pbed, state, "second")
    failed = [j for j in second if j["parents"] == [first[0]["jobId"]]]
    assert {j["status"] for j in failed} == {"failed"}
    assert f"dependency {first[0]['jobId']} (stage 'first') failed (exit 3)" in \
        pbed.log(failed[0]["jobId"])
    # the fan-in already knows it cannot run; the siblings go on
    assert jobs_of(pbed, state, "last")[0]["status"] == "failed"
    finish(pbed, first[1]["jobId"], "run-x2")
    for job in jobs_of(pbed, state, "second"):
        if job["status"] == "queued":
            finish(pbed, job["jobId"], "r")
    final = pbed.api.get(f"/api/v0/pipeline/{state['pipelineId']}").json()
    assert final["status"] == "failed" and final["reason"] == "4 job(s) failed"
    assert [s["counts"] for s in final["stages"]] == [
        {"failed": 1, "finished": 1}, {"failed": 2, "finished": 2}, {"failed": 1}]


def test_cancel_ends_every_open_job_and_only_once(pbed):
    state = submit(pbed, GRID)
    first = jobs_of(pbed, state, "first")
    pbed.claim("w1", first[0]["jobId"])
    pbed.report(first[0]["jobId"], "w1", status="started")
    answer = pbed.api.post(f"/api/v0/pipeline/{state['pipelineId']}/cancel").json()
    # the running job is asked to stop; everything else ended at once
    assert sorted(j["status"] for j in answer["jobs"]) == ["failed"] * 6 + ["started"]
    assert pbed.report(first[0]["jobId"], "w1", status="failed",
                       reason="cancelled").status_code == 200
    final = pbed.api.get(f"/api/v0/pipeline/{state['pipelineId']}").json()
    assert final["status"] == "failed" and final["reason"] == "cancelled"
    again = pbed.api.post(f"/api/v0/pipeline/{state['pipelineId']}/cancel")
    assert again.status_code == 400 and "already ended" in again.json()["message"]


def test_a_reference_that_cannot_be_resolved_fails_the_job(pbed):
    state = submit(pbed, GRID)
    first = jobs_of(pbed, state, "first")
    # finished by hand: no MLflow run id to hand on
    assert pbed.put(first[0]["jobId"], "finished").status_code == 200
    failed = [j for j in jobs_of(pbed, state, "second") if j["status"] == "failed"]
    assert len(failed) == 2
    assert "cannot release the job: ${first.runId}: job" in pbed.log(failed[0]["jobId"])


def test_restart_recovery_releases_what_the_hook_missed(pbed):
    state = submit(pbed, GRID)
    first = jobs_of(pbed, state, "first")
    # as if the server died between a parent's end and its settling
    pbed.set_columns(first[0]["jobId"], status="finished", mlflow_run_id="run-x1",
                     ended_on=utcnow())
    assert {j["status"] for j in jobs_of(pbed, state, "second")} == {"deferred"}
    pipelines.recover(pbed.ctx)
    assert sorted(j["status"] for j in jobs_of(pbed, state, "second")) == [
        "deferred", "deferred", "queued", "queued"]


def test_unknown_pipelines_are_404(pbed):
    assert pbed.api.get("/api/v0/pipeline/nope").status_code == 404
    assert pbed.api.get("/api/v0/pipeline/00000000-0000-0000-0000-000000000000"
                        ).status_code == 404


def test_text_no_database_stores_is_a_400_that_can_be_sent(pbed):
    # JSON may escape a lone surrogate (or a NUL): in a key, a name or a parameter, the
    # answer is a 400 that says so (it was a 500: the answer itself could not be encoded).
    for definition in (
        '{"name": "p\\ud800", "experiment": "pexp", "queue": "cpu", "stages": {}}',
        '{"\\ud9c8\\ude1d": 1, "name": "p", "experiment": "pexp", "stages": {}}',
        '{"name": "p", "experiment": "pexp", "queue": "cpu", "stages": {"s": '
        '{"entryPoint": "main", "params": {"x": "a\\u0000b"}}}}',
    ):
        with pbed.archive.open("rb") as fh:
            answer = pbed.api.post("/api/v0/pipeline/", data={"definition": definition},
                                   files={"workflow": ("wf.tar.gz", fh)})
        assert answer.status_code == 400, answer.text
        assert "lone surrogate" in answer.text or "NUL" in answer.text, answer.text
    assert pbed.api.get("/api/v0/pipeline/").json() == []  # nothing half-made


def test_an_error_quoting_what_was_sent_is_answered_whatever_it_holds(bed):
    from dioptra.services.errors import BadRequest

    def quotes() -> None:
        raise BadRequest("no such thing: 'x\ud800'")

    bed.api.app.add_api_route("/test-quotes", quotes)
    answer = bed.api.get("/test-quotes")
    assert answer.status_code == 400
    assert answer.json()["message"].endswith("no such thing: 'x\ufffd'")
