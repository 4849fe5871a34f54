"""Renderings of hot read endpoints, rebuilt only after a change, once for all waiters.

Every write to queues or experiments bumps a generation counter shared by all the API
processes (dioptra/generations.py) once it has committed, so a rendering made before
the write is never served after it, by any process. A short time-to-live bounds
staleness should another server host write to the same (PostgreSQL) database.

Single flight: one rebuild per generation, rendering and process. A request that finds
the generation changed waits for a rebuild begun after the change (every waiter shares
that one rebuild); a request that finds the rendering merely older than the TTL gets
the previous rendering at once while one rebuild runs in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from dioptra.generations import Generations

log = logging.getLogger("dioptra.restapi.cache")
TTL_S = 1.0
T = TypeVar("T")


class Rendered(Generic[T]):
    """A value built by ``build`` (in a thread), valid while slot ``slot`` is unchanged."""

    def __init__(self, build: Callable[[], T], generations: Generations, slot: int,
                 ttl_s: float = TTL_S) -> None:
        self._build = build
        self._generations = generations
        self._slot = slot
        self._ttl_s = ttl_s
        self._value: tuple[int, float, T] | None = None  # generation, built at, value
        self._flight: tuple[int, asyncio.Future] | None = None
        self.builds = 0  # how many rebuilds ran (the tests count them)

    def invalidate(self) -> None:
        """Call after a change has committed: every process rebuilds before serving."""
        self._generations.bump(self._slot)

    async def get(self) -> T:
        generation = self._generations.read(self._slot)
        value = self._value
        if value is not None and value[0] == generation:
            if time.monotonic() - value[1] > self._ttl_s and self._flight is None:
                self._start(generation).add_done_callback(_log_failure)
            return value[2]
        flight = self._flight
        if flight is None or flight[0] != generation:
            future = self._start(generation)
        else:
            future = flight[1]
        # Shielded: a waiter that goes away must not cancel the others' rebuild.
        return await asyncio.shield(future)

    def _start(self, generation: int) -> asyncio.Future:
        future = asyncio.ensure_future(self._rebuild(generation))
        self._flight = (generation, future)
        return future

    async def _rebuild(self, generation: int) -> T:
        # The generation was read before the build's query: a change committed during
        # the build bumps it again, so this rendering is replaced at the next request.
        started = time.monotonic()
        try:
            built = await run_in_threadpool(self._build)
            self.builds += 1
            if self._value is None or self._value[0] <= generation:
                self._value = (generation, started, built)
            return built
        finally:
            if self._flight is not None and self._flight[0] == generation:
                self._flight = None


def _log_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("background rebuild failed", exc_info=future.exception())


class RenderedList(Rendered[bytes]):
    """A list endpoint's whole JSON answer."""

    async def response(self) -> Response:
        return Response(content=await self.get(), media_type="application/json")
