"""How much a client may send, and how slowly: the limits on request bodies and heads.

An anonymous local user must not be able to make the server hold hundreds of megabytes
or hundreds of idle connections. Bodies are refused by their Content-Length before any
byte is read, and counted while they stream in (a client may lie or send chunks): the
answer is 413 with the limit and the variable that sets it. A client that stops sending
in the middle of a body gets 408; one that never finishes its request head is
disconnected (:func:`head_timeout_protocol`).
"""

from __future__ import annotations

import asyncio
import json
import re

from fastapi import HTTPException

from dioptra.config import Settings
from dioptra.restapi.mlflow_proxy import PREFIX as MLFLOW_PREFIX

_UPLOAD_PATHS = {"/api/v0/job", "/api/v0/taskPlugin"}
_LOG_PATH = re.compile(r"/api/v0/worker/jobs/[^/]+/log/?")
# Room for the multipart framing and the form fields around the file.
MULTIPART_OVERHEAD_BYTES = 1 << 20


class BodyRefused(HTTPException):
    """Raised from ``receive``: FastAPI lets HTTPExceptions through its body parsing, so
    the error handlers answer it as JSON."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message, headers={"Connection": "close"})


def body_limit(settings: Settings, method: str, path: str) -> tuple[int, str]:
    """The largest body accepted on this route, and the setting that decides it."""
    if method == "POST" and path.rstrip("/") in _UPLOAD_PATHS:
        return settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES, "DIOPTRA_MAX_UPLOAD_BYTES"
    if path == MLFLOW_PREFIX or path.startswith(MLFLOW_PREFIX + "/"):
        # MLflow artifacts (models, data sets) go up through the MLflow proxy.
        return settings.max_upload_bytes, "DIOPTRA_MAX_UPLOAD_BYTES"
    if _LOG_PATH.fullmatch(path):
        return settings.max_log_chunk_bytes, "DIOPTRA_MAX_LOG_CHUNK_BYTES"
    return settings.max_json_bytes, "DIOPTRA_MAX_JSON_BYTES"


def _too_large(limit: int, setting: str) -> BodyRefused:
    return BodyRefused(
        413,
        f"Request Entity Too Large - The request body is larger than {limit} bytes, the "
        f"limit for this route (set by {setting}).",
    )


class RequestLimitsMiddleware:
    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = body_limit(self.settings, scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer(send, _too_large(limit, setting))
            return
        idle_s = self.settings.request_timeout_s
        received = 0
        body_done = False

        async def limited_receive():
            nonlocal received, body_done
            if body_done:  # afterwards only http.disconnect comes: wait as long as it takes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), idle_s)
            except TimeoutError:
                raise BodyRefused(
                    408,
                    f"Request Timeout - No part of the request body arrived for {idle_s:g} "
                    "seconds (DIOPTRA_REQUEST_TIMEOUT).",
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit, setting)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyRefused as exc:  # raised where no error handler was around
            if started:
                raise
            await _answer(send, exc)


def _content_length(scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send, exc: BodyRefused) -> None:
    body = json.dumps({"message": exc.detail}).encode()
    await send({
        "type": "http.response.start",
        "status": exc.status_code,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body})


def head_timeout_protocol(base: type, timeout_s: float) -> type:
    """uvicorn's HTTP protocol ``base`` (h11 or httptools), closing a connection whose
    request head is not complete ``timeout_s`` seconds after the server began waiting
    for it (uvicorn itself only times out connections that send nothing at all)."""

    class HeadTimeoutProtocol(base):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._watch_head()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch_head()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch_head()

        def connection_lost(self, exc) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def _waiting_for_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _watch_head(self) -> None:
            # Armed once per head, never pushed back by more bytes: a client dribbling
            # one byte at a time is still cut off.
            if not self._waiting_for_head():
                self._stop_head_timer()
            elif self._head_timer is None and not self.transport.is_closing():
                self._head_timer = self.loop.call_later(timeout_s, self._head_too_slow)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_too_slow(self) -> None:
            self._head_timer = None
            if self._waiting_for_head() and not self.transport.is_closing():
                self.transport.close()

    return HeadTimeoutProtocol
