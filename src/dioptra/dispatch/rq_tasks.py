"""Kept for RQ jobs enqueued by an older server under this function path: the task now
lives with the worker (``dioptra.worker.rq_task.run_job``). Imported only in RQ work
horses, on worker machines; the server never imports it."""

from __future__ import annotations


def run_job(job_id: str) -> str:
    from dioptra.worker.rq_task import run_job as run

    return run(job_id)
