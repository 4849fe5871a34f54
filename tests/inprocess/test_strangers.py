"""A restart adopts no stranger: embedded worker ids of another server start are refused
(issue 7, item 3; the kill -9 itself is tested with real processes in
tests/test_limits_orphans.py)."""


def test_embedded_workers_of_another_start_are_refused(bed):
    job = bed.submit()["jobId"]
    for stranger in ("embedded:other:0", "embedded:", "embedded:oldx:0"):
        for path, body in (("claim", {"workerId": stranger, "queues": None, "wait": 0,
                                      "jobId": job}),
                           ("heartbeat", {"workerId": stranger, "queues": None,
                                          "hostname": "h"})):
            answer = bed.api.post(f"/api/v0/worker/{path}", json=body)
            assert answer.status_code == 403, answer.text
            assert "earlier run of this server" in answer.json()["message"]
    assert bed.status(job) == "queued"
    assert bed.api.post("/api/v0/worker/claim", json={
        "workerId": "embedded:old:0", "queues": None, "wait": 0, "jobId": job}).status_code == 200
