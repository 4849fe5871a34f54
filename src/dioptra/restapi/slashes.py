"""Collapse repeated slashes in request paths.

The v0 client joins the address and the API path as strings, so an address ending in
``/`` yields ``//api/v0/...``; the original server (Werkzeug) served those, so do we.
"""

from __future__ import annotations

import re

_REPEATED = re.compile(r"//+")


class CollapseSlashesMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            path = _REPEATED.sub("/", scope["path"])
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)
