"""Pipelines: a definition of stages (dioptra.contract.pipeline) carried out as ordinary jobs.

Every job of a pipeline is made at submission: the first stages' jobs queued, the others
``deferred``. When a job ends, ``job_ended`` (called by the job lifecycle) releases each
deferred job whose parents have all finished, with the references to its ancestors' run
ids and parameters resolved, or fails it when a parent failed. The pipeline ends when
its last job ends; then its MLflow run (the parent of every job's run) is closed and its
report logged there.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shlex
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dioptra.archives import ArchiveError, safe_extract
from dioptra.contract import pipeline as spec
from dioptra.contract.mlproject import MLprojectError, Project, find_project_dir, load_project
from dioptra.contract.status import ENDED_STATUSES, JobStatus
from dioptra.db.models import Job, Pipeline, PipelineJob, utcnow
from dioptra.services import experiments, jobs, logs, names, queues
from dioptra.services.context import ServiceContext
from dioptra.services.errors import BadGateway, BadRequest, NotFound, ServiceError
from dioptra.services.lifecycle import Transitions
from dioptra.timeouts import parse_timeout

log = logging.getLogger("dioptra.pipelines")

NOT_FOUND = "The requested pipeline does not exist"
# A pipeline that ended this long ago with no report logged lost its finalizer (restart).
_FINALIZE_GRACE = dt.timedelta(seconds=30)


class InvalidPipeline(BadRequest):
    """Every problem of a submitted pipeline at once (the 400 lists them)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("The pipeline is not valid: " + "; ".join(problems))
        self.extra = {"problems": problems}


@dataclass
class Created:
    job_id: str
    queue: str
    timeout_seconds: int


# -- submission -----------------------------------------------------------------------------

def _load_project(archive: Path, tmp: Path, problems: list[str]) -> Project | None:
    try:
        safe_extract(archive, tmp)
        return load_project(find_project_dir(tmp))
    except ArchiveError as exc:
        problems.append(f"the workflow archive was rejected: {exc}")
    except MLprojectError as exc:
        problems.append(f"the workflow's MLproject is not usable: {exc}")
    return None


def _names(data: dict | None) -> tuple[str | None, list[str]]:
    """The experiment and queue names a loaded definition gives, even when it is not
    valid, so that one answer lists every problem."""
    if data is None:
        return None, []
    experiment = data.get("experiment")
    stages = data.get("stages") if isinstance(data.get("stages"), dict) else {}
    named = [s.get("queue") if isinstance(s, dict) else None for s in stages.values()]
    if any(q is None for q in named) or not named:
        named.append(data.get("queue"))
    queue_names = [q for q in dict.fromkeys(named) if isinstance(q, str) and q]
    return (experiment if isinstance(experiment, str) else None), queue_names


def _kwargs_text(params: dict[str, str]) -> str | None:
    return " ".join(f"-P {shlex.quote(f'{k}={v}')}" for k, v in params.items()) or None


