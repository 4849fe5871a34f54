"""Bearer-token check as a plain ASGI middleware (cheap on every request)."""

from __future__ import annotations

import hmac
import json

OPEN_PATHS = {"/health"}


class BearerTokenMiddleware:
    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        scheme, _, credentials = given.partition(b" ")
        # The scheme name is case-insensitive (RFC 7235); the token is compared in
        # constant time.
        token_ok = hmac.compare_digest(credentials.strip(), self.expected)
        if token_ok and scheme.lower() == b"bearer":
            await self.app(scope, receive, send)
            return
        reason = "missing" if not given else "invalid"
        body = json.dumps({
            "message": f"Unauthorized - The bearer token is {reason}. Send "
            "'Authorization: Bearer <token>' (the client reads DIOPTRA_API_TOKEN)."
        }).encode()
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        })
        await send({"type": "http.response.body", "body": body})
