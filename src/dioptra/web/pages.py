"""The web interface's pages, login and logout, and its assets.

Each page is a small HTML shell (Jinja2) whose script (static/app.js) reads and changes
everything through the public API (the v0 routes and the documented extras), so the
interface cannot drift from the API. Assets come from the project or from Python
packages (plotly's bundled plotly.js, Pygments' styles): nothing from a CDN.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import plotly
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pygments.formatters import HtmlFormatter

from dioptra.restapi.auth import SESSION_COOKIE, SESSION_TTL_S, Sessions, session_id

HERE = Path(__file__).parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

# path -> (template's page name, title)
PAGES = {
    "/": ("experiments", "Experiments"),
    "/jobs": ("jobs", "Jobs"),
    "/submit": ("submit", "Submit a job"),
    "/queues": ("queues", "Queues"),
    "/plugins": ("plugins", "Task plugins"),
    "/workers": ("workers", "Workers"),
    "/compare": ("compare", "Compare jobs"),
    "/pipelines": ("pipelines", "Pipelines"),
}
NAV = ["/", "/jobs", "/pipelines", "/submit", "/queues", "/plugins", "/workers", "/compare"]


def _render(request: Request, page: str, title: str, **extra) -> HTMLResponse:
    return templates.TemplateResponse(request, "page.html", {
        "page": page, "title": title, "nav": [(p, PAGES[p][1]) for p in NAV],
        "login": bool(request.app.state.ctx.settings.api_token), **extra,
    }, headers={"cache-control": "no-store"})


def _page_route(path: str, page: str, title: str):
    async def show(request: Request) -> HTMLResponse:
        return _render(request, page, title)

    router.add_api_route(path, show, methods=["GET"], response_class=HTMLResponse,
                         name=f"page_{page}")


for _path, (_page, _title) in PAGES.items():
    _page_route(_path, _page, _title)


@router.get("/jobs/{jobId}", response_class=HTMLResponse)
async def job_page(request: Request, jobId: str) -> HTMLResponse:
    return _render(request, "job", f"Job {jobId}", job_id=jobId)


@router.get("/pipelines/{pipelineId}", response_class=HTMLResponse)
async def pipeline_page(request: Request, pipelineId: str) -> HTMLResponse:
    return _render(request, "pipeline", f"Pipeline {pipelineId}", pipeline_id=pipelineId)


@router.get("/static/vendor/plotly.min.js")
def plotly_js() -> Response:
    return Response(PLOTLY_JS.read_bytes(), media_type="text/javascript",
                    headers={"cache-control": "max-age=86400"})


@router.get("/static/vendor/pygments.css")
def pygments_css() -> Response:
    return PlainTextResponse(HtmlFormatter(style="default").get_style_defs(".code"),
                             media_type="text/css")


def _safe_next(target: str | None) -> str:
    # Only a path on this server: never an open redirect to another site.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> Response:
    if not request.app.state.ctx.settings.api_token:
        return RedirectResponse(_safe_next(next), status_code=303)
    return templates.TemplateResponse(request, "login.html",
                                      {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
    expected = request.app.state.ctx.settings.api_token
    if not expected:
        return RedirectResponse(_safe_next(next), status_code=303)
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return templates.TemplateResponse(
            request, "login.html", {"next": _safe_next(next), "error": "That is not the token."},
            status_code=401)
    sessions: Sessions = request.app.state.sessions
    answer = RedirectResponse(_safe_next(next), status_code=303)
    # Secure where the browser keeps a Secure cookie: HTTPS, or loopback (a secure
    # context); over plain HTTP to another host it would be dropped and no login could hold.
    secure = request.url.scheme == "https" or request.url.hostname in (
        "127.0.0.1", "localhost", "::1")
    answer.set_cookie(SESSION_COOKIE, sessions.open(), max_age=int(SESSION_TTL_S),
                      httponly=True, secure=secure, samesite="strict", path="/")
    return answer


@router.post("/logout")
async def logout(request: Request) -> Response:
    sid = session_id(request.scope)
    if sid:
        request.app.state.sessions.close(sid)
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/")
    return answer


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="web-static")
