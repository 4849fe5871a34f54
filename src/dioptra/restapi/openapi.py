"""The OpenAPI document tells the truth about the answers.

FastAPI documents a 422 that this server never sends (errors.py answers 400) and no
error answer at all. Here, once for every operation: the 422 goes; 400 is documented
where the operation takes parameters or a body, 404 where its path names a resource,
401 when the server has a token, 500 always; every error
answer has the ``{"message": ...}`` shape. Answers only some routes give (403, 409,
502, 507) are declared next to the route with ``errors(...)``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

DESCRIPTIONS = {
    400: "Bad Request: a parameter or body field is missing, malformed or not allowed "
         "(the message names it)",
    401: "Unauthorized: the server has an API token and the request did not send it",
    403: "Forbidden: the queue is locked, or the worker belongs to an earlier server start",
    404: "Not Found: no resource has this id or name",
    408: "Request Timeout: the client stopped sending the body",
    409: "Conflict: the job is not claimed by this worker, or not in a state that allows it",
    413: "Content Too Large: the request body is over the server's limit",
    500: "Internal Server Error: the message holds an error id to find in the server's log",
    502: "Bad Gateway: the MLflow tracking server failed or cannot be reached",
    503: "Service Unavailable: the server's storage is read-only",
    507: "Insufficient Storage: the server's storage is full",
}


class Message(BaseModel):
    """Every error answer. ``schema_errors`` lists field problems (only on some 400s)."""

    message: str
    schema_errors: dict[str, list[str]] | None = None


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer these error codes too."""
    return {code: {"model": Message, "description": DESCRIPTIONS[code]} for code in codes}


BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                              "format": "binary"}}},
          "description": "the file's bytes"}

# A report in the format asked for: JSON (the default), CSV or a self-contained HTML page.
REPORT_FORMATS = {"content": {"application/json": {"schema": {"type": "object"}},
                              "text/csv": {"schema": {"type": "string"}},
                              "text/html": {"schema": {"type": "string"}}},
                  "description": "the report, as ``format`` asks"}


def _message_response(code: int) -> dict:
    return {
        "description": DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}},
    }


def _document_errors(spec: dict, token: bool) -> None:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Message"] = Message.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            parameters = operation.get("parameters", [])
            codes = {500}
            if parameters or "requestBody" in operation:
                codes.add(400)
            if any(p["in"] == "path" for p in parameters):
                codes.add(404)
            if "requestBody" in operation:
                codes |= {408, 413}
            if method != "get":
                codes |= {503, 507}
            if token:
                codes.add(401)
            for code in sorted(codes):
                responses.setdefault(str(code), _message_response(code))


def install(app: FastAPI, token: bool) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
            _document_errors(spec, token)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi
