"""Reports over any jobs (beyond v0, a new path): an experiment's, an entry point's."""

from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from dioptra.restapi import schemas
from dioptra.restapi.deps import ctx
from dioptra.restapi.openapi import REPORT_FORMATS
from dioptra.services import reports
from dioptra.services.context import ServiceContext

router = APIRouter(prefix="/api/v0/report", tags=["report"])


def render(report: reports.Report, fmt: str) -> Response | dict:
    if fmt == "csv":
        return PlainTextResponse(report.as_csv(), media_type="text/csv")
    if fmt == "html":
        return HTMLResponse(report.as_html())
    return report.as_json()


@router.get("/", responses={200: REPORT_FORMATS})
def jobs_report(
    experimentId: int | None = Query(None, ge=0, le=schemas.INT64_MAX,
                                     description="jobs of this experiment"),
    entryPoint: str | None = Query(None, description="jobs of this entry point"),
    status: str | None = Query("finished", description="jobs with this status"),
    format: Literal["json", "csv", "html"] = Query("json", description="json, csv or html"),
    c: ServiceContext = Depends(ctx),
):
    return render(reports.jobs_report(c, experimentId, entryPoint, status or None), format)
