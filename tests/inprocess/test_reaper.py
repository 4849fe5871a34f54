"""The reaper and restart recovery, on jobs whose time is made to pass in the database."""

import logging

from dioptra.services import reaper


def test_silent_worker_and_overrun_timeout_fail_the_job(bed):
    silent, slow, fine = (bed.submit(timeout="10s")["jobId"] for _ in range(3))
    for job_id in (silent, slow, fine):
        bed.claim("w1", job_id)
        bed.report(job_id, status="started")
    bed.set_columns(silent, heartbeat_on=bed.ago(21))
    bed.set_columns(slow, started_on=bed.ago(71))  # the timeout plus a minute's grace
    bed.set_columns(fine, started_on=bed.ago(69), heartbeat_on=bed.ago(19))
    assert sorted(reaper.reap(bed.ctx)) == sorted([silent, slow])
    assert "stopped sending heartbeats for 20s" in bed.log(silent)
    assert "timed out after 10s" in bed.log(slow)
    assert bed.status(fine) == "started"
    assert reaper.reap(bed.ctx) == []


def test_a_job_with_a_huge_timeout_does_not_stop_the_reaper(bed):
    """A row written before timeouts were bounded (3,000,000 days): its deadline is past
    year 9999. It once made every round raise OverflowError and roll back."""
    huge, silent = bed.submit()["jobId"], bed.submit()["jobId"]
    for job_id in (huge, silent):
        bed.claim("w1", job_id)
        bed.report(job_id, status="started")
    bed.set_columns(huge, timeout="3000000d", timeout_seconds=3_000_000 * 86400)
    bed.set_columns(silent, heartbeat_on=bed.ago(60))
    assert reaper.reap(bed.ctx) == [silent]
    assert bed.status(huge) == "started"


def test_one_unreadable_job_does_not_shield_the_others(bed, caplog):
    odd, silent = bed.submit()["jobId"], bed.submit()["jobId"]
    for job_id in (odd, silent):
        bed.claim("w1", job_id)
        bed.set_columns(job_id, heartbeat_on=bed.ago(60))
    bed.set_columns(odd, status="paused")  # a status this version does not know
    with caplog.at_level(logging.ERROR, logger="dioptra.reaper"):
        assert reaper.reap(bed.ctx) == [silent]
    assert bed.status(silent) == "failed"
    assert odd in caplog.text and "could not be checked" in caplog.text


def test_timeout_is_bounded_at_submission(bed):
    for timeout in ("366d", "3000000d", "999999d", "9" * 400):
        with bed.archive.open("rb") as fh:
            answer = bed.api.post("/api/v0/job/", files={"workflow": ("w.tar.gz", fh)}, data={
                "experimentName": "exp", "queue": "cpu", "entryPoint": "main",
                "timeout": timeout})
        assert answer.status_code == 400, (timeout, answer.text)
        message = answer.json()["message"]
        assert "'timeout'" in message and "365d" in message
    assert bed.submit(timeout="365d")["timeout"] == "365d"


def test_recovery_after_a_restart(bed):
    ran = bed.submit()["jobId"]
    remote = bed.submit()["jobId"]
    waiting = bed.submit()["jobId"]
    child = bed.submit(dependsOn=ran)["jobId"]
    bed.claim("embedded:old:0", ran)
    bed.report(ran, worker="embedded:old:0", status="started")
    bed.claim("remote-worker", remote)
    bed.dispatcher.ready.clear()

    reaper.recover(bed.ctx, "embedded:")
    assert bed.status(ran) == "failed"
    assert "the server restarted while the job was running" in bed.log(ran)
    # The child of the lost job fails with it; a remote worker's job is left to it.
    assert bed.status(child) == "failed" and ran in bed.log(child)
    assert bed.status(remote) == "queued"
    assert bed.dispatcher.ready == [waiting]


def test_recovery_settles_children_of_parents_that_ended_while_down(bed):
    parent = bed.submit()["jobId"]
    child = bed.submit(dependsOn=parent)["jobId"]
    # The parent ended, but the server stopped before the child was settled.
    bed.set_columns(parent, status="finished")
    bed.dispatcher.ready.clear()
    reaper.recover(bed.ctx, "embedded:")
    assert bed.status(child) == "queued"
    assert bed.dispatcher.ready == [child]


def test_redispatch_offers_the_queued_jobs_no_worker_holds(bed):
    waiting, claimed, fresh = (bed.submit()["jobId"] for _ in range(3))
    parent = bed.submit()["jobId"]
    deferred = bed.submit(dependsOn=parent)["jobId"]
    bed.claim("w1", claimed)
    for job_id in (waiting, claimed, deferred, parent):
        bed.set_columns(job_id, last_modified=bed.ago(30))
    reaper.redispatch(bed.ctx, min_age_s=10)
    # The fresh one may be being handed over right now: left for the next round.
    assert bed.dispatcher.checked == [waiting, parent]
    assert fresh not in bed.dispatcher.checked


def test_recovery_goes_on_past_an_unreadable_job(bed):
    odd, lost = bed.submit()["jobId"], bed.submit()["jobId"]
    for job_id in (odd, lost):
        bed.claim("embedded:old:0", job_id)
    bed.set_columns(odd, status="paused")  # a status this version does not know
    reaper.recover(bed.ctx, "embedded:")  # a start that raised here would not serve
    assert bed.status(lost) == "failed"
