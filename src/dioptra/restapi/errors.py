"""Every error leaves the server as JSON ``{"message": ...}``: mapped here, once."""

from __future__ import annotations

import logging
import re
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from dioptra.services.errors import ServiceError
from dioptra.services.names import printable_nested

log = logging.getLogger("dioptra.restapi")

_MARSHMALLOW_STYLE = {
    "missing": "Missing data for required field.",
    "extra_forbidden": "Unknown field.",
    "string_type": "Not a valid string.",
    "literal_error": "Must be one of: queued, started, deferred, finished, failed.",
}


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form")]
    return ".".join(parts) or "body"


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    schema_errors: dict[str, list[str]] = {}
    sentences = []
    for error in exc.errors():
        field = _field(tuple(error.get("loc", ())))
        kind = error.get("type", "")
        if kind == "json_invalid":
            return JSONResponse(
                {"message": "Bad Request - The request body is not valid JSON."},
                status_code=400,
            )
        text = _MARSHMALLOW_STYLE.get(kind, error.get("msg", "Invalid value."))
        schema_errors.setdefault(field, []).append(text)
        if kind == "missing":
            sentences.append(f"the field '{field}' is required")
        elif kind == "extra_forbidden":
            sentences.append(f"the field '{field}' is not allowed")
        else:
            sentences.append(f"the field '{field}' is invalid: {error.get('msg')}")
    message = "Bad Request - " + "; ".join(sentences) + "."
    return JSONResponse({"message": message, "schema_errors": schema_errors}, status_code=400)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
_PARAMETER = re.compile(r"\{[^/}]+\}")


def _documented_methods(request: Request) -> list[str] | None:
    """The methods /openapi.json lists at the path template this path falls under,
    a concrete template before one with parameters (as OpenAPI matches them)."""
    best: tuple[int, list[str]] | None = None
    for template, item in request.app.openapi()["paths"].items():
        pattern = "".join(
            "[^/]+" if _PARAMETER.fullmatch(part) else re.escape(part)
            for part in re.split(r"(\{[^/}]+\})", template)
        )
        if re.fullmatch(pattern, request.url.path):
            rank = template.count("{")
            if best is None or rank < best[0]:
                best = (rank, sorted(m.upper() for m in item if m.upper() in _METHODS))
    return None if best is None else best[1]


def _allowed_methods(request: Request) -> str:
    """Every method served at this path: Starlette names only the first route's, and
    each method here is its own route."""
    documented = _documented_methods(request)
    if documented is not None:
        return ", ".join(documented)
    routes = request.app.router.routes
    return ", ".join(
        method for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
               for route in routes)
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        # Some errors carry details beside the message (e.g. a pipeline's problems).
        body = {"message": exc.message, **getattr(exc, "extra", {})}
        # Messages may quote what was sent, lone surrogates included: no JSON holds those.
        return JSONResponse(printable_nested(body), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"Not Found - No resource matches the URL {request.url.path}."
        elif exc.status_code == 405:
            message = "The method is not allowed for the requested URL."
            headers = {**(exc.headers or {}), "Allow": _allowed_methods(request)}
            return JSONResponse({"message": message}, status_code=405, headers=headers)
        else:
            message = str(exc.detail)
        return JSONResponse({"message": message}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The detail (paths, SQL, values) is for the server's log only; the id ties
        # the answer a user reports to its log entry.
        error_id = uuid.uuid4().hex[:12]
        log.error("error id %s: unhandled error on %s %s", error_id, request.method,
                  request.url.path, exc_info=exc)
        return JSONResponse(
            {"message": f"Internal server error (error id {error_id})"}, status_code=500
        )