def submit(ctx: ServiceContext, definition: str, workflow_path: Path, workflow_filename: str
           ) -> Pipeline:
    """Check everything, then make the pipeline, its MLflow run and all of its jobs."""
    try:
        data = spec.load(definition)
    except spec.PipelineError:
        data = None  # parsing says why, with the rest below
    unstorable = names.nested_text_problem(data)
    if unstorable:  # a JSON definition may escape one ("\ud800"): nothing could store it
        raise InvalidPipeline([f"the definition {unstorable}"])
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dioptra-pipeline-") as tmp:
        project = _load_project(workflow_path, Path(tmp), problems)
        try:
            pipeline = spec.parse(definition if data is None else data, project)
        except spec.PipelineError as exc:
            problems.extend(exc.problems)
            pipeline = None
    timeouts: dict[str, int] = {}
    for stage in pipeline.stages.values() if pipeline else ():
        try:
            timeouts[stage.name] = parse_timeout(pipeline.timeout_of(stage))
        except ValueError as exc:
            problems.append(f"stage {stage.name!r}: the timeout is invalid: {exc}")
    experiment_name, queue_names = _names(data)
    with ctx.db.session() as session:
        if experiment_name:
            found = experiments.find_by_name(session, experiment_name)
            if found is None:
                problems.append(f"the experiment {experiment_name!r} is not registered")
            else:
                experiment_id = found.experiment_id
        queue_ids: dict[str, int] = {}
        for name in queue_names:
            try:
                queue_ids[name] = queues.get_for_submission(session, name).queue_id
            except ServiceError as exc:
                state = "locked" if "locked" in exc.message else "not registered"
                problems.append(f"the queue {name!r} is {state}")
    if problems:
        raise InvalidPipeline(problems)

    pipeline_id = str(uuid.uuid4())
    uri = (f"s3://{jobs.WORKFLOW_BUCKET}/{uuid.uuid4().hex}/"
           f"{jobs.secure_filename(workflow_filename)}")
    ctx.store.put_file(uri, workflow_path)
    sha256 = jobs._file_sha256(workflow_path)
    run_id = _create_run(ctx, pipeline, pipeline_id, experiment_id)
    ready: list[Created] = []
    try:
        with ctx.db.session() as session:
            now = utcnow()
            session.add(Pipeline(
                pipeline_id=pipeline_id, name=pipeline.name, experiment_id=experiment_id,
                definition=json.dumps(pipeline.source), workflow_uri=uri, status="started",
                mlflow_run_id=run_id, created_on=now, last_modified=now))
            session.flush()
            made: dict[str, list[str]] = {}
            for stage in pipeline.stages.values():
                queue_name = pipeline.queue_of(stage)
                if stage.after:
                    groups = [[parent] for parent in made[stage.after]]
                elif stage.after_all:
                    groups = [[j for s in stage.after_all for j in made[s]]]
                else:
                    groups = [[]]
                made[stage.name] = []
                position = 0
                for parents in groups:
                    for point in stage.points():
                        params = {**spec.defaults(project, point.entry_point), **point.params}
                        job = Job(
                            job_id=str(uuid.uuid4()), experiment_id=experiment_id,
                            queue_id=queue_ids[queue_name], created_on=now, last_modified=now,
                            timeout=pipeline.timeout_of(stage),
                            timeout_seconds=timeouts[stage.name], workflow_uri=uri,
                            workflow_sha256=sha256, entry_point=point.entry_point,
                            entry_point_kwargs=_kwargs_text(params),
                            status=JobStatus.DEFERRED if parents else JobStatus.QUEUED)
                        session.add(job)
                        session.add(PipelineJob(
                            job_id=job.job_id, pipeline_id=pipeline_id, stage=stage.name,
                            position=position, params=json.dumps(params),
                            varying=json.dumps(point.varying), parents=json.dumps(parents),
                            resolved=None if parents else json.dumps(params)))
                        session.flush()
                        position += 1
                        made[stage.name].append(job.job_id)
                        logs.note(session, job.job_id,
                                  f"job submitted to queue '{queue_name}' by pipeline "
                                  f"'{pipeline.name}' ({pipeline_id}), stage '{stage.name}'")
                        if parents:
                            logs.note(session, job.job_id,
                                      f"waiting for {len(parents)} job(s) of stage(s) "
                                      f"{', '.join(stage.parents)}")
                        else:
                            ready.append(Created(job.job_id, queue_name,
                                                 timeouts[stage.name]))
    except Exception:
        ctx.store.delete(uri)
        _close_run(ctx, run_id, "failed")
        raise
    for created in ready:
        ctx.dispatcher.job_ready(created.job_id, created.queue, created.timeout_seconds)
    return get(ctx, pipeline_id)


def _create_run(ctx: ServiceContext, pipeline: spec.Pipeline, pipeline_id: str,
                experiment_id: int) -> str:
    """The pipeline's MLflow run: the parent under which each job's run is nested."""
    try:
        run = ctx.tracking.client.create_run(
            str(experiment_id), run_name=pipeline.name,
            tags={"dioptra.pipelineId": pipeline_id, "dioptra.pipeline": pipeline.name,
                  "mlflow.note.content": pipeline.description or f"pipeline {pipeline.name}"})
        ctx.tracking.client.log_text(run.info.run_id, yaml.safe_dump(
            pipeline.source, sort_keys=False), "pipeline.yaml")
    except Exception as exc:  # noqa: BLE001 - MLflow's errors are many kinds
        raise BadGateway(f"The pipeline's MLflow run could not be created: {exc}") from exc
    return run.info.run_id


