"""The server answers before its embedded MLflow has started: what needs MLflow waits
for it (bounded), so nothing submitted meanwhile fails; after the bound, a clear 503."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import requests
from testbed import unique
from workflows import echo_workflow

from dioptra.client import DioptraClient
from dioptra.restapi.mlflow_proxy import MLflowProxyMiddleware
from dioptra.services import tracking
from dioptra.services.errors import ServiceUnavailable
from dioptra.services.tracking import Readiness, Tracking


def test_job_and_experiment_right_after_health_while_mlflow_starts(start_server, tmp_path):
    server = start_server(workers=1, own_mlflow=True)
    # Whether MLflow is still starting here depends on the machine's speed: the test
    # holds either way, and is meant for the usual case where it is.
    state = requests.get(f"{server.url}/health", timeout=10)
    assert state.json() == "healthy"
    assert state.headers["X-MLflow-State"] in ("starting", "ready")
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("early"))
    assert isinstance(experiment.get("experimentId"), int), experiment
    queue = client.register_queue(unique("early"))
    job = client.submit_job(echo_workflow(tmp_path), experiment["name"], "main",
                            queue=queue["name"], entry_point_kwargs="-P x=2")
    assert "jobId" in job, job
    done = client.wait_for_job(job["jobId"], timeout_s=180)
    assert done["status"] == "finished", client.get_job_log(job["jobId"])["log"]
    assert requests.get(f"{server.url}/health", timeout=10).headers["X-MLflow-State"] == "ready"
    # The run is in the embedded MLflow, read through the /mlflow proxy.
    run = requests.get(f"{server.url}/mlflow/api/2.0/mlflow/runs/get",
                       params={"run_id": done["mlflowRunId"]}, timeout=30)
    assert run.status_code == 200, run.text
    assert run.json()["run"]["info"]["experiment_id"] == str(experiment["experimentId"])


def test_tracking_gives_503_after_the_bound(monkeypatch) -> None:
    monkeypatch.setattr(tracking, "READY_WAIT_S", 0.2)
    starting = Tracking("http://127.0.0.1:9/mlflow", readiness=Readiness())
    with pytest.raises(ServiceUnavailable) as caught:
        starting.create_experiment("x")
    assert caught.value.status_code == 503 and "still starting" in caught.value.message
    failed = Readiness()
    failed.settle(failure="exit code 1")
    with pytest.raises(ServiceUnavailable) as caught:
        Tracking("http://127.0.0.1:9/mlflow", readiness=failed).fail_run("r")
    assert "failed to start: exit code 1" in caught.value.message


def test_proxy_gives_503_after_the_bound_and_passes_the_rest(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(tracking, "READY_WAIT_S", 0.2)

    async def api(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"api"})

    async def calls() -> tuple[httpx.Response, httpx.Response]:
        proxy = MLflowProxyMiddleware(api, str(tmp_path / "none.sock"), readiness=Readiness())
        transport = httpx.ASGITransport(app=proxy)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get("/mlflow/api/2.0/mlflow/experiments/search"),
                    await client.get("/api/v0/queue/"))

    mlflow, other = asyncio.run(calls())
    assert mlflow.status_code == 503
    assert "still starting" in mlflow.json()["message"]
    assert other.status_code == 200 and other.text == "api"  # the API does not wait
