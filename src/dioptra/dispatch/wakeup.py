"""Wakes the long-polling claim requests when a job becomes ready."""

from __future__ import annotations

import asyncio


class WakeUp:
    """Thread-safe notify, awaited on the server's event loop.

    A waiter takes ``current()`` *before* it looks for work, so a notify that lands
    between its look and its wait is not missed.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        assert self._event is not None, "WakeUp.bind() was not called"
        return self._event

    def notify(self) -> None:
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
