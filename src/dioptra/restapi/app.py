"""The FastAPI application: routers, error mapping, token check, OpenAPI docs."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import fastapi_offline
from fastapi import Depends, FastAPI, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from dioptra import __version__
from dioptra.dispatch.wakeup import WakeUp
from dioptra.generations import EXPERIMENTS, QUEUES, Generations
from dioptra.restapi import errors, openapi, storage_errors
from dioptra.restapi.auth import BearerTokenMiddleware, JobTokens, Sessions
from dioptra.restapi.cache import Rendered, RenderedList
from dioptra.restapi.inputs import storable_parameters
from dioptra.restapi.limits import RequestLimitsMiddleware
from dioptra.restapi.mlflow_proxy import MLflowProxyMiddleware
from dioptra.restapi.routers import (
    experiments,
    extras,
    jobs,
    pipelines,
    plugins,
    queues,
    reports,
    workers,
)
from dioptra.restapi.slashes import CollapseSlashesMiddleware
from dioptra.services import job_tokens
from dioptra.services.context import ServiceContext
from dioptra.web import pages

DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"


def create_app(ctx: ServiceContext, wakeup: WakeUp, on_startup=None, on_shutdown=None,
               mlflow_socket: str | None = None, generations: Generations | None = None,
               sessions: Sessions | None = None) -> FastAPI:
    """``mlflow_socket``: the private MLflow server to serve under /mlflow (its UI and
    REST API, behind the token check like everything else). ``generations`` and
    ``sessions``: shared with the server's other API processes (default: this one's)."""
    generations = generations or wakeup.generations

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        wakeup.bind(asyncio.get_running_loop())
        if on_startup:
            await asyncio.get_running_loop().run_in_executor(None, on_startup)
        yield
        await wakeup.unbind()
        if on_shutdown:
            await asyncio.get_running_loop().run_in_executor(None, on_shutdown)

    app = FastAPI(
        title="Dioptra REST API",
        version=__version__,
        description="A testbed for the security of machine-learning models, compatible "
        "with Dioptra's v0 REST API. Worker endpoints are under /api/v0/worker.",
        docs_url=None,  # served below from local files: no CDN needed offline
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        dependencies=[Depends(storable_parameters)],
    )
    app.state.ctx = ctx
    app.state.wakeup = wakeup
    app.state.shutting_down = False
    app.state.lists = {
        "queues": RenderedList(lambda: queues.render_list(ctx), generations, QUEUES),
        "queue_items": Rendered(lambda: queues.render_index(ctx), generations, QUEUES),
        "experiments": RenderedList(lambda: experiments.render_list(ctx), generations,
                                    EXPERIMENTS),
    }
    errors.install(app)
    storage_errors.install(app)
    openapi.install(app, token=bool(ctx.settings.api_token))
    for module in (experiments, queues, jobs, plugins, workers, extras, pipelines, reports):
        app.include_router(module.router)

    @app.get("/health", tags=["health"])
    async def health(response: Response) -> str:
        # The body stays Dioptra v0's; the MLflow side (it starts in the background)
        # is told in a header: starting, ready or failed.
        response.headers["X-MLflow-State"] = ctx.tracking.readiness.state
        return "healthy"

    # Swagger UI 5 (it renders OpenAPI 3.1, which FastAPI emits) and ReDoc, from the
    # files that the fastapi-offline package ships: no CDN, so the docs work offline.
    app.mount("/docs-static", StaticFiles(directory=str(DOCS_ASSETS)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Dioptra REST API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="Dioptra REST API",
            redoc_js_url="/docs-static/redoc.standalone.js",
            redoc_favicon_url="/docs-static/favicon.png",
            with_google_fonts=False,
        )

    pages.install(app)  # the web interface, at /

    app.state.sessions = sessions or Sessions()
    if mlflow_socket:
        app.add_middleware(MLflowProxyMiddleware, socket_path=mlflow_socket,
                           readiness=ctx.tracking.readiness)
    if ctx.settings.api_token:
        # Jobs get tokens of their own for the MLflow behind this server (and nothing else).
        job_checks = JobTokens(ctx.settings.api_token, partial(job_tokens.is_active, ctx)) \
            if mlflow_socket else None
        app.add_middleware(BearerTokenMiddleware, token=ctx.settings.api_token,
                           jobs=job_checks, sessions=app.state.sessions)
    # Outside the token check: an oversized or stalled body is refused before anything.
    app.add_middleware(RequestLimitsMiddleware, settings=ctx.settings)
    app.add_middleware(CollapseSlashesMiddleware)  # outermost: before routing and auth
    return app
