from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile

from dioptra.restapi import schemas
from dioptra.restapi.deps import ctx
from dioptra.restapi.openapi import errors
from dioptra.restapi.routers.uploads import saved_upload
from dioptra.restapi.schemas import DbInt
from dioptra.services import jobs, task_engine_jobs
from dioptra.services.context import ServiceContext

router = APIRouter(prefix="/api/v0/job", tags=["job"])


@router.get("/")
def list_jobs(
    status: str | None = Query(None, description="only jobs with this status"),
    experimentId: DbInt | None = Query(None, description="only jobs of this experiment"),
    queue: str | None = Query(None, description="only jobs on the queue of this name"),
    limit: int | None = Query(None, ge=1, le=10_000, description="at most this many jobs"),
    offset: int = Query(0, ge=0, le=schemas.INT64_MAX,
                        description="skip this many jobs (oldest first)"),
    c: ServiceContext = Depends(ctx),
) -> list[dict]:
    found = jobs.list_jobs(c, status, experimentId, queue, limit, offset)
    return [schemas.job(j) for j in found]


@router.post("/", responses=errors(403, 404, 507))
def submit_job(
    request: Request,
    experimentName: str = Form(..., description="name of a registered experiment"),
    queue: str = Form(..., description="name of a registered, unlocked queue"),
    entryPoint: str = Form(..., description="entry point of the MLproject"),
    workflow: UploadFile = File(..., description="tar or zip archive with an MLproject"),
    entryPointKwargs: str | None = Form(None, description='e.g. "-P eps=0.3 -P seed=1"'),
    dependsOn: str | None = Form(None, description="id of a job that must finish first"),
    timeout: str = Form("24h", description="<digits>[d|h|m|s], e.g. 1h"),
    c: ServiceContext = Depends(ctx),
) -> dict:
    with saved_upload(workflow, "workflow", c.settings.max_upload_bytes) as path:
        submission = jobs.Submission(
            experiment_name=experimentName,
            queue=queue,
            entry_point=entryPoint,
            workflow_path=path,
            workflow_filename=workflow.filename or "workflow",
            entry_point_kwargs=entryPointKwargs or None,
            depends_on=dependsOn or None,
            timeout=timeout,
        )
        return schemas.job(jobs.submit(c, submission))


@router.post("/newTaskEngine", responses=errors(403, 404, 507))
def submit_task_engine_job(body: schemas.TaskEngineJobBody, c: ServiceContext = Depends(ctx)):
    submission = task_engine_jobs.TaskEngineSubmission(
        experiment_name=body.experimentName,
        queue=body.queue,
        experiment_description=body.experimentDescription,
        global_parameters=body.globalParameters or {},
        timeout=body.timeout,
        depends_on=body.dependsOn or None,
    )
    return schemas.job(task_engine_jobs.submit(c, submission))


@router.get("/{jobId}")
def get_job(jobId: str, c: ServiceContext = Depends(ctx)) -> dict:
    return schemas.job(jobs.get(c, jobId))


@router.put("/{jobId}", responses=errors(409))
def set_job_status(jobId: str, body: schemas.StatusBody, c: ServiceContext = Depends(ctx)) -> dict:
    return schemas.job(jobs.set_status(c, jobId, body.status))


@router.get("/{jobId}/log")
def get_job_log(
    jobId: str,
    offset: int = Query(0, ge=0, le=schemas.INT64_MAX, description="characters already read"),
    c: ServiceContext = Depends(ctx),
) -> dict:
    job, text = jobs.read_log(c, jobId, offset)
    return {
        "jobId": jobId,
        "offset": offset,
        "nextOffset": offset + len(text),
        "log": text,
        "status": job.status,
    }


@router.post("/{jobId}/cancel", responses=errors(409))
def cancel_job(jobId: str, c: ServiceContext = Depends(ctx)) -> dict:
    return schemas.job(jobs.cancel(c, jobId))
