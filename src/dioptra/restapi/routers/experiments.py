import json

from fastapi import APIRouter, Depends, Request, Response

from dioptra.restapi import schemas
from dioptra.restapi.deps import changed, ctx, lists
from dioptra.restapi.openapi import errors
from dioptra.restapi.schemas import DbInt
from dioptra.services import experiments
from dioptra.services.context import ServiceContext

router = APIRouter(prefix="/api/v0/experiment", tags=["experiment"])


def render_list(c: ServiceContext) -> bytes:
    with c.db.session() as s:
        found = [schemas.experiment(e) for e in experiments.list_experiments(s)]
    return json.dumps(found, separators=(",", ":")).encode()


@router.get("/", response_model=list[schemas.ExperimentOut])
async def list_experiments(request: Request) -> Response:
    """The experiments, by id (served from a cache that every change refreshes)."""
    return await lists(request)["experiments"].response()


@router.post("/", responses=errors(502))
def register_experiment(
    body: schemas.NameBody, request: Request, c: ServiceContext = Depends(ctx)
) -> dict:
    with c.db.session() as s:
        result = schemas.experiment(experiments.create(s, c.tracking, body.name))
    return changed(request, "experiments", result)


@router.get("/{experimentId}")
def get_experiment(experimentId: DbInt, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.experiment(experiments.get_by_id(s, experimentId))


@router.put("/{experimentId}", responses=errors(502))
def rename_experiment(
    experimentId: DbInt, body: schemas.NameBody, request: Request,
    c: ServiceContext = Depends(ctx),
) -> dict:
    with c.db.session() as s:
        result = schemas.experiment(
            experiments.rename(s, c.tracking, experimentId, body.name))
    return changed(request, "experiments", result)


@router.delete("/{experimentId}", responses=errors(502))
def delete_experiment(experimentId: DbInt, request: Request, c: ServiceContext = Depends(ctx)
                      ) -> dict:
    with c.db.session() as s:
        found = s.get(experiments.Experiment, experimentId)
        deleted = experiments.delete(s, c.tracking, found)
    return changed(request, "experiments", {"status": "Success", "id": deleted})


@router.get("/name/{experimentName}")
def get_experiment_by_name(experimentName: str, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.experiment(experiments.get_by_name(s, experimentName))


@router.delete("/name/{experimentName}", responses=errors(502))
def delete_experiment_by_name(
    experimentName: str, request: Request, c: ServiceContext = Depends(ctx)
) -> dict:
    with c.db.session() as s:
        found = experiments.find_by_name(s, experimentName)
        deleted = experiments.delete(s, c.tracking, found)
    result = {"status": "Success", "name": [experimentName] if deleted else []}
    return changed(request, "experiments", result)
