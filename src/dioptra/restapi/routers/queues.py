from fastapi import APIRouter, Depends, Request, Response

from dioptra.restapi import fast_json, schemas
from dioptra.restapi.deps import changed, ctx, lists
from dioptra.restapi.schemas import DbInt
from dioptra.services import queues
from dioptra.services.context import ServiceContext
from dioptra.services.errors import NotFound

router = APIRouter(prefix="/api/v0/queue", tags=["queue"])


def render_list(c: ServiceContext) -> bytes:
    with c.db.session() as s:
        rows = queues.rows(s, unlocked_only=True)
    return fast_json.array(map(fast_json.queue, rows))


def render_index(c: ServiceContext) -> dict[int, bytes]:
    """Every queue's answer to a lookup by id, locked ones included."""
    with c.db.session() as s:
        rows = queues.rows(s, unlocked_only=False)
    return {row[0]: fast_json.queue(row).encode() for row in rows}


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


@router.get("/{queueId}", response_model=schemas.QueueOut)
async def get_queue(queueId: DbInt, request: Request) -> Response:
    """Served from the rendered queues, which every change refreshes (restapi/cache.py):
    no database session per lookup."""
    body = (await lists(request)["queue_items"].get()).get(queueId)
    if body is None:
        raise NotFound(queues.NOT_FOUND)
    return Response(content=body, media_type="application/json")


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
