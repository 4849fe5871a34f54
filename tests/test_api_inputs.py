"""Bad input is a 4xx naming the field, never a 500, on SQLite and PostgreSQL; what a job
printed is kept even when no database could store it as sent; a 500 tells nothing but an
error id; and a schema fuzzing run finds no 5xx and no answer the OpenAPI document denies.

One server per database for the whole module (the cases only add rows with fresh names).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from testbed import ServerProcess, free_port, postgres_database, running, unique
from workflows import echo_workflow, plugin_archive

TESTS_DIR = Path(__file__).parent
FUZZ_SECONDS = 15  # per database; the whole run is bounded by it
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request, tmp_path_factory, mlflow_uri):
    args = ["--mlflow-tracking-uri", mlflow_uri, "--workers", "0"]
    data_dir = tmp_path_factory.mktemp(f"inputs-{request.param}") / "data"
    if request.param == "postgres":
        with postgres_database() as uri:
            server = ServerProcess(data_dir, free_port(), [*args, "--database-uri", uri])
            server.database_uri = uri
            with running(server):
                yield server
    else:
        server = ServerProcess(data_dir, free_port(), args)
        server.database_uri = None
        with running(server):
            yield server


@pytest.fixture(scope="module")
def queued_job(served, tmp_path_factory) -> str:
    """A job nobody claimed yet (the server has no workers)."""
    experiment, queue = unique("inputs"), unique("inputs")
    api = f"{served.url}/api/v0"
    assert requests.post(f"{api}/experiment/", json={"name": experiment}).status_code == 200
    assert requests.post(f"{api}/queue/", json={"name": queue}).status_code == 200
    archive = echo_workflow(tmp_path_factory.mktemp("wf"))
    with archive.open("rb") as fh:
        answer = requests.post(f"{api}/job/", files={"workflow": fh}, data={
            "experimentName": experiment, "queue": queue, "entryPoint": "main"})
    assert answer.status_code == 200, answer.text
    return answer.json()["jobId"]


def raw(server: ServerProcess, method: str, path: str) -> tuple[int, dict]:
    """A request whose path is sent exactly as written ('..' and '.' included)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        conn.close()


def bad_request(answer: requests.Response, field: str) -> str:
    assert answer.status_code == 400, (answer.status_code, answer.text)
    message = answer.json()["message"]
    assert field in message, message
    return message


def test_integers_beyond_64_bits_are_400_naming_the_field(served, queued_job):
    api = f"{served.url}/api/v0"
    big = 2**63
    for path, field in ((f"experiment/{big}", "experimentId"), (f"queue/{big}", "queueId"),
                        (f"experiment/{10**40}", "experimentId")):
        bad_request(requests.get(f"{api}/{path}"), field)
    bad_request(requests.put(f"{api}/queue/{big}/lock"), "queueId")
    bad_request(requests.put(f"{api}/queue/{big}", json={"name": "x"}), "queueId")
    bad_request(requests.delete(f"{api}/experiment/{big}"), "experimentId")
    for query, field in ((f"experimentId={big}", "experimentId"), (f"offset={big}", "offset"),
                         (f"limit={big}", "limit")):
        bad_request(requests.get(f"{api}/job/?{query}"), field)
    bad_request(requests.get(f"{api}/job/{uuid.uuid4()}/log?offset={big}"), "offset")
    # The interface's own lists too (schemathesis found the overview's offset a 500).
    for path, field in ((f"overview/jobs?offset={big}", "offset"),
                        (f"overview/jobs?offset={10**40}&limit=953", "offset"),
                        (f"overview/jobs?experimentId={big}", "experimentId"),
                        (f"pipeline/?experimentId={big}", "experimentId"),
                        (f"report/?experimentId={big}", "experimentId")):
        bad_request(requests.get(f"{api}/{path}"), field)
    page = requests.get(f"{api}/overview/jobs?offset={big - 1}")
    assert page.status_code == 200 and page.json()["jobs"] == [], page.text
    # The largest storable id is just not found; the largest offset reads nothing.
    assert requests.get(f"{api}/experiment/{big - 1}").status_code == 404
    far = requests.get(f"{api}/job/{queued_job}/log?offset={big - 1}")
    assert far.status_code == 200, far.text
    assert far.json()["log"] == "" and far.json()["nextOffset"] == big - 1


