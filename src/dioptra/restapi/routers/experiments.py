from fastapi import APIRouter, Depends

from dioptra.restapi import schemas
from dioptra.restapi.deps import ctx
from dioptra.services import experiments
from dioptra.services.context import ServiceContext

router = APIRouter(prefix="/api/v0/experiment", tags=["experiment"])


@router.get("/")
def list_experiments(c: ServiceContext = Depends(ctx)) -> list[dict]:
    with c.db.session() as s:
        return [schemas.experiment(e) for e in experiments.list_experiments(s)]


@router.post("/")
def register_experiment(body: schemas.NameBody, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.experiment(experiments.create(s, c.tracking, body.name))


@router.get("/{experimentId}")
def get_experiment(experimentId: int, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.experiment(experiments.get_by_id(s, experimentId))


@router.put("/{experimentId}")
def rename_experiment(
    experimentId: int, body: schemas.NameBody, c: ServiceContext = Depends(ctx)
) -> dict:
    with c.db.session() as s:
        return schemas.experiment(experiments.rename(s, c.tracking, experimentId, body.name))


@router.delete("/{experimentId}")
def delete_experiment(experimentId: int, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        found = s.get(experiments.Experiment, experimentId)
        return {"status": "Success", "id": experiments.delete(s, c.tracking, found)}


@router.get("/name/{experimentName}")
def get_experiment_by_name(experimentName: str, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.experiment(experiments.get_by_name(s, experimentName))


@router.delete("/name/{experimentName}")
def delete_experiment_by_name(experimentName: str, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        found = experiments.find_by_name(s, experimentName)
        deleted = experiments.delete(s, c.tracking, found)
        return {"status": "Success", "name": [experimentName] if deleted else []}
