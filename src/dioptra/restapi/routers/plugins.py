from fastapi import APIRouter, Depends, File, Form, UploadFile

from dioptra.restapi import schemas
from dioptra.restapi.deps import ctx
from dioptra.restapi.openapi import errors
from dioptra.restapi.routers.uploads import saved_upload
from dioptra.services import plugins
from dioptra.services.context import ServiceContext

router = APIRouter(prefix="/api/v0/taskPlugin", tags=["taskPlugin"])


@router.get("/")
def list_all(c: ServiceContext = Depends(ctx)) -> list[dict]:
    found = plugins.list_builtins() + plugins.list_custom(c.store)
    return [schemas.task_plugin(p) for p in found]


@router.post("/", responses=errors(507))
def upload(
    taskPluginName: str = Form(..., description="package name, a Python identifier"),
    collection: str = Form(..., description="must be dioptra_custom"),
    taskPluginFile: UploadFile = File(..., description="tar or zip archive of the package"),
    c: ServiceContext = Depends(ctx),
) -> dict:
    with saved_upload(taskPluginFile, "taskPluginFile", c.settings.max_upload_bytes) as path:
        return schemas.task_plugin(plugins.upload_custom(c, taskPluginName, collection, path))


@router.get("/dioptra_builtins")
def list_builtins() -> list[dict]:
    return [schemas.task_plugin(p) for p in plugins.list_builtins()]


@router.get("/dioptra_builtins/{taskPluginName}")
def get_builtin(taskPluginName: str) -> dict:
    return schemas.task_plugin(plugins.get_builtin(taskPluginName))


@router.get("/dioptra_custom")
def list_custom(c: ServiceContext = Depends(ctx)) -> list[dict]:
    return [schemas.task_plugin(p) for p in plugins.list_custom(c.store)]


@router.get("/dioptra_custom/{taskPluginName}")
def get_custom(taskPluginName: str, c: ServiceContext = Depends(ctx)) -> dict:
    return schemas.task_plugin(plugins.get_custom(c.store, taskPluginName))


@router.delete("/dioptra_custom/{taskPluginName}")
def delete_custom(taskPluginName: str, c: ServiceContext = Depends(ctx)) -> dict:
    deleted = plugins.remove_custom(c, taskPluginName)
    return {"collection": plugins.CUSTOM, "status": "Success", "taskPluginName": deleted}
