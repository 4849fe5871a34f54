"""Who is calling: one check for everything the server answers (API and MLflow).

``authenticate`` turns a request's credentials into a ``Principal``: the holder of the
API token (``server``: anything), or a running job (``job``: MLflow under /mlflow only,
with the token its worker handed it). A login session joins here as one more
kind of credential: a browser session opened by the web interface's login page (an
HTTP-only, SameSite=Strict cookie) counts as the API token's holder.
``BearerTokenMiddleware`` applies it to every request but /health, /login and the
web interface's static assets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool

from dioptra.restapi.mlflow_proxy import PREFIX as MLFLOW_PREFIX
from dioptra.services import job_tokens

OPEN_PATHS = {"/health", "/login"}
OPEN_PREFIXES = ("/static/",)  # the web interface's own scripts and styles: no data
SESSION_COOKIE = "dioptra_session"
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_JOB_CHECK_TTL_S = 2.0  # a job token stops working at most this long after its job ended


@dataclass(frozen=True)
class Principal:
    kind: Literal["server", "job"]
    job_id: str | None = None

    def may_access(self, path: str) -> bool:
        if self.kind == "server":
            return True
        return path == MLFLOW_PREFIX or path.startswith(MLFLOW_PREFIX + "/")


class JobTokens:
    """Checks job tokens: genuine (HMAC) and their job still running (cached briefly)."""

    def __init__(self, secret: str, is_active: Callable[[str], bool]) -> None:
        self.secret = secret
        self.is_active = is_active
        self._checked: dict[str, tuple[float, bool]] = {}

    async def job_of(self, token: str) -> str | None:
        job_id = job_tokens.job_id_of(self.secret, token)
        if job_id is None:
            return None
        now = time.monotonic()
        cached = self._checked.get(job_id)
        if cached is None or now - cached[0] > _JOB_CHECK_TTL_S:
            active = await run_in_threadpool(self.is_active, job_id)
            if len(self._checked) > 10_000:
                self._checked.clear()
            cached = self._checked[job_id] = (now, active)
        return job_id if cached[1] else None


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


def _header(headers, wanted: bytes) -> bytes:
    for name, value in headers:
        if name == wanted:
            return value
    return b""


def session_id(scope) -> str | None:
    for part in _header(scope["headers"], b"cookie").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    return None


def _same_origin(headers, method: str) -> bool:
    """A write carried by the session cookie must come from our own pages (the cookie is
    SameSite=Strict already; this refuses a cross-origin request that carries it)."""
    origin = _header(headers, b"origin").decode("latin-1")
    if not origin or method in SAFE_METHODS:
        return True
    return origin.split("://", 1)[-1] == _header(headers, b"host").decode("latin-1")


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def wants_page(scope) -> bool:
    """A browser navigating (not a script or client): send it to the login page."""
    return scope["method"] == "GET" and b"text/html" in _header(scope["headers"], b"accept")


async def authenticate(
    headers: list[tuple[bytes, bytes]], api_token: bytes, jobs: JobTokens | None = None,
    sessions: Sessions | None = None, method: str = "GET",
) -> Principal | None:
    """The caller behind ``Authorization: Bearer <token>`` or a live login session from a
    same-origin page, None when there is none."""
    given = b""
    for name, value in headers:
        if name == b"authorization":
            given = value
            break
    scheme, _, credentials = given.partition(b" ")
    credentials = credentials.strip()
    # The scheme name is case-insensitive (RFC 7235); the token is compared in constant
    # time, also when the header is missing.
    token_ok = hmac.compare_digest(credentials, api_token)
    if token_ok and scheme.lower() == b"bearer":
        return Principal("server")
    if sessions is not None:
        sid = session_id({"headers": headers})
        if sid is not None and sessions.valid(sid) and _same_origin(headers, method):
            return Principal("server")
    if scheme.lower() != b"bearer":
        return None
    if jobs is not None and credentials.startswith(job_tokens.PREFIX.encode()):
        job_id = await jobs.job_of(credentials.decode("latin-1"))
        if job_id is not None:
            return Principal("job", job_id)
    return None


class BearerTokenMiddleware:
    def __init__(self, app, token: str, jobs: JobTokens | None = None,
                 sessions: Sessions | None = None) -> None:
        self.app = app
        self.expected = token.encode()
        self.jobs = jobs
        self.sessions = sessions

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        principal = await authenticate(scope["headers"], self.expected, self.jobs,
                                       self.sessions, scope.get("method", "GET"))
        if principal is not None and principal.may_access(scope["path"]):
            scope = {**scope, "dioptra.principal": principal}
            await self.app(scope, receive, send)
            return
        if principal is None and self.sessions is not None and wants_page(scope):
            target = scope["path"] + ("?" + scope["query_string"].decode("latin-1")
                                      if scope.get("query_string") else "")
            await _send(send, 303, b"", [(b"location",
                                          f"/login?next={quote(target, safe='')}".encode())])
            return
        if principal is not None:
            reason = "only valid for MLflow (a job's token)"
        elif any(name == b"authorization" for name, _ in scope["headers"]):
            reason = "invalid"
        else:
            reason = "missing"
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
