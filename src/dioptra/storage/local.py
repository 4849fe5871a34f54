"""Object store in a local directory: ``s3://bucket/key`` lives at ``root/bucket/key``."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .base import ObjectNotFound, ObjectStore, atomic_copy, split_key, split_prefix

# Temporary files are written here and renamed into place. A leading dot cannot start
# a bucket name, so this directory never shows up as (or collides with) a bucket.
_TMP_DIR = ".tmp"
_CHUNK = 1 << 20


class LocalStore(ObjectStore):
    """Objects as plain files under ``root``, written atomically (temp file + rename).

    An object key and a "directory" prefix cannot share a name here (a file cannot also
    be a directory), unlike on S3; such a write raises ValueError.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # Paths ----------------------------------------------------------------------------
    def _object_path(self, uri: str) -> Path:
        bucket, parts = split_key(uri)
        return self._checked(self.root.joinpath(bucket, *parts), uri)

    def _prefix_path(self, prefix_uri: str) -> tuple[Path, Path]:
        """(bucket directory, prefix directory) for a prefix URI."""
        bucket, prefix = split_prefix(prefix_uri)
        bucket_dir = self.root / bucket
        return bucket_dir, self._checked(bucket_dir.joinpath(*prefix.split("/")), prefix_uri)

    def _checked(self, path: Path, uri: str) -> Path:
        # The key rules already forbid '..'; this also catches a symlink planted inside
        # the root that would lead a write outside it.
        if not path.resolve().is_relative_to(self.root):
            raise ValueError(f"{uri!r} resolves outside the object store")
        return path

    # Writing --------------------------------------------------------------------------
    def _write(self, uri: str, fill: Callable[[BinaryIO], None]) -> None:
        target = self._object_path(uri)
        tmp_dir = self.root / _TMP_DIR
        tmp_dir.mkdir(exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; stored objects are not secret
            self._move_into_place(tmp_name, target, uri)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def _move_into_place(self, tmp_name: str, target: Path, uri: str) -> None:
        # A concurrent delete may prune the (then empty) parent directory between mkdir
        # and replace; retry a few times rather than fail the write.
        for attempt in range(5):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_name, target)
                return
            except FileNotFoundError:
                if attempt == 4:
                    raise
            except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
                raise ValueError(
                    f"cannot store {uri}: a key and a directory of the same name collide "
                    "in the local object store"
                ) from exc

    def put_bytes(self, uri: str, data: bytes) -> None:
        self._write(uri, lambda f: f.write(data))

    def put_file(self, uri: str, path: Path | str) -> None:
        with open(path, "rb") as src:
            self._write(uri, lambda f: shutil.copyfileobj(src, f, _CHUNK))

    # Reading --------------------------------------------------------------------------
    def _open(self, uri: str) -> BinaryIO:
        path = self._object_path(uri)
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(uri) from None

    def open_read(self, uri: str) -> BinaryIO:
        return self._open(uri)

    def get_bytes(self, uri: str) -> bytes:
        with self._open(uri) as f:
            return f.read()

    def download(self, uri: str, dest: Path | str) -> None:
        dest = Path(dest)
        with self._open(uri) as src:
            atomic_copy(src, dest)

    def exists(self, uri: str) -> bool:
        return self._object_path(uri).is_file()

    # Listing --------------------------------------------------------------------------
    def _walk_files(self, top: Path) -> Iterator[Path]:
        for dirpath, _dirnames, filenames in os.walk(top):
            for name in filenames:
                yield Path(dirpath, name)

    def list_keys(self, prefix_uri: str) -> list[str]:
        bucket_dir, top = self._prefix_path(prefix_uri)
        if not top.is_dir():
            return []
        return sorted(p.relative_to(bucket_dir).as_posix() for p in self._walk_files(top))

    def list_dirs(self, prefix_uri: str) -> list[str]:
        _bucket_dir, top = self._prefix_path(prefix_uri)
        if not top.is_dir():
            return []
        # A directory left empty (say by a crash mid-delete) holds no keys, so on S3 it
        # would not exist; only report directories that contain at least one object.
        return sorted(
            entry.name
            for entry in os.scandir(top)
            if entry.is_dir(follow_symlinks=False)
            and next(self._walk_files(Path(entry.path)), None) is not None
        )

    # Deleting -------------------------------------------------------------------------
    def delete(self, uri: str) -> None:
        path = self._object_path(uri)
        bucket_dir = self.root / split_key(uri)[0]
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        self._prune_empty_parents(path.parent, bucket_dir)

    def delete_prefix(self, prefix_uri: str) -> int:
        bucket_dir, top = self._prefix_path(prefix_uri)
        count = 0
        # Delete exactly the listed keys (not rmtree) so an object written concurrently
        # is never removed without being counted.
        for key in self.list_keys(prefix_uri):
            path = bucket_dir / key
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                count += 1
        if top.is_dir():
            for dirpath, _dirnames, _files in os.walk(top, topdown=False):
                if Path(dirpath) != bucket_dir:  # buckets outlive their objects, as on S3
                    with contextlib.suppress(OSError):
                        os.rmdir(dirpath)
            self._prune_empty_parents(top.parent, bucket_dir)
        return count

    def _prune_empty_parents(self, start: Path, bucket_dir: Path) -> None:
        """Remove now-empty directories from ``start`` up to (not including) the bucket,
        so that deleted "directories" disappear from listings as they do on S3."""
        current = start
        while current != bucket_dir and current.is_relative_to(bucket_dir):
            try:
                current.rmdir()
            except OSError:  # not empty (or already gone): stop here
                return
            current = current.parent
