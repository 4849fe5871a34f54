"""The job status: one enum every module uses. Its values are the v0 wire strings."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a worker (claimed or not)
    STARTED = "started"  # the entry point runs
    DEFERRED = "deferred"  # waiting for the job named in dependsOn to end
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in ENDED_STATUSES


ENDED_STATUSES = (JobStatus.FINISHED, JobStatus.FAILED)
# The wire strings, in the v0 order (``"x" in JobStatus`` is not usable on Python 3.11).
STATUS_VALUES = tuple(s.value for s in JobStatus)
