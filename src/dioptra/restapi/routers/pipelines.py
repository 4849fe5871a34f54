"""Pipelines (beyond v0, under a new path): submit, read, cancel, and their reports."""

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse

from dioptra.restapi import schemas
from dioptra.restapi.deps import ctx
from dioptra.restapi.routers.uploads import saved_upload
from dioptra.services import pipelines, reports
from dioptra.services.context import ServiceContext

router = APIRouter(prefix="/api/v0/pipeline", tags=["pipeline"])


@router.post("/")
def submit_pipeline(
    definition: str = Form(..., description="the pipeline, as YAML or JSON text"),
    workflow: UploadFile = File(..., description="tar or zip archive with an MLproject"),
    c: ServiceContext = Depends(ctx),
) -> dict:
    with saved_upload(workflow, "workflow", c.settings.max_upload_bytes) as path:
        made = pipelines.submit(c, definition, path, workflow.filename or "workflow")
    return pipelines.state(c, made.pipeline_id)


@router.get("/")
def list_pipelines(
    experimentId: int | None = Query(None, ge=0, le=schemas.INT64_MAX,
                                     description="only pipelines of this experiment"),
    c: ServiceContext = Depends(ctx),
) -> list[dict]:
    return [
        {"pipelineId": p.pipeline_id, "name": p.name, "experimentId": p.experiment_id,
         "status": p.status, "createdOn": p.created_on.isoformat(),
         "mlflowRunId": p.mlflow_run_id}
        for p in pipelines.list_pipelines(c, experimentId)
    ]


@router.get("/{pipelineId}")
def get_pipeline(pipelineId: str, c: ServiceContext = Depends(ctx)) -> dict:
    return pipelines.state(c, pipelineId)


@router.post("/{pipelineId}/cancel")
def cancel_pipeline(pipelineId: str, c: ServiceContext = Depends(ctx)) -> dict:
    return pipelines.cancel(c, pipelineId)


@router.get("/{pipelineId}/report")
def pipeline_report(pipelineId: str, c: ServiceContext = Depends(ctx)) -> dict:
    return reports.pipeline_report(c, pipelineId).as_json()


@router.get("/{pipelineId}/report.csv", response_class=PlainTextResponse)
def pipeline_report_csv(pipelineId: str, c: ServiceContext = Depends(ctx)) -> PlainTextResponse:
    report = reports.pipeline_report(c, pipelineId)
    return PlainTextResponse(report.as_csv(), media_type="text/csv")


@router.get("/{pipelineId}/report.html", response_class=HTMLResponse)
def pipeline_report_html(pipelineId: str, c: ServiceContext = Depends(ctx)) -> HTMLResponse:
    return HTMLResponse(reports.pipeline_report(c, pipelineId).as_html())
