"""Who is calling: one check for everything the server answers (API and MLflow).

``authenticate`` turns a request's credentials into a ``Principal``: the holder of the
API token (``server``: anything), or a running job (``job``: MLflow under /mlflow only,
with the token its worker handed it). A login session can join here later as one more
kind of credential. ``BearerTokenMiddleware`` applies it to every request but /health.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from starlette.concurrency import run_in_threadpool

from dioptra.restapi.mlflow_proxy import PREFIX as MLFLOW_PREFIX
from dioptra.services import job_tokens

OPEN_PATHS = {"/health"}
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


async def authenticate(
    headers: list[tuple[bytes, bytes]], api_token: bytes, jobs: JobTokens | None = None
) -> Principal | None:
    """The caller behind ``Authorization: Bearer <token>``, None when there is none."""
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
    if scheme.lower() != b"bearer":
        return None
    if token_ok:
        return Principal("server")
    if jobs is not None and credentials.startswith(job_tokens.PREFIX.encode()):
        job_id = await jobs.job_of(credentials.decode("latin-1"))
        if job_id is not None:
            return Principal("job", job_id)
    return None


class BearerTokenMiddleware:
    def __init__(self, app, token: str, jobs: JobTokens | None = None) -> None:
        self.app = app
        self.expected = token.encode()
        self.jobs = jobs

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        principal = await authenticate(scope["headers"], self.expected, self.jobs)
        if principal is not None and principal.may_access(scope["path"]):
            scope = {**scope, "dioptra.principal": principal}
            await self.app(scope, receive, send)
            return
        if principal is not None:
            reason = "only valid for MLflow (a job's token)"
        elif any(name == b"authorization" for name, _ in scope["headers"]):
            reason = "invalid"
        else:
            reason = "missing"
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
