"""Pipelines on a real server with real workers: a grid, fan-out and fan-in with
references resolved by the server, a failing member, cancel, validation, the report.

The jobs are small scripts that import MLflow only (no torch): the whole file is a few
dozen job runs on two workers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import mlflow
import pytest
import requests
import yaml
from testbed import ServerProcess, free_port, unique
from workflows import write_tar

from dioptra.client import DioptraClient

MLPROJECT = """\
name: grid
entry_points:
  main:
    parameters:
      x: float
      word: {type: string, default: w}
      parent: {type: string, default: none}
    command: "python step.py --x {x} --word {word} --parent {parent}"
  collect:
    parameters:
      runs: string
    command: "python step.py --x 0 --word collect --parent {runs}"
  sleep:
    parameters:
      seconds: {type: float, default: 120}
    command: "python -c 'import time; print(\\"sleeping\\", flush=True); time.sleep({seconds})'"
"""

STEP = """\
import argparse, sys
import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--word")
parser.add_argument("--parent")
args = parser.parse_args()
print(f"x={args.x} word={args.word} parent={args.parent}", flush=True)
if args.x == 3:
    sys.exit("x=3 is the failing member")
with mlflow.start_run():
    mlflow.log_metric("x_squared", args.x ** 2)
    mlflow.log_metric("score", args.x * 10 + len(args.word))
    mlflow.log_metric("parents", 0 if args.parent == "none" else len(args.parent.split(",")))
"""


@pytest.fixture(scope="module")
def testbed(request, tmp_path_factory, mlflow_uri):
    """One server with two workers for the whole file (the jobs are the cost)."""
    data = tmp_path_factory.mktemp("pipelines")
    server = ServerProcess(data / "data", free_port(),
                           ["--mlflow-tracking-uri", mlflow_uri, "--workers", "2"])
    server.start()
    request.addfinalizer(server.stop)
    client = DioptraClient(server.url)
    experiment, queue = unique("pipelines"), unique("q")
    client.register_experiment(experiment)
    client.register_queue(queue)
    archive = write_tar(data / "grid.tar.gz", {"MLproject": MLPROJECT, "step.py": STEP})
    return server, client, experiment, queue, archive


def definition(experiment: str, queue: str, name: str, stages: dict) -> dict:
    return {"name": name, "experiment": experiment, "queue": queue, "timeout": "5m",
            "stages": stages}


def by_stage(state: dict, stage: str) -> list[dict]:
    return [j for j in state["jobs"] if j["stage"] == stage]


def test_grid_fan_out_fan_in_references_and_report(testbed, mlflow_uri, tmp_path):
    server, client, experiment, queue, archive = testbed
    submitted = client.submit_pipeline(definition(experiment, queue, "grid", {
        "first": {"entryPoint": "main", "grid": {"x": [1, 2]}},
        "square": {"entryPoint": "main", "after": "first",
                   "params": {"x": "${first.params.x}", "parent": "${first.runId}"},
                   "grid": {"word": ["a", "bb", "ccc"]}},
        "collect": {"entryPoint": "collect", "afterAll": "square",
                    "params": {"runs": "${square.runIds}"}},
    }), archive)
    assert submitted["status"] == "started", submitted
    assert [(s["name"], s["total"]) for s in submitted["stages"]] == [
        ("first", 2), ("square", 6), ("collect", 1)]
    # every job is an ordinary job, there from the start: the later ones wait
    listed = {j["jobId"]: j for j in client.find_jobs(experiment_id=submitted["experimentId"])}
    for job in submitted["jobs"]:
        if job["parents"]:
            assert listed[job["jobId"]]["status"] == "deferred"
        else:
            assert listed[job["jobId"]]["status"] in ("queued", "started", "finished")
    waiting = listed[by_stage(submitted, "square")[0]["jobId"]]
    assert "${first.runId}" in waiting["entryPointKwargs"]

    final = client.wait_for_pipeline(submitted["pipelineId"], timeout_s=300)
    assert final["status"] == "finished", final
    assert all(s["counts"] == {"finished": s["total"]} for s in final["stages"])

    runs = mlflow.MlflowClient(mlflow_uri)
    first = {j["jobId"]: j for j in by_stage(final, "first")}
    square = by_stage(final, "square")
    for job in square:
        (parent_id,) = job["parents"]
        parent = first[parent_id]
        run = runs.get_run(job["mlflowRunId"])
        # references resolved by the server: the parent's run id and its parameter x
        assert run.data.params["parent"] == parent["mlflowRunId"]
        assert float(run.data.params["x"]) == float(parent["varying"]["x"])
        assert run.data.metrics["x_squared"] == float(parent["varying"]["x"]) ** 2
        # nested under the pipeline's run, tagged with pipeline and stage
        assert run.data.tags["mlflow.parentRunId"] == final["mlflowRunId"]
        assert run.data.tags["dioptra.stage"] == "square"
        assert run.data.tags["dioptra.pipelineId"] == final["pipelineId"]
    (collect,) = by_stage(final, "collect")
    collected = runs.get_run(collect["mlflowRunId"])
    assert collected.data.params["runs"].split(",") == [j["mlflowRunId"] for j in square]
    assert collected.data.metrics["parents"] == 6

    # the report's table is the runs' MLflow metrics, with the grid values as columns
    report = client.get_pipeline_report(final["pipelineId"])
    assert report["columns"]["params"] == ["x", "word"]
    rows = {r["jobId"]: r for r in report["rows"]}
    assert len(rows) == 9
    for job in final["jobs"]:
        assert rows[job["jobId"]]["metrics"] == runs.get_run(job["mlflowRunId"]).data.metrics
    assert rows[square[0]["jobId"]]["params"] == {"x": "1", "word": "a"}
    assert rows[collect["jobId"]]["params"] == {}
    charts = {c["title"]: c for c in report["charts"]}
    line = charts["x_squared vs x (square)"]
    assert line["kind"] == "line" and set(line["series"]) == {"a", "bb", "ccc"}
    assert line["series"]["a"] == [["1", 1.0], ["2", 4.0]]
    # a report over any jobs: this experiment's `main` jobs, the parameters that vary
    by_entry_point = client.get_jobs_report(final["experimentId"], entry_point="main")
    assert {r["jobId"] for r in by_entry_point["rows"]} == {
        j["jobId"] for j in final["jobs"] if j["stage"] != "collect"}
    assert {"x", "word", "parent"} <= set(by_entry_point["columns"]["params"])
    for r in by_entry_point["rows"]:
        assert r["metrics"] == rows[r["jobId"]]["metrics"]
    unbounded = requests.get(f"{server.url}/api/v0/report/")
    assert unbounded.status_code == 400 and "experimentId" in unbounded.json()["message"]
    csv_text = client.get_pipeline_report(final["pipelineId"], "csv")
    assert csv_text.splitlines()[0].startswith("stage,entryPoint,status,jobId,runId,x,word")
    assert len(csv_text.splitlines()) == 10

    # the HTML report is an artifact of the pipeline's run once it ended, and opens offline
    deadline = time.monotonic() + 60
    while not client.get_pipeline(final["pipelineId"])["reportLogged"]:
        assert time.monotonic() < deadline, "the report was not logged to MLflow"
        time.sleep(0.5)
    parent_run = runs.get_run(final["mlflowRunId"])
    assert parent_run.info.status == "FINISHED"
    artifacts = {a.path for a in runs.list_artifacts(final["mlflowRunId"])}
    assert {"report.html", "report.json", "report.csv", "pipeline.yaml"} <= artifacts
    page = tmp_path / "report.html"
    page.write_text(client.get_pipeline_report(final["pipelineId"], "html"))
    # nothing to fetch: no external script, style, image or font
    assert not re.search(r"(src|href|url)\s*[=(]\s*[\"']?\s*https?:", page.read_text())
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert dom.count("<svg") == len(report["charts"]) >= 2
    assert "x_squared vs x (square)" in dom and "<table>" in dom


def test_failed_member_fails_its_dependents_and_siblings_go_on(testbed):
    server, client, experiment, queue, archive = testbed
    submitted = client.submit_pipeline(definition(experiment, queue, "failing", {
        "first": {"entryPoint": "main", "grid": {"x": [1, 3]}},
        "second": {"entryPoint": "main", "after": "first",
                   "params": {"x": "${first.params.x}"}, "grid": {"word": ["a", "b"]}},
        "last": {"entryPoint": "collect", "afterAll": "second",
                 "params": {"runs": "${second.runIds}"}},
    }), archive)
    final = client.wait_for_pipeline(submitted["pipelineId"], timeout_s=300)
    assert final["status"] == "failed" and final["reason"] == "4 job(s) failed", final
    first = {j["varying"]["x"]: j for j in by_stage(final, "first")}
    assert first["1"]["status"] == "finished" and first["3"]["status"] == "failed"
    for job in by_stage(final, "second"):
        expected = "finished" if job["parents"] == [first["1"]["jobId"]] else "failed"
        assert job["status"] == expected, final
        if expected == "failed":
            log = client.get_job_log(job["jobId"])["log"]
            assert f"dependency {first['3']['jobId']} (stage 'first') failed" in log
            assert job["mlflowRunId"] is None  # it never ran
    (last,) = by_stage(final, "last")
    assert last["status"] == "failed"


def test_cancel_stops_running_and_waiting_jobs(testbed):
    server, client, experiment, queue, archive = testbed
    submitted = client.submit_pipeline(definition(experiment, queue, "cancelled", {
        "nap": {"entryPoint": "sleep"},
        "after_nap": {"entryPoint": "main", "after": "nap", "params": {"x": 1}},
    }), archive)
    (nap,) = by_stage(submitted, "nap")
    deadline = time.monotonic() + 90
    while client.get_job_by_id(nap["jobId"])["status"] != "started":
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.3)
    client.cancel_pipeline(submitted["pipelineId"])
    final = client.wait_for_pipeline(submitted["pipelineId"], timeout_s=60)
    assert final["status"] == "failed" and final["reason"] == "cancelled"
    assert [j["status"] for j in final["jobs"]] == ["failed", "failed"]
    assert "cancel" in client.get_job_log(nap["jobId"])["log"]
    again = requests.post(f"{server.url}/api/v0/pipeline/{submitted['pipelineId']}/cancel")
    assert again.status_code == 400 and "already ended" in again.json()["message"]


def test_every_problem_in_one_400(testbed, tmp_path):
    server, client, experiment, queue, archive = testbed
    answer = client.submit_pipeline({
        "name": "bad", "experiment": unique("nope"), "queue": unique("nope"),
        "stages": {
            "a": {"entryPoint": ["main", "missing"], "grid": {"x": [1, "one"]}},
            "b": {"entryPoint": "main", "after": "zz", "params": {"x": "${a.runId}"}},
            "c": {"entryPoint": "collect", "after": "c"},
        }}, archive)
    problems = answer["problems"]
    text = "\n".join(problems)
    assert answer["message"].startswith("Bad Request - The pipeline is not valid")
    for expected in ("entry point 'missing' is not in MLproject",
                     "parameter 'x' of entry point 'main' must be a float, got 'one'",
                     "stage 'b' comes after 'zz', which is not a stage",
                     "stage 'c' comes after itself"):
        assert expected in text, text
    # the definition's structure is sound: then the experiment and queue are checked too
    answer = client.submit_pipeline(definition(unique("nope"), unique("nope"), "x", {
        "a": {"entryPoint": "main", "grid": {"x": [1, "one"]}}}), archive)
    assert any("is not registered" in p for p in answer["problems"]), answer
    assert sum("is not registered" in p for p in answer["problems"]) == 2
    assert any("must be a float" in p for p in answer["problems"]), answer
    bad = requests.post(f"{server.url}/api/v0/pipeline/", data={"definition": "name: x"},
                        files={"workflow": ("w.tar.gz", b"not an archive")})
    assert bad.status_code == 400 and "archive was rejected" in bad.json()["message"]
    missing = requests.get(f"{server.url}/api/v0/pipeline/not-a-uuid")
    assert missing.status_code == 404


def dioptra(server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DIOPTRA_RESTAPI_URI": server.url}
    return subprocess.run([sys.executable, "-m", "dioptra.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_the_command_line(testbed, tmp_path):
    server, client, experiment, queue, archive = testbed
    file = tmp_path / "pipeline.yaml"
    file.write_text(yaml.safe_dump(definition(experiment, queue, "cli", {
        "one": {"entryPoint": "main", "params": {"x": 2}}})))
    ran = dioptra(server, "pipeline", "run", str(file), "--workflow", str(archive),
                  "--html", str(tmp_path / "r.html"))
    assert ran.returncode == 0, ran.stderr
    assert "one" in ran.stderr and "1/1" in ran.stderr  # the stage's progress bar
    assert "x_squared" in ran.stdout and "pipeline finished" in ran.stdout
    assert "/report.html" in ran.stdout and "<table>" in (tmp_path / "r.html").read_text()

    file.write_text(yaml.safe_dump(definition(experiment, queue, "cli-fails", {
        "one": {"entryPoint": "main", "params": {"x": 3}}})))
    failed = dioptra(server, "pipeline", "run", str(file), "--workflow", str(archive),
                     "--json")
    assert failed.returncode == 1
    outcome = json.loads(failed.stdout)
    assert outcome["pipeline"]["status"] == "failed"
    (job_id,) = [r["jobId"] for r in outcome["report"]["rows"]]
    log = dioptra(server, "job", "log", job_id, "-f")
    assert log.returncode == 1 and "x=3 is the failing member" in log.stdout

    file.write_text("name: broken\nexperiment: e\nstages: {a: {entryPoint: nope}}\n")
    invalid = dioptra(server, "pipeline", "run", str(file), "--workflow", str(archive))
    assert invalid.returncode == 1
    assert "entry point 'nope' is not in MLproject" in invalid.stderr
    assert "no 'queue'" in invalid.stderr

    assert dioptra(server, "queue", "lock", queue).returncode == 0
    refused = dioptra(server, "job", "submit", str(archive), "--experiment", experiment,
                      "--entry-point", "main", "--queue", queue, "-P", "x=2")
    assert refused.returncode == 1 and "locked" in refused.stderr
    assert dioptra(server, "queue", "unlock", queue).returncode == 0
    submitted = dioptra(server, "job", "submit", str(archive), "--experiment", experiment,
                        "--entry-point", "main", "--queue", queue, "-P", "x=2",
                        "-P", "word=two words")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    followed = dioptra(server, "job", "log", job_id, "--follow")
    assert followed.returncode == 0 and "word=two words" in followed.stdout
    listed = json.loads(dioptra(server, "job", "list", "--json", "--queue", queue).stdout)
    assert job_id in {j["jobId"] for j in listed}
    assert dioptra(server, "job", "list", "--status", "finished").stdout.count(job_id) == 1
    plugins = dioptra(server, "plugin", "list")
    assert plugins.returncode == 0 and "dioptra_builtins" in plugins.stdout
