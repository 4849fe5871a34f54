"""Shared request dependencies."""

from __future__ import annotations

from fastapi import Request

from dioptra.services.context import ServiceContext


def ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


def lists(request: Request) -> dict:
    """The cached renderings of the hot list endpoints (see restapi/cache.py)."""
    return request.app.state.lists


def changed(request: Request, name: str, result: dict) -> dict:
    """Call after a write to ``name`` has committed: its cached list is stale."""
    # The renderings of one kind share its generation: one bump stales them all.
    lists(request)[name].invalidate()
    return result