def _close_run(ctx: ServiceContext, run_id: str | None, status: str) -> None:
    if not run_id:
        return
    try:
        ctx.tracking.client.set_terminated(run_id, "FINISHED" if status == "finished"
                                           else "FAILED")
    except Exception:  # noqa: BLE001 - the pipeline's state is ours; MLflow's is a copy
        log.exception("could not close the MLflow run %s of a pipeline", run_id)


# -- reading --------------------------------------------------------------------------------

def get(ctx: ServiceContext, pipeline_id: str) -> Pipeline:
    with ctx.db.session() as session:
        return _get(session, pipeline_id)


def _get(session: Session, pipeline_id: str) -> Pipeline:
    try:
        pipeline_id = str(uuid.UUID(pipeline_id))
    except ValueError:
        raise NotFound(NOT_FOUND) from None
    found = session.get(Pipeline, pipeline_id)
    if found is None:
        raise NotFound(NOT_FOUND)
    return found


def list_pipelines(ctx: ServiceContext, experiment_id: int | None = None) -> list[Pipeline]:
    query = select(Pipeline).order_by(Pipeline.created_on, Pipeline.pipeline_id)
    if experiment_id is not None:
        query = query.where(Pipeline.experiment_id == experiment_id)
    with ctx.db.session() as session:
        return list(session.scalars(query))


@dataclass
class Member:
    """A job of a pipeline as the state and the report see it."""

    job: Job
    link: PipelineJob

    @property
    def parents(self) -> list[str]:
        return json.loads(self.link.parents)

    @property
    def params(self) -> dict[str, str]:
        return json.loads(self.link.resolved or self.link.params)

    @property
    def varying(self) -> dict[str, str]:
        return json.loads(self.link.varying)


def members(session: Session, pipeline: Pipeline) -> list[Member]:
    """The pipeline's jobs, stage by stage in definition order, then by position."""
    order = {name: i for i, name in enumerate(definition(pipeline).stages)}
    rows = session.execute(
        select(Job, PipelineJob).join(PipelineJob, PipelineJob.job_id == Job.job_id)
        .where(PipelineJob.pipeline_id == pipeline.pipeline_id)).all()
    found = [Member(job, link) for job, link in rows]
    found.sort(key=lambda m: (order.get(m.link.stage, len(order)), m.link.position))
    return found


def definition(pipeline: Pipeline) -> spec.Pipeline:
    return spec.parse(pipeline.definition)


def state(ctx: ServiceContext, pipeline_id: str) -> dict:
    """The pipeline, its stages with job counts by status, and its jobs."""
    with ctx.db.session() as session:
        pipeline = _get(session, pipeline_id)
        found = members(session, pipeline)
    parsed = definition(pipeline)
    stages = []
    for stage in parsed.stages.values():
        counts: dict[str, int] = {}
        for m in found:
            if m.link.stage == stage.name:
                counts[m.job.status] = counts.get(m.job.status, 0) + 1
        stages.append({
            "name": stage.name, "entryPoints": list(stage.entry_points),
            "after": stage.after, "afterAll": list(stage.after_all),
            "total": sum(counts.values()), "counts": counts})
    return {
        "pipelineId": pipeline.pipeline_id,
        "name": pipeline.name,
        "experimentId": pipeline.experiment_id,
        "status": pipeline.status,
        "reason": pipeline.reason,
        "mlflowRunId": pipeline.mlflow_run_id,
        "createdOn": pipeline.created_on.isoformat(),
        "endedOn": pipeline.ended_on.isoformat() if pipeline.ended_on else None,
        "reportLogged": pipeline.finalized_on is not None,
        "stages": stages,
        "jobs": [{"jobId": m.job.job_id, "stage": m.link.stage, "status": m.job.status,
                  "entryPoint": m.job.entry_point, "mlflowRunId": m.job.mlflow_run_id,
                  "varying": m.varying, "parents": m.parents} for m in found],
        "definition": json.loads(pipeline.definition),
    }


# -- the lifecycle hook ---------------------------------------------------------------------

