"""Redis + RQ dispatch: one RQ queue per Dioptra queue; workers run anywhere.

Only the job id travels through Redis: the worker fetches everything else from the
server over HTTP. Dependencies, timeouts and failure of dependents are handled by the
server and the worker, not by RQ (whose versions of them have traps: deferred
dependents of failed jobs wait forever, and its timeout does not kill child processes).
"""

from __future__ import annotations

import logging
import threading

from redis import Redis
from rq import Queue
from rq.job import Job as RQJob

log = logging.getLogger("dioptra.dispatch")
# The function RQ work horses run, by path: it lives on worker machines.
TASK = "dioptra.worker.rq_task.run_job"
# RQ's own timeout is only a backstop: the worker kills the entry point itself.
TIMEOUT_MARGIN_S = 300


class RQDispatcher:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.redis = Redis.from_url(redis_url)
        self._failed: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        try:
            self.redis.ping()
        except Exception as exc:  # noqa: BLE001 - report and carry on: jobs wait
            log.warning("Redis at %s does not answer (%s); jobs wait until it does",
                        self.redis_url, exc)

    def job_ready(self, job_id: str, queue_name: str, timeout_seconds: int) -> None:
        try:
            Queue(queue_name, connection=self.redis).enqueue(
                TASK,
                job_id,
                job_id=job_id,
                job_timeout=timeout_seconds + TIMEOUT_MARGIN_S,
                result_ttl=3600,
                failure_ttl=7 * 86400,
            )
        except Exception as exc:  # noqa: BLE001 - retried by retry_failed()
            log.warning("could not enqueue job %s on RQ queue %s: %s", job_id, queue_name, exc)
            with self._lock:
                self._failed[job_id] = (queue_name, timeout_seconds)

    def redispatch(self, jobs: list[tuple[str, str, int]]) -> None:
        """Enqueue again the jobs Redis no longer has (restarted without its data, or
        flushed). One that RQ still holds, in whatever state, is left alone: the claim
        is atomic, so a job enqueued twice still runs once, but a loop is not wanted."""
        if not jobs:
            return
        try:
            known = RQJob.fetch_many([job_id for job_id, _, _ in jobs], connection=self.redis)
        except Exception as exc:  # noqa: BLE001 - Redis down: the next round retries
            log.warning("could not ask Redis which jobs it holds: %s", exc)
            return
        for (job_id, queue_name, timeout_seconds), rq_job in zip(jobs, known, strict=True):
            if rq_job is None:
                log.warning("job %s is queued but Redis lost it; enqueuing it again", job_id)
                self.job_ready(job_id, queue_name, timeout_seconds)

    def retry_failed(self) -> None:
        with self._lock:
            pending, self._failed = self._failed, {}
        for job_id, (queue_name, timeout_seconds) in pending.items():
            self.job_ready(job_id, queue_name, timeout_seconds)

    def stop(self) -> None:
        self.redis.close()
