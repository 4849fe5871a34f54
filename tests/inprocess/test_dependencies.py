"""dependsOn: a finished parent queues its children, a failed one fails them, all the way
down; a child submitted after its parent ended is settled at once."""


def test_finished_parent_queues_its_children(bed):
    parent = bed.submit()["jobId"]
    children = [bed.submit(dependsOn=parent)["jobId"] for _ in range(2)]
    assert [bed.status(c) for c in children] == ["deferred", "deferred"]
    assert bed.dispatcher.ready == [parent]
    bed.run(parent, "finished")
    assert [bed.status(c) for c in children] == ["queued", "queued"]
    assert bed.dispatcher.ready == [parent, *children]
    assert f"dependency {parent} finished" in bed.log(children[0])
    late = bed.submit(dependsOn=parent)["jobId"]
    assert bed.status(late) == "queued" and bed.dispatcher.ready[-1] == late


def test_failed_parent_fails_the_whole_chain(bed):
    parent = bed.submit("fail")["jobId"]
    child = bed.submit(dependsOn=parent)["jobId"]
    grandchild = bed.submit(dependsOn=child)["jobId"]
    bed.claim("w1", parent)
    bed.report(parent, status="failed", reason="entry point exited with code 3")
    assert bed.status(child) == "failed" and bed.status(grandchild) == "failed"
    assert bed.job(child)["mlflowRunId"] is None
    assert parent in bed.log(child) and "exited with code 3" in bed.log(child)
    assert child in bed.log(grandchild)
    assert bed.dispatcher.ready == [parent]
    late = bed.submit(dependsOn=parent)["jobId"]
    assert bed.status(late) == "failed"


def test_cancel_of_a_waiting_parent_fails_its_children(bed):
    parent = bed.submit()["jobId"]
    child = bed.submit(dependsOn=parent)["jobId"]
    assert bed.api.post(f"/api/v0/job/{parent}/cancel").json()["status"] == "failed"
    assert bed.status(child) == "failed"
    again = bed.api.post(f"/api/v0/job/{parent}/cancel")
    assert again.status_code == 400 and "already ended" in again.json()["message"]


def test_cancel_of_a_claimed_job_asks_its_worker(bed):
    job = bed.submit()["jobId"]
    bed.claim("w1", job)
    assert bed.api.post(f"/api/v0/job/{job}/cancel").json()["status"] == "queued"
    assert bed.report(job, status="started").json() == {"cancelRequested": True}
    bed.report(job, status="failed", reason="cancelled")
    assert bed.status(job) == "failed" and "cancelled" in bed.log(job)
