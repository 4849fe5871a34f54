"""POST /api/v0/job/newTaskEngine: refusals name the problem; a valid description
becomes an ordinary queued job whose archive runs it."""

from __future__ import annotations

import io
import json
import tarfile

import yaml

from dioptra.contract.mlproject import load_project

DESC = {
    "parameters": {"seed": {"type": "integer"}},
    "tasks": {"init_rng": {"plugin": "dioptra_builtins.random.rng.init_rng",
                           "inputs": [{"name": "seed", "type": "integer", "required": False}],
                           "outputs": [{"seed": "integer"}, {"rng": "any"}]}},
    "graph": {"rng": {"init_rng": "$seed"}},
}
URL = "/api/v0/job/newTaskEngine"


def body(**changes):
    return {"queue": "cpu", "experimentName": "exp", "experimentDescription": DESC,
            **changes}


def test_valid_description_is_a_queued_job_with_its_archive(bed, tmp_path):
    answer = bed.api.post(URL, json=body(globalParameters={"seed": 3}, timeout="1h"))
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["status"] == "queued" and job["timeout"] == "1h"
    assert job["entryPoint"] == "task_engine" and bed.dispatcher.ready == [job["jobId"]]
    with tarfile.open(fileobj=io.BytesIO(bed.ctx.store.get_bytes(job["workflowUri"]))) as tar:
        tar.extractall(tmp_path / "wf", filter="data")
        names = set(tar.getnames())
    assert names == {"MLproject", "experiment.yml", "parameters.json"}
    assert yaml.safe_load((tmp_path / "wf" / "experiment.yml").read_text()) == DESC
    assert json.loads((tmp_path / "wf" / "parameters.json").read_text()) == {"seed": 3}
    command = load_project(tmp_path / "wf").command("task_engine", {}, tmp_path / "s")
    assert "dioptra.task_engine.job experiment.yml parameters.json" in command
    spec = bed.claim()
    assert spec["jobId"] == job["jobId"] and spec["entryPoint"] == "task_engine"


def test_invalid_description_is_refused_naming_every_error(bed):
    bad = dict(DESC, graph={"rng": {"init_rngg": "$seed"}, "x": {"init_rng": "$nope"}})
    answer = bed.api.post(URL, json=body(experimentDescription=bad))
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert message.startswith("Bad Request - The experiment description is invalid! Issues:")
    assert 'unrecognized task plugin: init_rngg' in message
    assert bed.dispatcher.ready == [] and bed.api.get("/api/v0/job/").json() == []


def test_type_definitions_v0_crashed_on_are_a_400(bed):
    answer = bed.api.post(URL, json=body(experimentDescription=dict(DESC, types={"string": None})))
    assert answer.status_code == 400
    assert "Redefinition of builtin types not allowed: string" in answer.json()["message"]


def test_missing_or_wrong_fields(bed):
    for missing in ("queue", "experimentName", "experimentDescription"):
        sent = body()
        del sent[missing]
        answer = bed.api.post(URL, json=sent)
        assert answer.status_code == 400 and missing in answer.json()["message"]
    answer = bed.api.post(URL, json=body(experimentDescription=[1]))
    assert answer.status_code == 400 and "experimentDescription" in answer.json()["message"]
    assert bed.api.post(URL, json=body(experimentName="nope")).status_code == 404
    assert bed.api.post(URL, json=body(timeout="soon")).status_code == 400
    answer = bed.api.post(URL, json=body(globalParameters={"seed": 3}, dependsOn="not-a-job"))
    assert answer.status_code in (400, 404)
