"""Wakes the long-polling claim requests when a job becomes ready.

A job may become ready in any of the server's processes (an API process that took the
submission, the main process's reaper), while the claim waits in another: ``notify``
bumps a shared counter (dioptra/generations.py) and each process's event loop watches
it every WATCH_S, besides waking its own waiters at once.
"""

from __future__ import annotations

import asyncio
import contextlib

from dioptra.generations import JOBS, Generations

WATCH_S = 0.025


class WakeUp:
    """Thread-safe notify, awaited on the server's event loop.

    A waiter takes ``current()`` *before* it looks for work, so a notify that lands
    between its look and its wait is not missed.
    """

    def __init__(self, generations: Generations | None = None) -> None:
        self.generations = generations or Generations()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._watcher: asyncio.Task | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()
        if self.generations.path is not None:  # shared: other processes may notify
            self._watcher = loop.create_task(self._watch())

    async def unbind(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def _watch(self) -> None:
        seen = self.generations.read(JOBS)
        while True:
            await asyncio.sleep(WATCH_S)
            now = self.generations.read(JOBS)
            if now != seen:
                seen = now
                self._fire()

    def current(self) -> asyncio.Event:
        assert self._event is not None, "WakeUp.bind() was not called"
        return self._event

    def notify(self) -> None:
        self.generations.bump(JOBS)
        self.notify_here()

    def notify_here(self) -> None:
        """Wake this process's waiters only (the server stopping)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> None:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
