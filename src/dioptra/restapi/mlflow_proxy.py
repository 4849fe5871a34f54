"""The embedded MLflow server (UI and REST API), served under ``/mlflow`` of the API.

MLflow listens on a Unix socket only the server's user can reach; this ASGI middleware
streams requests and answers between it and the API's port, so MLflow sits behind the
same token check as the API (it runs inside BearerTokenMiddleware).
"""

from __future__ import annotations

import json
import logging

import httpx

log = logging.getLogger("dioptra.restapi")

PREFIX = "/mlflow"
# Hop-by-hop headers (RFC 9110 7.6.1), and what must not travel to MLflow: the caller's
# credentials are ours to check, not MLflow's.
_DROP_REQUEST = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"te",
                 b"upgrade", b"proxy-authorization", b"authorization"}
_DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade",
                  "proxy-authenticate", "trailer"}


class MLflowProxyMiddleware:
    def __init__(self, app, socket_path: str) -> None:
        self.app = app
        self.socket_path = socket_path
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:  # made in the event loop that uses it
            self._client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=self.socket_path),
                # Artifacts (models) can take long to move; a stuck MLflow must not hang
                # a request forever.
                timeout=httpx.Timeout(300.0, connect=10.0),
            )
        return self._client

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        if path == PREFIX:  # the UI's address without its slash
            await send({"type": "http.response.start", "status": 308,
                        "headers": [(b"location", f"{PREFIX}/".encode()),
                                    (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(k, v) for k, v in scope["headers"] if k not in _DROP_REQUEST]
        # MLflow checks the Host header against DNS rebinding: it sees a local caller.
        headers.append((b"host", b"localhost"))
        target = scope.get("raw_path") or path.encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]

        async def body():
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body"):
                    return

        has_body = any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
        request = self.client().build_request(
            scope["method"], "http://localhost" + target.decode("latin-1"), headers=headers,
            content=body() if has_body else None,
        )
        try:
            response = await self.client().send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("MLflow proxy: %s %s failed: %s", scope["method"], path, exc)
            await _error(send, 502, "Bad Gateway - The MLflow tracking server does not answer.")
            return
        try:
            await send({
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(k, v) for k, v in response.headers.raw
                            if k.decode("latin-1").lower() not in _DROP_RESPONSE],
            })
            async for chunk in response.aiter_raw():  # as MLflow encoded it
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


async def _error(send, status: int, message: str) -> None:
    body = json.dumps({"message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
