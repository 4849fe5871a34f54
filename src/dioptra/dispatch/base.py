"""The one interface the services see."""

from __future__ import annotations

from typing import Protocol


class Dispatcher(Protocol):
    def start(self) -> None:
        """Start whatever the dispatcher runs (worker processes, connections)."""

    def job_ready(self, job_id: str, queue_name: str, timeout_seconds: int) -> None:
        """A job became ``queued``: make a worker take it. Must not raise: a job that
        could not be handed over stays queued and is handed over again later."""

    def redispatch(self, jobs: list[tuple[str, str, int]]) -> None:
        """``jobs`` (id, queue name, timeout) are queued and no worker holds them: hand
        over again any the dispatcher has lost (a Redis restarted or flushed). Periodic;
        must not raise."""

    def stop(self) -> None:
        """Stop what start() started."""