def run_tags(session: Session, job_id: str) -> dict[str, str]:
    """MLflow tags for a pipeline job's run: nested under the pipeline's run."""
    row = session.execute(
        select(PipelineJob, Pipeline).join(Pipeline, Pipeline.pipeline_id ==
                                           PipelineJob.pipeline_id)
        .where(PipelineJob.job_id == job_id)).first()
    if row is None:
        return {}
    link, pipeline = row
    varying = " ".join(f"{k}={v}" for k, v in json.loads(link.varying).items())
    tags = {"dioptra.pipelineId": pipeline.pipeline_id, "dioptra.pipeline": pipeline.name,
            "dioptra.stage": link.stage,
            "mlflow.runName": f"{link.stage} {varying}".strip()}
    if pipeline.mlflow_run_id:
        tags["mlflow.parentRunId"] = pipeline.mlflow_run_id
    return tags


def job_ended(ctx: ServiceContext, job_id: str) -> None:
    """Called by the job lifecycle after ``job_id`` ended (idempotent): release or fail the
    jobs waiting for it, and end the pipeline with its last job."""
    moves = Transitions()
    with ctx.db.session() as session:
        link = session.get(PipelineJob, job_id)
        if link is None:
            return
        # One settler per pipeline at a time (PostgreSQL): two parents of a fan-in ending
        # together must not both miss, or both release, the job waiting for them.
        pipeline = session.get(Pipeline, link.pipeline_id, with_for_update=True)
        everyone = {m.job.job_id: m for m in members(session, pipeline)}
        for member in everyone.values():
            if member.job.status != JobStatus.DEFERRED or job_id not in member.parents:
                continue
            parents = [everyone[p] for p in member.parents]
            broken = [p for p in parents if p.job.status == JobStatus.FAILED]
            if broken:
                first = broken[0]
                moves.move(session, member.job, JobStatus.FAILED,
                           f"dependency {first.job.job_id} (stage '{first.link.stage}') failed "
                           f"({first.job.reason or 'no reason given'})")
            elif all(p.job.status == JobStatus.FINISHED for p in parents):
                try:
                    params = _resolve(member, everyone)
                except ValueError as exc:
                    moves.move(session, member.job, JobStatus.FAILED,
                               f"cannot release the job: {exc}")
                    continue
                _release(session, moves, member, params)
    # Dispatch the released jobs; the failed ones' own dependents come back here.
    moves.follow_up(ctx)
    _end_if_done(ctx, link.pipeline_id)


def _ancestors(member: Member, everyone: dict[str, Member]) -> list[Member]:
    seen: dict[str, Member] = {}
    frontier = list(member.parents)
    while frontier:
        job_id = frontier.pop()
        if job_id in seen:
            continue
        seen[job_id] = everyone[job_id]
        frontier.extend(seen[job_id].parents)
    return sorted(seen.values(), key=lambda m: (m.job.created_on, m.link.position))


def _resolve(member: Member, everyone: dict[str, Member]) -> dict[str, str]:
    ancestors = _ancestors(member, everyone)

    def lookup(ref: spec.Reference) -> str:
        of_stage = [a for a in ancestors if a.link.stage == ref.stage]
        if not of_stage:
            raise ValueError(f"{ref.text}: no job of stage '{ref.stage}' comes before it")
        if ref.what == "runIds":
            missing = [a.job.job_id for a in of_stage if not a.job.mlflow_run_id]
            if missing:
                raise ValueError(f"{ref.text}: job {missing[0]} has no MLflow run id")
            return ",".join(a.job.mlflow_run_id for a in of_stage)
        if len(of_stage) > 1:
            raise ValueError(f"{ref.text}: it comes after {len(of_stage)} jobs of that stage")
        parent = of_stage[0]
        if ref.what == "jobId":
            return parent.job.job_id
        if ref.what == "runId":
            if not parent.job.mlflow_run_id:
                raise ValueError(f"{ref.text}: job {parent.job.job_id} has no MLflow run id")
            return parent.job.mlflow_run_id
        if ref.param not in parent.params:
            raise ValueError(f"{ref.text}: job {parent.job.job_id} has no parameter "
                             f"{ref.param!r}")
        return parent.params[ref.param]

    return {key: spec.resolve(value, lookup) for key, value in member.params.items()}


def _release(session: Session, moves: Transitions, member: Member, params: dict[str, str]
             ) -> None:
    """deferred -> queued, with the references in its parameters resolved."""
    kwargs = _kwargs_text(params)
    member.job.entry_point_kwargs = kwargs
    member.link.resolved = json.dumps(params)
    moves.move(session, member.job, JobStatus.QUEUED,
               f"the jobs it comes after finished; parameters {kwargs or 'none'}")


