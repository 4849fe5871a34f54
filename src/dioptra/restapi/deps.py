"""Shared request dependencies."""

from __future__ import annotations

from fastapi import Request

from dioptra.services.context import ServiceContext


def ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx
