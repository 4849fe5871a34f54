"""Rendered JSON of the hot list endpoints, rebuilt only after a change.

Every write to queues or experiments goes through this server process, which bumps the
cache's version; a short time-to-live bounds staleness should another server process
write to the same database.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from fastapi import Response
from starlette.concurrency import run_in_threadpool

TTL_S = 1.0


class RenderedList:
    def __init__(self, build: Callable[[], list[dict]]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._version = 0
        self._rendered: tuple[int, float, bytes] | None = None

    def invalidate(self) -> None:
        with self._lock:
            self._version += 1

    def _render(self) -> bytes:
        with self._lock:
            version = self._version
        body = json.dumps(self._build(), separators=(",", ":")).encode()
        with self._lock:
            self._rendered = (version, time.monotonic(), body)
        return body

    async def response(self) -> Response:
        rendered = self._rendered
        if (rendered is None or rendered[0] != self._version
                or time.monotonic() - rendered[1] > TTL_S):
            body = await run_in_threadpool(self._render)
        else:
            body = rendered[2]
        return Response(content=body, media_type="application/json")
