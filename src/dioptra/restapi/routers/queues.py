from fastapi import APIRouter, Depends, Request, Response

from dioptra.restapi import schemas
from dioptra.restapi.deps import changed, ctx, lists
from dioptra.restapi.schemas import DbInt
from dioptra.services import queues
from dioptra.services.context import ServiceContext

router = APIRouter(prefix="/api/v0/queue", tags=["queue"])


def render_list(c: ServiceContext) -> list[dict]:
    with c.db.session() as s:
        return [schemas.queue(q) for q in queues.list_unlocked(s)]


@router.get("/", response_model=list[schemas.QueueOut])
async def list_queues(request: Request) -> Response:
    """The unlocked queues, by id (served from a cache that every change refreshes)."""
    return await lists(request)["queues"].response()


@router.post("/")
def register_queue(
    body: schemas.NameBody, request: Request, c: ServiceContext = Depends(ctx)
) -> dict:
    with c.db.session() as s:
        result = schemas.queue(queues.create(s, body.name))
    return changed(request, "queues", result)


@router.get("/{queueId}")
def get_queue(queueId: DbInt, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.queue(queues.get_by_id(s, queueId))


@router.put("/{queueId}")
def rename_queue(
    queueId: DbInt, body: schemas.NameBody, request: Request, c: ServiceContext = Depends(ctx)
) -> dict:
    with c.db.session() as s:
        result = schemas.queue(queues.rename(s, queueId, body.name))
    return changed(request, "queues", result)


@router.delete("/{queueId}")
def delete_queue(queueId: DbInt, request: Request, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        deleted = queues.delete(s.get(queues.Queue, queueId))
    return changed(request, "queues", {"status": "Success", "id": [queueId] if deleted else []})


@router.put("/{queueId}/lock")
def lock_queue(queueId: DbInt, request: Request, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        queues.lock(queues.get_by_id(s, queueId))
    return changed(request, "queues", {"status": "Success", "id": [queueId]})


@router.delete("/{queueId}/lock")
def unlock_queue(queueId: DbInt, request: Request, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        queues.unlock(queues.get_by_id(s, queueId))
    return changed(request, "queues", {"status": "Success", "id": [queueId]})


@router.get("/name/{queueName}")
def get_queue_by_name(queueName: str, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.queue(queues.get_by_name(s, queueName))


@router.delete("/name/{queueName}")
def delete_queue_by_name(
    queueName: str, request: Request, c: ServiceContext = Depends(ctx)
) -> dict:
    with c.db.session() as s:
        deleted = queues.delete(queues.find_by_name(s, queueName))
    return changed(request, "queues", {"status": "Success", "name": [queueName] if deleted else []})


@router.put("/name/{queueName}/lock")
def lock_queue_by_name(queueName: str, request: Request, c: ServiceContext = Depends(ctx)
                       ) -> dict:
    with c.db.session() as s:
        queues.lock(queues.get_by_name(s, queueName))
    return changed(request, "queues", {"status": "Success", "name": [queueName]})


@router.delete("/name/{queueName}/lock")
def unlock_queue_by_name(queueName: str, request: Request, c: ServiceContext = Depends(ctx)
                         ) -> dict:
    with c.db.session() as s:
        queues.unlock(queues.get_by_name(s, queueName))
    return changed(request, "queues", {"status": "Success", "name": [queueName]})
