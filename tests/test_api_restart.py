"""A server stopped with SIGTERM and started again on the same data keeps everything:
experiments, queues and their locks, custom plugins, jobs (SQLite and PostgreSQL)."""

from __future__ import annotations

import signal
import time

import pytest
from testbed import unique
from workflows import echo_workflow, plugin_archive

from dioptra.storage import open_store

STOP_WITHIN_S = 10
# uvicorn re-raises the SIGTERM it handled once its graceful shutdown is done, so unless
# the server absorbs it the process ends "killed by SIGTERM" (-15) instead of exiting 0.
KILLED_AFTER_SHUTDOWN = -signal.SIGTERM


def stop_with_sigterm(server) -> int:
    """SIGTERM the server; it must be gone within a few seconds. Returns its exit code."""
    started = time.monotonic()
    code = server.stop(signal.SIGTERM)
    took = time.monotonic() - started
    assert took < STOP_WITHIN_S, f"SIGTERM took {took:.1f}s"
    assert code in (0, KILLED_AFTER_SHUTDOWN), f"exit {code}:\n{server.log()[-3000:]}"
    return code


def require_clean_exits(codes: list[int]) -> None:
    """Everything else in the test passed; now demand exit status 0 for SIGTERM."""
    if any(code == KILLED_AFTER_SHUTDOWN for code in codes):
        pytest.xfail("`dioptra server` ends by SIGTERM (-15) instead of exiting 0: uvicorn "
                     "re-raises the signal after its graceful shutdown (see the report)")


def snapshot(client, experiments, queues, plugin, jobs) -> dict:
    """Everything the v0 API says about what the test created."""
    return {
        "experiments": client.list_experiments(),
        "experiment_by_id": [client.get_experiment_by_id(e["experimentId"]) for e in experiments],
        "experiment_by_name": [client.get_experiment_by_name(e["name"]) for e in experiments],
        "unlocked_queues": client.list_queues(),
        "queue_by_id": [client.get_queue_by_id(q["queueId"]) for q in queues],
        "queue_by_name": [client.get_queue_by_name(q["name"]) for q in queues],
        "custom_plugins": client.list_custom_task_plugins(),
        "plugin": client.get_custom_task_plugin(plugin),
        "all_plugins": client.list_all_task_plugins(),
        "jobs": client.list_jobs(),
        "job_by_id": [client.get_job_by_id(j["jobId"]) for j in jobs],
        "queued": client.find_jobs(status="queued"),
        "deferred": client.find_jobs(status="deferred"),
    }


def test_everything_survives_a_restart(server, client, tmp_path):
    experiments = [client.register_experiment(unique("restart-exp")) for _ in range(2)]
    queues = [client.register_queue(unique("restart-q")) for _ in range(3)]
    locked = queues[1]
    assert client.lock_queue(locked["name"])["status"] == "Success"
    plugin = "restart_plugin"
    uploaded = client.upload_custom_plugin_package(plugin, plugin_archive(tmp_path, plugin))
    assert uploaded["taskPluginName"] == plugin
    archive = echo_workflow(tmp_path)
    job = client.submit_job(archive, experiments[0]["name"], "main", "-P x=2.5",
                            queue=queues[0]["name"], timeout="1h")
    child = client.submit_job(archive, experiments[1]["name"], "needs",
                              "-P run_id=abc", depends_on=job["jobId"],
                              queue=queues[2]["name"], timeout="30m")
    assert (job["status"], child["status"]) == ("queued", "deferred")
    before = snapshot(client, experiments, queues, plugin, [job, child])
    assert locked not in before["unlocked_queues"]
    assert before["queue_by_name"][1] == locked

    code = stop_with_sigterm(server)
    server.start()
    assert server.starts == 2
    after = snapshot(client, experiments, queues, plugin, [job, child])
    for key in before:
        assert after[key] == before[key], key
    store = open_store(str(server.data_dir / "objects"))
    assert store.get_bytes(job["workflowUri"]) == archive.read_bytes()

    # The lock is still enforced, and lifting it works on the restarted server.
    refused = client.submit_job(archive, experiments[0]["name"], "main", queue=locked["name"])
    assert "locked" in refused["message"]
    assert client.unlock_queue(locked["name"])["status"] == "Success"
    assert locked in client.list_queues()

    # New rows continue the id sequences instead of reusing them.
    newer = client.register_queue(unique("restart-q"))
    assert newer["queueId"] > max(q["queueId"] for q in queues)
    assert client.register_experiment(unique("restart-exp"))["experimentId"] not in [
        e["experimentId"] for e in experiments]
    # The plugin name is still taken, so a second upload is refused until it is deleted.
    again = client.upload_custom_plugin_package(plugin, plugin_archive(tmp_path, plugin))
    assert "conflicts" in again["message"]
    require_clean_exits([code])


def test_a_second_restart_and_an_empty_server(server, client):
    """Restarting twice, and restarting with nothing registered, are both clean."""
    assert client.list_experiments() == [] and client.list_jobs() == []
    codes = [stop_with_sigterm(server)]
    server.start()
    assert client.list_experiments() == [] and client.list_queues() == []
    queue = client.register_queue(unique("q"))
    codes.append(stop_with_sigterm(server))
    server.start()
    assert client.get_queue_by_id(queue["queueId"]) == queue
    assert server.starts == 3
    require_clean_exits(codes)
