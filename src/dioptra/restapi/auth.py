"""The one door: a bearer token or a browser session, checked as a plain ASGI middleware
(cheap on every request).

API clients and workers send ``Authorization: Bearer <token>``. A browser logs in once
with the token (the web interface's login page) and then carries an HTTP-only session
cookie; `authorized` accepts either, and is the only check there is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from urllib.parse import quote

OPEN_PATHS = {"/health", "/login"}
OPEN_PREFIXES = ("/static/",)  # the web interface's own scripts and styles: no data
SESSION_COOKIE = "dioptra_session"
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Sessions:
    """Browser sessions opened by the login page. Kept in memory (only digests of the
    ids): a server restart asks people to log in again, and logout ends one at once."""

    def __init__(self, ttl_s: float = SESSION_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._expiry: dict[bytes, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(session_id: str) -> bytes:
        return hashlib.sha256(session_id.encode()).digest()

    def open(self) -> str:
        session_id = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._expiry = {k: t for k, t in self._expiry.items() if t > now}
            self._expiry[self._key(session_id)] = now + self.ttl_s
        return session_id

    def valid(self, session_id: str) -> bool:
        expiry = self._expiry.get(self._key(session_id))
        return expiry is not None and expiry > time.monotonic()

    def close(self, session_id: str) -> None:
        with self._lock:
            self._expiry.pop(self._key(session_id), None)


def _header(scope, wanted: bytes) -> bytes:
    for name, value in scope["headers"]:
        if name == wanted:
            return value
    return b""


def session_id(scope) -> str | None:
    for part in _header(scope, b"cookie").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    return None


def bearer_ok(scope, expected: bytes) -> bool:
    scheme, _, credentials = _header(scope, b"authorization").partition(b" ")
    # The scheme name is case-insensitive (RFC 7235); the token is compared in constant
    # time, also when the header is missing.
    token_ok = hmac.compare_digest(credentials.strip(), expected)
    return token_ok and scheme.lower() == b"bearer"


def _same_origin(scope) -> bool:
    """A write carried by the session cookie must come from our own pages (the cookie is
    SameSite=Strict already; this refuses a cross-origin request that carries it)."""
    origin = _header(scope, b"origin").decode("latin-1")
    if not origin or scope["method"] in SAFE_METHODS:
        return True
    host = _header(scope, b"host").decode("latin-1")
    return origin.split("://", 1)[-1] == host


def authorized(scope, expected: bytes, sessions: Sessions | None) -> bool:
    """The one check of every door (API, pages, MLflow behind the API): a valid bearer
    token, or a live browser session from a same-origin page."""
    if bearer_ok(scope, expected):
        return True
    sid = session_id(scope) if sessions is not None else None
    return sid is not None and sessions.valid(sid) and _same_origin(scope)


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def wants_page(scope) -> bool:
    """A browser navigating (not a script or client): send it to the login page."""
    return scope["method"] == "GET" and b"text/html" in _header(scope, b"accept")


class BearerTokenMiddleware:
    def __init__(self, app, token: str, sessions: Sessions | None = None) -> None:
        self.app = app
        self.expected = token.encode()
        self.sessions = sessions

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or is_open(scope["path"]) or authorized(
                scope, self.expected, self.sessions):
            await self.app(scope, receive, send)
            return
        if self.sessions is not None and wants_page(scope):
            target = scope["path"] + ("?" + scope["query_string"].decode("latin-1")
                                      if scope.get("query_string") else "")
            await _send(send, 303, b"", [(b"location",
                                          f"/login?next={quote(target, safe='')}".encode())])
            return
        reason = "missing" if not _header(scope, b"authorization") else "invalid"
        body = json.dumps({
            "message": f"Unauthorized - The bearer token is {reason}. Send "
            "'Authorization: Bearer <token>' (the client reads DIOPTRA_API_TOKEN), "
            "or log in at /login in a browser."
        }).encode()
        await _send(send, 401, body, [(b"content-type", b"application/json"),
                                      (b"www-authenticate", b"Bearer")])


async def _send(send, status: int, body: bytes, headers: list) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