def test_plugin_names_that_no_package_can_have_are_400(served, tmp_path):
    api = f"{served.url}/api/v0"
    kept = unique("kept").replace("-", "_")
    with plugin_archive(tmp_path, kept).open("rb") as fh:
        uploaded = requests.post(f"{api}/taskPlugin/", files={"taskPluginFile": fh},
                                 data={"taskPluginName": kept, "collection": "dioptra_custom"})
    assert uploaded.status_code == 200, uploaded.text
    for name in (".", "..", "%2e%2e", "%2E", "a%00b", "a" * 300, "1abc", "a-b"):
        for method, prefix in (("GET", "/api/v0/taskPlugin/dioptra_custom/"),
                               ("DELETE", "/api/v0/taskPlugin/dioptra_custom/"),
                               ("GET", "/api/v0/worker/plugins/")):
            status, body = raw(served, method, prefix + name)
            assert status == 400, (method, prefix + name, status, body)
            assert "task plugin name" in body["message"] or "taskPluginName" in body["message"] \
                or "'name'" in body["message"], body
    # Nothing was deleted on the way: the package is whole.
    assert requests.get(f"{api}/taskPlugin/dioptra_custom/{kept}").status_code == 200
    assert requests.get(f"{api}/worker/plugins/{kept}").status_code == 200


def test_text_no_database_can_store_is_400_naming_the_field(served, queued_job):
    api = f"{served.url}/api/v0"
    for kind in ("queue", "experiment"):
        answer = requests.post(f"{api}/{kind}/", data='{"name": "a\\ud800b"}',
                               headers={"Content-Type": "application/json"})
        assert "lone surrogate" in bad_request(answer, "name")
        bad_request(requests.get(f"{api}/{kind}/name/a%00b"), f"{kind}Name")
    bad_request(requests.get(f"{api}/job/a%00b"), "jobId")
    bad_request(requests.get(f"{api}/job/?queue=a%00b"), "queue")
    bad_request(requests.get(f"{api}/worker/jobs/{queued_job}%00/workflow"), "jobId")

    worker = f"{api}/worker"
    bad_request(requests.post(f"{worker}/heartbeat", json={"workerId": "w", "hostname": "h\0"}),
                "hostname")
    bad_request(requests.post(f"{worker}/heartbeat", json={"workerId": "w" * 256}), "workerId")
    bad_request(requests.post(f"{worker}/heartbeat", json={"workerId": "w", "queues": ["a\0"]}),
                "queues")
    for wait in ("NaN", "Infinity", "-Infinity", "-1"):
        answer = requests.post(f"{worker}/claim", data=f'{{"workerId": "w", "wait": {wait}}}',
                               headers={"Content-Type": "application/json"}, timeout=60)
        bad_request(answer, "wait")


def test_nul_in_a_submission_is_400(served, tmp_path):
    api = f"{served.url}/api/v0"
    experiment, queue = unique("nul"), unique("nul")
    requests.post(f"{api}/experiment/", json={"name": experiment})
    requests.post(f"{api}/queue/", json={"name": queue})
    fields = {"experimentName": experiment, "queue": queue, "entryPoint": "main"}
    for field, value in (("entryPointKwargs", "-P word=a\0b"), ("entryPoint", "ma\0in")):
        with echo_workflow(tmp_path).open("rb") as fh:
            answer = requests.post(f"{api}/job/", files={"workflow": fh},
                                   data={**fields, field: value})
        bad_request(answer, field)


def test_nul_in_a_jobs_output_and_reason_is_kept_replaced(served, queued_job):
    worker = f"{served.url}/api/v0/worker"
    worker_id = unique("w")
    claimed = requests.post(f"{worker}/claim", json={"workerId": worker_id, "jobId": queued_job})
    assert claimed.status_code == 200, claimed.text
    appended = requests.post(f"{worker}/jobs/{queued_job}/log",
                             data="before\0after \xe9\n".encode(),
                             headers={"X-Dioptra-Worker-Id": worker_id,
                                      "Content-Type": "text/plain; charset=utf-8"})
    assert appended.status_code == 200, appended.text
    too_long = requests.post(f"{worker}/jobs/{queued_job}/report",
                             json={"workerId": worker_id, "mlflowRunId": "r" * 37})
    bad_request(too_long, "mlflowRunId")
    failed = requests.post(f"{worker}/jobs/{queued_job}/report", json={
        "workerId": worker_id, "status": "failed", "reason": "bad\0reason \ud800"})
    assert failed.status_code == 200, failed.text
    log = requests.get(f"{served.url}/api/v0/job/{queued_job}/log").json()
    assert "before\ufffdafter \xe9\n" in log["log"]
    assert "job failed: bad\ufffdreason \ufffd" in log["log"]
    assert log["status"] == "failed"


