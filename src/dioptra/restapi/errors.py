"""Every error leaves the server as JSON ``{"message": ...}``: mapped here, once."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dioptra.services.errors import ServiceError

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


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        # Some errors carry details beside the message (e.g. a pipeline's problems).
        body = {"message": exc.message, **getattr(exc, "extra", {})}
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"Not Found - No resource matches the URL {request.url.path}."
        elif exc.status_code == 405:
            message = "The method is not allowed for the requested URL."
        else:
            message = str(exc.detail)
        return JSONResponse({"message": message}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"message": f"Internal Server Error - {type(exc).__name__}: {exc}"},
            status_code=500,
        )
