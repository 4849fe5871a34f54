"""Task plugins: the builtin collection shipped with the project, and uploaded ones.

Uploaded packages live in the object store, one object per file at
``s3://plugins/dioptra_custom/<name>/<path>``, plus a packed copy at
``s3://plugins/.packed/dioptra_custom/<name>.tar.gz`` that workers download whole
(its SHA-256 identifies the exact plugin code a job ran with).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dioptra.archives import ArchiveError, Limits, pack_directory, safe_extract
from dioptra.db.models import CustomPlugin, utcnow
from dioptra.folders import temporary_folder
from dioptra.services.errors import BadRequest, NotFound
from dioptra.services.names import PLUGIN_NAME, check_plugin_name
from dioptra.storage import ObjectStore

if TYPE_CHECKING:
    from dioptra.services.context import ServiceContext

BUILTINS = "dioptra_builtins"
CUSTOM = "dioptra_custom"
BUCKET = "plugins"
NOT_FOUND = "The requested task plugin package does not exist"
PLUGIN_LIMITS = Limits(max_members=2_000, max_total_bytes=64 << 20, max_member_bytes=16 << 20)


@dataclass(frozen=True)
class TaskPlugin:
    name: str
    collection: str
    modules: list[str]


def builtins_dir() -> Path:
    spec = importlib.util.find_spec(BUILTINS)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the dioptra_builtins package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _python_files(package_dir: Path) -> list[str]:
    return sorted(
        p.relative_to(package_dir).as_posix()
        for p in package_dir.rglob("*.py")
        if "__pycache__" not in p.parts
    )


def list_builtins() -> list[TaskPlugin]:
    root = builtins_dir()
    return [
        TaskPlugin(d.name, BUILTINS, _python_files(d))
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(("_", ".")) and _python_files(d)
    ]


def get_builtin(name: str) -> TaskPlugin:
    for plugin in list_builtins():
        if plugin.name == name:
            return plugin
    raise NotFound(NOT_FOUND)


# Every object key is built from a checked name: '..', NUL or an over-long name in a URL
# is a 400, never a key outside the package's folder.
def _files_uri(name: str) -> str:
    return f"s3://{BUCKET}/{CUSTOM}/{check_plugin_name(name)}"


def packed_uri(name: str) -> str:
    return f"s3://{BUCKET}/.packed/{CUSTOM}/{check_plugin_name(name)}.tar.gz"


def list_custom(store: ObjectStore) -> list[TaskPlugin]:
    names = store.list_dirs(f"s3://{BUCKET}/{CUSTOM}")
    # A folder no package name fits (none is uploaded so) is not listed, not an error.
    return [_custom(store, name) for name in names if PLUGIN_NAME.fullmatch(name)]


def _custom(store: ObjectStore, name: str) -> TaskPlugin:
    prefix = f"{CUSTOM}/{name}/"
    keys = store.list_keys(_files_uri(name))
    return TaskPlugin(name, CUSTOM, sorted(k.removeprefix(prefix) for k in keys))


def get_custom(store: ObjectStore, name: str) -> TaskPlugin:
    plugin = _custom(store, name)
    if not plugin.modules:
        raise NotFound(NOT_FOUND)
    return plugin


def custom_digest(store: ObjectStore, name: str) -> str:
    """Hash the packed package (once, at upload; see ``digests``)."""
    return hashlib.sha256(store.get_bytes(packed_uri(name))).hexdigest()


def upload_custom(ctx: ServiceContext, name: str, collection: str, archive: Path) -> TaskPlugin:
    """Upload, and record the packed package's digest, which every claim hands out."""
    plugin = upload(ctx.store, name, collection, archive)
    try:
        digest = custom_digest(ctx.store, name)
        with ctx.db.session() as session:
            session.merge(CustomPlugin(name=name, sha256=digest, uploaded_on=utcnow()))
    except Exception:
        delete_custom(ctx.store, name)
        raise
    return plugin


def remove_custom(ctx: ServiceContext, name: str) -> list[str]:
    with ctx.db.session() as session:
        session.execute(delete(CustomPlugin).where(CustomPlugin.name == name))
    return delete_custom(ctx.store, name)


def digests(session: Session) -> dict[str, str]:
    """Name -> SHA-256 of every uploaded package, as recorded at upload (nothing hashed)."""
    query = select(CustomPlugin.name, CustomPlugin.sha256).order_by(CustomPlugin.name)
    return dict(session.execute(query).all())


def record_missing_digests(ctx: ServiceContext) -> list[str]:
    """At start: record the digests of packages uploaded before they were recorded (or
    while the database was elsewhere); forget those no longer in the store."""
    with ctx.db.session() as session:
        known = digests(session)
    present = {p.name for p in list_custom(ctx.store) if ctx.store.exists(packed_uri(p.name))}
    missing = sorted(present - set(known))
    with ctx.db.session() as session:
        for name in missing:
            session.add(CustomPlugin(name=name, sha256=custom_digest(ctx.store, name),
                                     uploaded_on=utcnow()))
        gone = set(known) - present
        if gone:
            session.execute(delete(CustomPlugin).where(CustomPlugin.name.in_(gone)))
    return missing


def _package_root(extracted: Path) -> Path:
    """A tarball of ``my_plugin/`` holds one folder: the package is inside it."""
    entries = [p for p in extracted.iterdir() if p.name not in ("__MACOSX",)]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return extracted


def upload(store: ObjectStore, name: str, collection: str, archive: Path) -> TaskPlugin:
    if collection != CUSTOM:
        raise BadRequest(
            f"The collection {collection!r} cannot be uploaded to: task plugins are "
            f"uploaded to {CUSTOM!r} ({BUILTINS!r} is read-only)."
        )
    check_plugin_name(name)
    if _custom(store, name).modules:
        raise BadRequest(
            "The names of one or more of the uploaded task plugin packages conflicts with "
            "an existing package in the collection. To update an existing task plugin "
            "package, delete it first and then resubmit."
        )
    with temporary_folder(prefix="dioptra-plugin-") as tmp:
        extracted = tmp / "x"
        try:
            safe_extract(archive, extracted, PLUGIN_LIMITS)
        except ArchiveError as exc:
            raise BadRequest(f"The task plugin archive was rejected: {exc}") from exc
        root = _package_root(extracted)
        modules = _python_files(root)
        if not modules:
            raise BadRequest("The task plugin archive contains no Python (.py) files.")
        # Keep only the Python files, as the original did, but with their folders.
        package = tmp / "package"
        for module in modules:
            target = package / module
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((root / module).read_bytes())
        try:
            for module in modules:
                store.put_file(f"{_files_uri(name)}/{module}", package / module)
            store.put_bytes(packed_uri(name), pack_directory(package))
        except Exception:
            # Nothing half-written stays behind.
            delete_custom(store, name)
            raise
    return TaskPlugin(name, CUSTOM, modules)


def delete_custom(store: ObjectStore, name: str) -> list[str]:
    """Delete exactly the package ``name`` (not every name starting with it)."""
    deleted = store.delete_prefix(_files_uri(name))
    if store.exists(packed_uri(name)):
        store.delete(packed_uri(name))
        deleted += 1
    return [name] if deleted else []
