"""Request paths as the routes expect them.

The v0 client joins the address and the API path as strings, so an address ending in
``/`` yields ``//api/v0/...``; the original server (Werkzeug) served those, so do we.
A path ending in a newline (``%0A``) is no resource: Starlette's route patterns end in
``$``, which also matches before a final newline, so ``/api/v0/job/%0A`` would be
answered as the job list.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse

_REPEATED = re.compile(r"//+")


class CollapseSlashesMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("\n"):
            message = {"message": "Not Found - No resource matches the URL."}
            await JSONResponse(message, status_code=404)(scope, receive, send)
            return
        if scope["type"] == "http" and "//" in scope["path"]:
            path = _REPEATED.sub("/", scope["path"])
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)
