"""Job submission through the client: stored archive, v0 shape and every refusal."""

import re

import requests
from testbed import unique
from workflows import echo_workflow, write_tar, write_zip

from dioptra.storage import open_store

JOB_KEYS = ["jobId", "mlflowRunId", "experimentId", "queueId", "createdOn", "lastModified",
            "timeout", "workflowUri", "entryPoint", "entryPointKwargs", "dependsOn", "status"]


def setup(client):
    experiment = client.register_experiment(unique("exp"))
    queue = client.register_queue(unique("queue"))
    return experiment, queue


def test_submit_get_list(server, client, tmp_path):
    experiment, queue = setup(client)
    archive = echo_workflow(tmp_path)
    job = client.submit_job(archive, experiment["name"], "main", "-P x=2.5",
                            queue=queue["name"], timeout="1h")
    assert list(job) == JOB_KEYS
    assert job["status"] == "queued" and job["mlflowRunId"] is None
    assert job["experimentId"] == experiment["experimentId"]
    assert job["queueId"] == queue["queueId"]
    assert job["timeout"] == "1h" and job["entryPointKwargs"] == "-P x=2.5"
    assert re.fullmatch(r"s3://workflow/[0-9a-f]{32}/workflows\.tar\.gz", job["workflowUri"])
    store = open_store(str(server.data_dir / "objects"))
    assert store.get_bytes(job["workflowUri"]) == archive.read_bytes()
    assert client.get_job_by_id(job["jobId"]) == job
    assert job in client.list_jobs()

    child = client.submit_job(write_zip(tmp_path / "wf.zip", {
        "project/MLproject": "entry_points:\n  main:\n    command: echo hi\n"}),
        experiment["name"], "main", depends_on=job["jobId"], queue=queue["name"])
    assert child["status"] == "deferred" and child["dependsOn"] == job["jobId"]
    assert child["timeout"] == "24h"
    listed = [j["jobId"] for j in client.list_jobs()]
    assert listed.index(job["jobId"]) < listed.index(child["jobId"])
    assert [j["jobId"] for j in client.find_jobs(status="deferred")] == [child["jobId"]]
    assert [j["jobId"] for j in client.find_jobs(queue=queue["name"], limit=1)] == [
        job["jobId"]]
    assert "Not Found" in client.get_job_by_id("4eb2305e-57c3-4867-a59f-1a1ecd2033d4")[
        "message"]


def test_submission_refusals(server, client, tmp_path):
    experiment, queue = setup(client)
    archive = echo_workflow(tmp_path)
    plain = tmp_path / "plain.txt"
    plain.write_text("hello")

    def submit(**kw):
        args = dict(workflows_file=archive, experiment_name=experiment["name"],
                    entry_point="main", queue=queue["name"])
        args.update(kw)
        return client.submit_job(**args)

    assert submit(experiment_name="nope")["message"].startswith(
        "Not Found - The requested experiment does not exist")
    assert submit(queue="nope")["message"].startswith(
        "Not Found - The requested queue does not exist")
    client.lock_queue(queue["name"])
    assert submit() == {"message": "Forbidden - The requested queue is locked."}
    client.unlock_queue(queue["name"])

    refusals = {
        "timeout": submit(timeout="abc"),
        "zero timeout": submit(timeout="0s"),
        # Past a year: refused before it reaches a 32-bit column or a deadline past 9999.
        "huge timeout": submit(timeout="999999d"),
        "dependsOn format": submit(depends_on="not-a-uuid"),
        "entry point": submit(entry_point="trian"),
        "parameter type": submit(entry_point_kwargs="-P x=abc"),
        "required parameter": submit(entry_point="needs"),
        "kwargs syntax": submit(entry_point_kwargs="x=1"),
        "not an archive": submit(workflows_file=plain),
        "no MLproject": submit(workflows_file=write_tar(tmp_path / "e.tar", {"a.py": "x"},
                                                        mode="w")),
    }
    for case, response in refusals.items():
        assert response["message"].startswith("Bad Request - "), (case, response)
    assert "timeout" in refusals["timeout"]["message"]
    assert "'timeout'" in refusals["huge timeout"]["message"]
    assert "365d" in refusals["huge timeout"]["message"]
    assert "trian" in refusals["entry point"]["message"]
    assert "x" in refusals["parameter type"]["message"]
    assert "run_id" in refusals["required parameter"]["message"]
    missing_parent = submit(depends_on="4eb2305e-57c3-4867-a59f-1a1ecd2033d4")
    assert missing_parent["message"].startswith("Not Found - ")

    url = f"{server.url}/api/v0/job/"
    with archive.open("rb") as fh:
        no_fields = requests.post(url, files={"workflow": ("w.tar.gz", fh)})
    assert no_fields.status_code == 400
    for field in ("experimentName", "queue", "entryPoint"):
        assert field in no_fields.json()["message"]
    no_file = requests.post(url, data={"experimentName": experiment["name"],
                                       "queue": queue["name"], "entryPoint": "main"})
    assert no_file.status_code == 400 and "workflow" in no_file.json()["message"]
    # Nothing was created by the refused submissions, and no archive was kept.
    assert client.list_jobs() == []
    store = open_store(str(server.data_dir / "objects"))
    assert store.list_keys("s3://workflow") == []
