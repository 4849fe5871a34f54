"""The transition table: every status change goes through it, and what it does not
allow is refused with a message, whoever asks (a user's PUT or a worker's report)."""

import pytest

from dioptra.contract.status import JobStatus
from dioptra.services.lifecycle import TRANSITIONS, Phase


def test_started_by_hand_on_a_job_no_worker_holds_is_refused(bed):
    queued = bed.submit()
    child = bed.submit(dependsOn=queued["jobId"])
    for job in (queued, child):
        answer = bed.put(job["jobId"], "started")
        assert answer.status_code == 409, answer.text
        assert "only the worker that claimed" in answer.json()["message"]
    assert bed.status(queued["jobId"]) == "queued" and bed.status(child["jobId"]) == "deferred"
    # ... and the job still runs: a worker claims it.
    assert bed.claim()["jobId"] == queued["jobId"]


def test_queued_by_hand_on_a_claimed_job_is_refused(bed):
    job = bed.submit()
    bed.claim("w1")
    answer = bed.put(job["jobId"], "queued")
    assert answer.status_code == 409
    assert "w1" in answer.json()["message"] and "Cancel it" in answer.json()["message"]
    bed.report(job["jobId"], status="started")
    assert bed.put(job["jobId"], "queued").status_code == 409
    assert bed.put(job["jobId"], "deferred").status_code == 409
    assert bed.status(job["jobId"]) == "started"


def test_an_ended_job_stays_ended(bed):
    job = bed.submit()
    bed.run(job["jobId"], "finished")
    for status in ("queued", "started", "deferred", "failed"):
        answer = bed.put(job["jobId"], status)
        assert answer.status_code == 409, status
        assert "already ended with status 'finished'" in answer.json()["message"]
    assert bed.put(job["jobId"], "finished").status_code == 200  # no change
    # A worker's late report does not change it either; it is told to stop.
    assert bed.report(job["jobId"], status="failed").json() == {"cancelRequested": True}
    assert bed.status(job["jobId"]) == "finished"


def test_what_the_table_allows_by_hand(bed):
    parent = bed.submit()
    child = bed.submit(dependsOn=parent["jobId"])
    assert bed.dispatcher.ready == [parent["jobId"]]
    # Released by hand: queued and handed to the dispatcher.
    assert bed.put(child["jobId"], "queued").json()["status"] == "queued"
    assert bed.dispatcher.ready == [parent["jobId"], child["jobId"]]
    # Queued again while no worker holds it: handed over again (a nudge), no change.
    assert bed.put(parent["jobId"], "queued").status_code == 200
    assert bed.dispatcher.ready[-1] == parent["jobId"]
    # A claimed job may be ended by hand; its worker learns it from its next report.
    bed.claim("w1", parent["jobId"])
    assert bed.put(parent["jobId"], "failed").json()["status"] == "failed"
    assert bed.report(parent["jobId"], status="started").json() == {"cancelRequested": True}
    assert "status set through the API" in bed.log(parent["jobId"])


def test_a_worker_cannot_report_queued_or_deferred(bed):
    job = bed.submit()
    bed.claim()
    for status in ("queued", "deferred"):
        answer = bed.report(job["jobId"], status=status)
        assert answer.status_code == 400 and "status" in answer.json()["message"]
    other = bed.report(job["jobId"], worker="w2", status="started")
    assert other.status_code == 409
    assert bed.status(job["jobId"]) == "queued"


def test_every_phase_and_status_has_an_answer():
    """Each pair is in the table, or refused with a message of its own."""
    from types import SimpleNamespace

    from dioptra.services.lifecycle import refusal

    examples = {
        Phase.DEFERRED: ("deferred", None), Phase.WAITING: ("queued", None),
        Phase.CLAIMED: ("queued", "w"), Phase.STARTED: ("started", "w"),
        Phase.FINISHED: ("finished", "w"), Phase.FAILED: ("failed", None),
    }
    for phase, (status, claimed_by) in examples.items():
        job = SimpleNamespace(status=status, claimed_by=claimed_by)
        for to in JobStatus:
            why = refusal(job, to)
            assert (why is None) == ((phase, to) in TRANSITIONS), (phase, to)
    assert (Phase.WAITING, JobStatus.STARTED) not in TRANSITIONS
    assert (Phase.CLAIMED, JobStatus.QUEUED) not in TRANSITIONS


@pytest.mark.parametrize("bad", ["running", "", "QUEUED", 3])
def test_put_of_an_unknown_status_is_a_400(bed, bad):
    job = bed.submit()
    answer = bed.put(job["jobId"], bad)
    assert answer.status_code == 400 and "status" in answer.json()["message"]