def _end_if_done(ctx: ServiceContext, pipeline_id: str) -> None:
    with ctx.db.session() as session:
        open_jobs = session.scalar(
            select(func.count()).select_from(Job)
            .join(PipelineJob, PipelineJob.job_id == Job.job_id)
            .where(PipelineJob.pipeline_id == pipeline_id, Job.status.not_in(ENDED_STATUSES)))
        if open_jobs:
            return
        failed = session.scalar(
            select(func.count()).select_from(Job)
            .join(PipelineJob, PipelineJob.job_id == Job.job_id)
            .where(PipelineJob.pipeline_id == pipeline_id, Job.status == JobStatus.FAILED))
        status = "failed" if failed else "finished"
        now = utcnow()
        result = session.execute(
            update(Pipeline).where(Pipeline.pipeline_id == pipeline_id,
                                   Pipeline.status == "started")
            .values(status=status, ended_on=now, last_modified=now,
                    reason=func.coalesce(Pipeline.reason,
                                         f"{failed} job(s) failed" if failed else None)))
        if result.rowcount != 1:
            return
    threading.Thread(target=finalize, args=(ctx, pipeline_id), name="pipeline-report",
                     daemon=True).start()


def finalize(ctx: ServiceContext, pipeline_id: str) -> None:
    """Close the ended pipeline's MLflow run with its report as artifacts (once)."""
    with ctx.db.session() as session:
        pipeline = _get(session, pipeline_id)
        if pipeline.status == "started" or pipeline.finalized_on is not None:
            return
    try:
        from dioptra.services import reports  # matplotlib and MLflow reads: only here

        reports.log_pipeline_report(ctx, pipeline_id)
    except Exception:  # noqa: BLE001 - a report that cannot be made must not stop the rest
        log.exception("the report of pipeline %s could not be logged", pipeline_id)
    _close_run(ctx, pipeline.mlflow_run_id, pipeline.status)
    with ctx.db.session() as session:
        session.execute(update(Pipeline).where(Pipeline.pipeline_id == pipeline_id)
                        .values(finalized_on=utcnow()))


def finalize_pending(ctx: ServiceContext) -> None:
    """For the reaper: finalize pipelines that ended while no finalizer ran (a restart)."""
    with ctx.db.session() as session:
        pending = session.scalars(select(Pipeline.pipeline_id).where(
            Pipeline.status != "started", Pipeline.finalized_on.is_(None),
            Pipeline.ended_on < utcnow() - _FINALIZE_GRACE)).all()
    for pipeline_id in pending:
        finalize(ctx, pipeline_id)


def recover(ctx: ServiceContext) -> None:
    """After a restart: settle the waiting jobs of pipelines whose parents ended while
    the server was down (or before their hook ran), and end what is done."""
    with ctx.db.session() as session:
        waiting = session.scalars(
            select(PipelineJob.parents).join(Job, Job.job_id == PipelineJob.job_id)
            .where(Job.status == "deferred")).all()
        parents = {p for text in waiting for p in json.loads(text)}
        ended = session.scalars(select(Job.job_id).where(
            Job.job_id.in_(parents), Job.status.in_(ENDED_STATUSES))).all() if parents else []
        started = session.scalars(select(Pipeline.pipeline_id).where(
            Pipeline.status == "started")).all()
    for job_id in ended:
        job_ended(ctx, job_id)
    for pipeline_id in started:
        _end_if_done(ctx, pipeline_id)


# -- cancel ---------------------------------------------------------------------------------

def cancel(ctx: ServiceContext, pipeline_id: str) -> dict:
    """Cancel every job of the pipeline that has not ended (the waiting ones first)."""
    with ctx.db.session() as session:
        pipeline = _get(session, pipeline_id)
        if pipeline.status != "started":
            raise BadRequest(f"The pipeline has already ended with status '{pipeline.status}'.")
        pipeline.reason = "cancelled"
        pipeline.last_modified = utcnow()
        open_ids = [m.job.job_id for m in reversed(members(session, pipeline))
                    if m.job.status not in ENDED_STATUSES]
    for job_id in open_ids:
        try:
            jobs.cancel(ctx, job_id)
        except BadRequest:
            pass  # it ended meanwhile (failed with the job it came after, say)
    return state(ctx, pipeline_id)
