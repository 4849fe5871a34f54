"""API extras for people and the web interface: summaries, a job's MLflow run (metrics,
artifacts) through the testbed, plugin sources, what a workflow archive offers.

New paths only: a v0 client never sees a changed response.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from starlette.concurrency import run_in_threadpool

from dioptra.restapi import schemas
from dioptra.restapi.deps import ctx
from dioptra.restapi.openapi import BINARY, errors
from dioptra.restapi.routers.uploads import saved_upload
from dioptra.services import jobs, overview, plugins, runs, workflows
from dioptra.services.context import ServiceContext

router = APIRouter(tags=["extras"])


def job_row(job, experiment_name: str, queue_name: str) -> dict:
    return {**schemas.job(job), "experimentName": experiment_name, "queueName": queue_name,
            "startedOn": schemas.iso(job.started_on), "endedOn": schemas.iso(job.ended_on),
            "reason": job.reason, "claimedBy": job.claimed_by}


@router.get("/api/v0/overview/experiments")
def experiment_summaries(c: ServiceContext = Depends(ctx)) -> list[dict]:
    """Each experiment with its number of jobs by status and its last activity."""
    with c.db.session() as s:
        return [{**schemas.experiment(row["experiment"]), "jobs": row["jobs"],
                 "lastActivity": schemas.iso(row["lastActivity"])}
                for row in overview.experiments(s)]


@router.get("/api/v0/overview/queues")
def queue_summaries(c: ServiceContext = Depends(ctx)) -> list[dict]:
    """Each queue with its lock state, queued and running jobs, and the live workers
    that serve it (``served`` is false where no worker would take its jobs)."""
    with c.db.session() as s:
        return [{**schemas.queue(row["queue"]), "locked": row["queue"].locked_on is not None,
                 "queued": row["queued"], "running": row["running"],
                 "workers": row["workers"], "served": row["served"]}
                for row in overview.queues(s, c.settings)]


@router.get("/api/v0/overview/workers")
def worker_summaries(c: ServiceContext = Depends(ctx)) -> list[dict]:
    """The live workers, their queues (null: every queue) and the jobs they run."""
    with c.db.session() as s:
        return [{"workerId": row["worker"].worker_id, "hostname": row["worker"].hostname,
                 "queues": row["queues"], "running": row["running"],
                 "firstSeen": schemas.iso(row["worker"].first_seen),
                 "lastSeen": schemas.iso(row["worker"].last_seen)}
                for row in overview.live_workers(s, c.settings)]


@router.get("/api/v0/overview/jobs")
def find_jobs(
    status: str | None = Query(None),
    experimentId: int | None = Query(None, ge=0, le=schemas.INT64_MAX),
    queue: str | None = Query(None), entryPoint: str | None = Query(None),
    text: str | None = Query(None, description="in the id, entry point, parameters, "
                             "experiment or queue name"),
    dependsOn: str | None = Query(None, description="only the children of this job"),
    jobId: str | None = Query(None, description="only this job"),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=schemas.INT64_MAX),
    c: ServiceContext = Depends(ctx),
) -> dict:
    """Jobs newest first, filtered, one page at a time, with the total."""
    with c.db.session() as s:
        total, rows = overview.find_jobs(s, status, experimentId, queue, entryPoint, text,
                                         dependsOn, limit, offset, jobId)
        return {"total": total, "offset": offset, "limit": limit,
                "jobs": [job_row(*row) for row in rows]}


@router.get("/api/v0/overview/config")
def interface_config(c: ServiceContext = Depends(ctx)) -> dict:
    """Where the MLflow UI is, for links to runs."""
    return {"mlflowUi": c.tracking.tracking_uri, "login": bool(c.settings.api_token)}


@router.post("/api/v0/workflow/entryPoints")
def workflow_entry_points(
    workflow: UploadFile = File(..., description="tar or zip archive with an MLproject"),
    c: ServiceContext = Depends(ctx),
) -> dict:
    """The entry points of an archive's MLproject and their typed parameters."""
    with saved_upload(workflow, "workflow", c.settings.max_upload_bytes) as path:
        return workflows.entry_points(path)


@router.get("/api/v0/job/{jobId}/run", responses=errors(502))
async def job_run(jobId: str, c: ServiceContext = Depends(ctx)) -> dict:
    """The job's MLflow run: parameters, latest metrics, tags (lineage: digests, seeds)."""
    job = await run_in_threadpool(jobs.get, c, jobId)
    return await run_in_threadpool(runs.summary, c.tracking, job)


@router.get("/api/v0/job/{jobId}/metrics/{key}", responses=errors(502))
async def job_metric_history(jobId: str, key: str, c: ServiceContext = Depends(ctx)) -> list:
    """Every value of one metric of the job's run, by step."""
    job = await run_in_threadpool(jobs.get, c, jobId)
    return await run_in_threadpool(runs.metric_history, c.tracking, job, key)


@router.get("/api/v0/job/{jobId}/artifacts", responses=errors(502))
async def job_artifacts(jobId: str, path: str = Query(""),
                        c: ServiceContext = Depends(ctx)) -> list:
    """The artifacts of the job's run in one folder (``path``, empty for the top)."""
    job = await run_in_threadpool(jobs.get, c, jobId)
    return await run_in_threadpool(runs.list_artifacts, c.tracking, job, path)


@router.get("/api/v0/job/{jobId}/artifact", responses={
    **errors(502), 200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                         "description": "the file's bytes, with its media type"}})
async def job_artifact(jobId: str, path: str = Query(...), download: bool = Query(False),
                       c: ServiceContext = Depends(ctx)) -> Response:
    """One artifact file of the job's run."""
    job = await run_in_threadpool(jobs.get, c, jobId)
    data, media, name = await run_in_threadpool(runs.read_artifact, c.tracking, job, path)
    disposition = "attachment" if download else "inline"
    return Response(data, media_type=media, headers={
        "content-disposition": f'{disposition}; filename="{name}"',
        "x-content-type-options": "nosniff",
        # An artifact is whatever a job wrote: it must not run scripts on our origin.
        "content-security-policy": "sandbox",
    })


@router.get("/api/v0/job/{jobId}/workflow", responses={200: BINARY})
def job_workflow(jobId: str, c: ServiceContext = Depends(ctx)) -> Response:
    """The workflow archive the job was submitted with (to re-run it)."""
    job = jobs.get(c, jobId)
    return Response(c.store.get_bytes(job.workflow_uri), media_type="application/octet-stream",
                    headers={"content-disposition": 'attachment; filename="workflow.tar.gz"'})


@router.get("/api/v0/taskPlugin/{collection}/{taskPluginName}/source")
def plugin_source(collection: str, taskPluginName: str, module: str = Query(...),
                  c: ServiceContext = Depends(ctx)) -> dict:
    """One module's source, highlighted (HTML), and the task plugins it registers."""
    source = plugins.module_source(c.store, collection, taskPluginName, module)
    html = highlight(source, PythonLexer(), HtmlFormatter(cssclass="code", linenos="table"))
    return {"module": module, "source": source, "html": html,
            "functions": plugins.registered_functions(source)}
