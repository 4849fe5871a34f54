"""The worker API (see docs/ARCHITECTURE.md): how workers take and report jobs."""

import json
import time
from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from dioptra.contract.messages import JobAnswer, JobSpec
from dioptra.restapi import schemas
from dioptra.restapi.deps import ctx
from dioptra.restapi.openapi import BINARY, errors
from dioptra.services import jobs, plugins, worker_protocol, workers
from dioptra.services.context import ServiceContext
from dioptra.services.errors import NotFound
from dioptra.storage import ObjectNotFound

router = APIRouter(prefix="/api/v0/worker", tags=["worker"])
MAX_WAIT_S = 30.0
_CHUNK = 1 << 20


@router.get("/")
def list_workers(c: ServiceContext = Depends(ctx)) -> list[dict]:
    with c.db.session() as s:
        return [
            {
                "workerId": w.worker_id,
                "hostname": w.hostname,
                "queues": None if w.queues is None else json.loads(w.queues),
                "firstSeen": schemas.iso(w.first_seen),
                "lastSeen": schemas.iso(w.last_seen),
            }
            for w in workers.list_live(s, c.settings)
        ]


@router.post("/heartbeat", responses=errors(403))
def worker_heartbeat(body: schemas.WorkerHeartbeatBody, c: ServiceContext = Depends(ctx)) -> dict:
    workers.refuse_strangers(c.embedded_instance, body.worker_id)
    with c.db.session() as s:
        workers.touch(s, body.worker_id, body.queues, body.hostname)
    return {"status": "ok"}


@router.post("/claim", responses={
    **errors(403),
    200: {"description": "the spec of the claimed job", "model": JobSpec},
    204: {"description": "no job was claimed within `wait` seconds"},
})
async def claim(body: schemas.ClaimBody, request: Request) -> Response:
    c: ServiceContext = request.app.state.ctx
    wakeup = request.app.state.wakeup
    workers.refuse_strangers(c.embedded_instance, body.worker_id)
    deadline = time.monotonic() + min(max(body.wait, 0.0), MAX_WAIT_S)
    while True:
        event = wakeup.current()
        spec = await run_in_threadpool(
            worker_protocol.claim, c, body.worker_id, body.queues, body.job_id
        )
        if spec is not None:
            return Response(content=json.dumps(spec.wire()), media_type="application/json")
        remaining = deadline - time.monotonic()
        if (body.job_id is not None or remaining <= 0 or request.app.state.shutting_down
                or await request.is_disconnected()):
            return Response(status_code=204)
        await wakeup.wait(event, min(remaining, 5.0))


def _stream(stream: BinaryIO) -> Iterator[bytes]:
    """The object in pieces: an archive is never held in memory whole."""
    with stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


@router.get("/jobs/{jobId}/workflow", response_class=Response, responses={200: BINARY})
def download_workflow(jobId: str, c: ServiceContext = Depends(ctx)) -> Response:
    job = jobs.get(c, jobId)
    return StreamingResponse(_stream(c.store.open_read(job.workflow_uri)),
                             media_type="application/octet-stream")


@router.get("/plugins/{name}", response_class=Response, responses={200: {
    "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
    "description": "the package as a .tar.gz"}})
def download_plugin(name: str, c: ServiceContext = Depends(ctx)) -> Response:
    try:
        stream = c.store.open_read(plugins.packed_uri(name))
    except ObjectNotFound:
        raise NotFound(plugins.NOT_FOUND) from None
    return StreamingResponse(_stream(stream), media_type="application/gzip")


@router.post("/jobs/{jobId}/report", responses=errors(409))
def report(jobId: str, body: schemas.ReportBody, c: ServiceContext = Depends(ctx)) -> dict:
    cancel = worker_protocol.report(
        c, jobId, body.worker_id, body.mlflow_run_id, body.status, body.reason
    )
    return JobAnswer(cancel_requested=cancel).wire()


@router.post("/jobs/{jobId}/heartbeat", responses=errors(409))
def job_heartbeat(jobId: str, body: schemas.WorkerIdBody, c: ServiceContext = Depends(ctx)) -> dict:
    cancel = worker_protocol.heartbeat(c, jobId, body.worker_id)
    return JobAnswer(cancel_requested=cancel).wire()


@router.post("/jobs/{jobId}/log", responses=errors(409), openapi_extra={"requestBody": {
    "required": True, "description": "text the entry point printed, UTF-8",
    "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def append_log(
    jobId: str, request: Request,
    worker_id: str = Header("", alias="X-Dioptra-Worker-Id",
                            description="the worker that claimed the job"),
) -> dict:
    c: ServiceContext = request.app.state.ctx
    text = (await request.body()).decode("utf-8", errors="replace")
    size = await run_in_threadpool(worker_protocol.append_log, c, jobId, worker_id, text)
    return {"size": size}