def test_parallel_registrations_of_one_name_give_one_200(served):
    def register(kind: str, name: str) -> int:
        return requests.post(f"{served.url}/api/v0/{kind}/", json={"name": name},
                             timeout=120).status_code

    with ThreadPoolExecutor(50) as pool:
        for kind, rounds in (("queue", 3), ("experiment", 1)):
            for _ in range(rounds):
                name = unique(f"race-{kind}")
                codes = Counter(pool.map(register, [kind] * 50, [name] * 50))
                assert codes == {200: 1, 400: 49}, (kind, codes)


def test_a_500_shows_an_error_id_and_the_log_has_the_detail(served):
    """Provoke a real database error: the jobs table goes away for one request."""
    rename = "ALTER TABLE {} RENAME TO {}"
    if served.database_uri:
        import psycopg

        def execute(sql: str) -> None:
            with psycopg.connect(served.database_uri, autocommit=True) as conn:
                conn.execute(sql)
    else:
        def execute(sql: str) -> None:
            with sqlite3.connect(served.data_dir / "dioptra.db") as conn:
                conn.execute(sql)
    execute(rename.format("jobs", "jobs_away"))
    try:
        answer = requests.get(f"{served.url}/api/v0/job/")
    finally:
        execute(rename.format("jobs_away", "jobs"))
    assert answer.status_code == 500
    message = answer.json()["message"]
    assert message.startswith("Internal server error (error id ")
    error_id = message.removeprefix("Internal server error (error id ").removesuffix(")")
    assert len(error_id) >= 8 and error_id.isalnum()
    for secret in ("SELECT", "jobs", str(served.data_dir), "Error:"):
        assert secret not in answer.text
    logged = [line for line in served.log().splitlines() if error_id in line]
    assert logged, "the error id is not in the server's log"
    detail = served.log().split(error_id, 1)[1][:20000]
    assert "jobs" in detail and "SELECT" in detail  # the statement and the cause, logged
    assert requests.get(f"{served.url}/api/v0/job/").status_code == 200


def test_schema_fuzzing_finds_no_5xx_and_no_answer_the_document_denies(served, tmp_path):
    """Every operation, fuzzed from /openapi.json with a fixed seed, bounded in time.

    Not checked: schemathesis' "positive data acceptance" (a schema-valid request must be
    accepted). The v0 contract answers 400 for rules no schema expresses: a name already
    taken, an archive without an MLproject, text a database cannot store.
    """
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR),
                                                        os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{served.url}/openapi.json",
           "--seed", "20261202", "--workers", "1", "--max-time", str(FUZZ_SECONDS),
           "--checks", "all", "--exclude-checks", "positive_data_acceptance",
           "--request-timeout", "30", "--suppress-health-check", "all"]
    spec = requests.get(f"{served.url}/openapi.json").json()
    operations = sum(method in HTTP_METHODS for item in spec["paths"].values() for method in item)
    errors_before = served.log().count("error id")
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=FUZZ_SECONDS + 240)
    report = result.stdout[-15000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert re.search(rf"Tested:\s+{operations}\b", result.stdout), report
    assert served.log().count("error id") == errors_before, "a request answered 500"


def test_text_filters_no_database_stores_are_answered_not_500(served):
    api = f"{served.url}/api/v0"
    for bad in ("%00", "a%00b", "%ED%A0%80", "%C3%BD7%C2%AB%F1%92%95%B1%0C"):
        for path in (f"overview/jobs?queue={bad}", f"overview/jobs?text={bad}",
                     f"overview/jobs?entryPoint={bad}", f"overview/jobs?jobId={bad}",
                     f"overview/jobs?dependsOn={bad}", f"overview/jobs?status={bad}",
                     f"report/?entryPoint={bad}", f"job/?status={bad}"):
            answer = requests.get(f"{api}/{path}")
            assert answer.status_code < 500, (path, answer.status_code, answer.text)
