from fastapi import APIRouter, Depends

from dioptra.restapi import schemas
from dioptra.restapi.deps import ctx
from dioptra.services import queues
from dioptra.services.context import ServiceContext

router = APIRouter(prefix="/api/v0/queue", tags=["queue"])


@router.get("/")
def list_queues(c: ServiceContext = Depends(ctx)) -> list[dict]:
    with c.db.session() as s:
        return [schemas.queue(q) for q in queues.list_unlocked(s)]


@router.post("/")
def register_queue(body: schemas.NameBody, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.queue(queues.create(s, body.name))


@router.get("/{queueId}")
def get_queue(queueId: int, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.queue(queues.get_by_id(s, queueId))


@router.put("/{queueId}")
def rename_queue(queueId: int, body: schemas.NameBody, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.queue(queues.rename(s, queueId, body.name))


@router.delete("/{queueId}")
def delete_queue(queueId: int, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        deleted = queues.delete(s.get(queues.Queue, queueId))
        return {"status": "Success", "id": [queueId] if deleted else []}


@router.put("/{queueId}/lock")
def lock_queue(queueId: int, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        queues.lock(queues.get_by_id(s, queueId))
        return {"status": "Success", "id": [queueId]}


@router.delete("/{queueId}/lock")
def unlock_queue(queueId: int, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        queues.unlock(queues.get_by_id(s, queueId))
        return {"status": "Success", "id": [queueId]}


@router.get("/name/{queueName}")
def get_queue_by_name(queueName: str, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        return schemas.queue(queues.get_by_name(s, queueName))


@router.delete("/name/{queueName}")
def delete_queue_by_name(queueName: str, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        deleted = queues.delete(queues.find_by_name(s, queueName))
        return {"status": "Success", "name": [queueName] if deleted else []}


@router.put("/name/{queueName}/lock")
def lock_queue_by_name(queueName: str, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        queues.lock(queues.get_by_name(s, queueName))
        return {"status": "Success", "name": [queueName]}


@router.delete("/name/{queueName}/lock")
def unlock_queue_by_name(queueName: str, c: ServiceContext = Depends(ctx)) -> dict:
    with c.db.session() as s:
        queues.unlock(queues.get_by_name(s, queueName))
        return {"status": "Success", "name": [queueName]}
