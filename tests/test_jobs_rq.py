"""Scale-out: Redis + RQ dispatch with PostgreSQL, two remote-style workers that talk to
the server over HTTP only."""

import re
import time

import pytest
from testbed import start_worker, unique
from workflows import echo_workflow

from dioptra.client import DioptraClient

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def scaled_out(start_server, postgres_uri, redis_url, tmp_path):
    server = start_server("--database-uri", postgres_uri, "--redis-url", redis_url,
                          workers=0)
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("rq"))["name"]
    queue = client.register_queue(unique("cpu"))["name"]
    workers = [
        start_worker(server.url, tmp_path / f"worker{i}.log", "--redis-url", redis_url,
                     "--queue", queue, "--worker-id", f"rq-worker-{i}",
                     env={"DIOPTRA_WARM_MODULES": "mlflow"})
        for i in range(2)
    ]
    deadline = time.monotonic() + 60
    while len(client.list_workers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert {w["workerId"] for w in client.list_workers()} == {"rq-worker-0", "rq-worker-1"}
    yield server, client, experiment, queue
    for worker in workers:
        worker.stop()


def test_jobs_run_on_two_rq_workers(scaled_out, tmp_path):
    server, client, experiment, queue = scaled_out
    archive = echo_workflow(tmp_path)
    jobs = [client.submit_job(archive, experiment, "sleep", "-P seconds=1", queue=queue)
            for _ in range(4)]
    seen_workers = set()
    for job in jobs:
        done = client.wait_for_job(job["jobId"], timeout_s=180)
        log = client.get_job_log(job["jobId"])["log"]
        assert done["status"] == "finished", log
        assert done["mlflowRunId"]
        seen_workers.update(re.findall(r"claimed by worker (\S+)", log))
    assert seen_workers == {"rq-worker-0", "rq-worker-1"}
    # A plain `python script.py` entry point is forked from the RQ worker's fork server
    # (the work horse supervises it); the others start a fresh interpreter.
    job = client.submit_job(archive, experiment, "main", "-P x=3", queue=queue)
    done = client.wait_for_job(job["jobId"], timeout_s=180)
    log = client.get_job_log(job["jobId"])["log"]
    assert done["status"] == "finished" and "(in a warm interpreter)" in log, log
    assert "(in a warm interpreter)" not in client.get_job_log(jobs[0]["jobId"])["log"]


def test_rq_dependencies_timeout_and_unserved_queue(scaled_out, tmp_path):
    server, client, experiment, queue = scaled_out
    archive = echo_workflow(tmp_path)
    parent = client.submit_job(archive, experiment, "fail", queue=queue)
    child = client.submit_job(archive, experiment, "main", queue=queue,
                              depends_on=parent["jobId"])
    assert client.wait_for_job(child["jobId"], timeout_s=120)["status"] == "failed"
    assert parent["jobId"] in client.get_job_log(child["jobId"])["log"]

    slow = client.submit_job(archive, experiment, "sleep", queue=queue, timeout="2s")
    assert client.wait_for_job(slow["jobId"], timeout_s=120)["status"] == "failed"
    assert "timed out" in client.get_job_log(slow["jobId"])["log"]

    lonely = client.register_queue(unique("unserved"))["name"]
    waiting = client.submit_job(archive, experiment, "main", queue=lonely)
    assert "no live worker is serving queue" in client.get_job_log(waiting["jobId"])["log"]
    assert client.get_job_by_id(waiting["jobId"])["status"] == "queued"
    client.cancel_job(waiting["jobId"])
    assert client.get_job_by_id(waiting["jobId"])["status"] == "failed"


def test_jobs_lost_by_redis_are_enqueued_again(start_server, redis_url, tmp_path):
    """Redis flushed (or restarted without its data) while a job waits in RQ: the
    server notices and enqueues it again, without a restart."""
    import redis

    server = start_server("--redis-url", redis_url, workers=0)
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("lost"))["name"]
    queue = client.register_queue(unique("cpu"))["name"]
    job = client.submit_job(echo_workflow(tmp_path), experiment, "main", queue=queue)
    broker = redis.Redis.from_url(redis_url)
    assert broker.llen(f"rq:queue:{queue}") == 1
    broker.flushdb()
    broker.set("dioptra-test-claim", "1")  # keep this database ours (see conftest)
    worker = start_worker(server.url, tmp_path / "worker.log", "--redis-url", redis_url,
                          "--queue", queue, "--worker-id", "rq-after-flush")
    try:
        done = client.wait_for_job(job["jobId"], timeout_s=120)
        log = client.get_job_log(job["jobId"])["log"]
        assert done["status"] == "finished", log
        assert "claimed by worker rq-after-flush" in log
    finally:
        worker.stop()
