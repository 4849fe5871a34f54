"""The object-store contract shared by the local-directory and S3 backends.

Objects are addressed by ``s3://bucket/key`` URIs whatever the backend, so the rest of
the server can store URIs in the database without caring where the bytes live.
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

SCHEME = "s3://"

# S3's rules for bucket names (the subset that matters for path-style addressing):
# 3-63 characters of lowercase letters, digits, dots and hyphens, starting and ending
# with a letter or digit. Enforcing them everywhere keeps the local backend from
# accepting names that S3 would later refuse, and keeps bucket names safe as directories.
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4_RE = re.compile(r"\d{1,3}(\.\d{1,3}){3}")


class ObjectNotFound(KeyError):
    """Raised when reading an object that does not exist."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.uri = uri

    def __str__(self) -> str:
        # KeyError's default __str__ shows the repr of its argument; say it plainly.
        return f"no object at {self.uri}"


def parse_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``; the key may be empty.

    Raises ValueError for anything that is not an s3:// URI with a valid bucket name.
    """
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise ValueError(f"{uri!r} is not an object URI: expected s3://bucket/key")
    bucket, _, key = uri[len(SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} has no bucket name: expected s3://bucket/key")
    problem = _bucket_problem(bucket)
    if problem:
        raise ValueError(f"invalid bucket name {bucket!r} in {uri!r}: {problem}")
    return bucket, key


def _bucket_problem(bucket: str) -> str | None:
    if not 3 <= len(bucket) <= 63:
        return "it must be 3 to 63 characters long"
    if not _BUCKET_RE.fullmatch(bucket):
        return (
            "it may contain only lowercase letters, digits, dots and hyphens, "
            "and must start and end with a letter or digit"
        )
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "dots may not be doubled or next to a hyphen"
    if _IPV4_RE.fullmatch(bucket):
        return "it must not look like an IP address"
    return None


def split_key(uri: str) -> tuple[str, list[str]]:
    """Parse the URI of one object: its bucket and the key's path segments.

    Keys are treated as relative POSIX paths on every backend (so a key that works on
    S3 also works as a file under a directory): no leading slash, no empty, ``.`` or
    ``..`` segments, no NUL characters.
    """
    bucket, key = parse_uri(uri)
    if not key:
        raise ValueError(f"{uri!r} names a bucket, not an object: expected s3://bucket/key")
    if "\x00" in key:
        raise ValueError(f"object key in {uri!r} contains a NUL character")
    if key.startswith("/"):
        raise ValueError(f"object key in {uri!r} must not start with '/'")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"object key in {uri!r} has an empty, '.' or '..' path segment")
    return bucket, parts


def split_prefix(uri: str) -> tuple[str, str]:
    """Parse a prefix URI into ``(bucket, prefix)`` where ``prefix`` is ``""`` (the whole
    bucket) or ends with ``/``, so ``s3://b/a/x`` selects ``a/x/...`` but never
    ``a/x_extra/...``. A trailing slash on the URI is optional."""
    bucket, key = parse_uri(uri)
    key = key.rstrip("/")
    if not key:
        return bucket, ""
    split_key(f"{SCHEME}{bucket}/{key}")  # same segment rules as object keys
    return bucket, key + "/"


class ObjectStore(abc.ABC):
    """A bucket/key object store. Every method takes ``s3://bucket/key`` URIs.

    Prefix arguments are directories: ``s3://b/a/x`` means every key under ``a/x/``.
    Keys returned by listings are full keys relative to the bucket, sorted.
    """

    @abc.abstractmethod
    def put_bytes(self, uri: str, data: bytes) -> None:
        """Store ``data`` at ``uri``, replacing any existing object."""

    @abc.abstractmethod
    def put_file(self, uri: str, path: Path | str) -> None:
        """Store the contents of the local file ``path`` at ``uri``."""

    @abc.abstractmethod
    def get_bytes(self, uri: str) -> bytes:
        """The object's contents; ObjectNotFound if there is none."""

    def open_read(self, uri: str) -> BinaryIO:
        """The object as a stream to read in pieces (close it when done); ObjectNotFound
        if there is none. This default goes through a temporary file."""
        spool = tempfile.TemporaryDirectory(prefix="dioptra-object-")
        try:
            path = Path(spool.name) / "object"
            self.download(uri, path)
            stream = path.open("rb")
        finally:
            spool.cleanup()  # the open file stays readable after its name is gone
        return stream

    @abc.abstractmethod
    def download(self, uri: str, dest: Path | str) -> None:
        """Write the object to the local file ``dest`` (parents created, atomically);
        ObjectNotFound if there is none, in which case ``dest`` is not created."""

    @abc.abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether an object is stored at ``uri``."""

    @abc.abstractmethod
    def list_keys(self, prefix_uri: str) -> list[str]:
        """Every key under the prefix (recursively), sorted; [] for a missing bucket."""

    @abc.abstractmethod
    def list_dirs(self, prefix_uri: str) -> list[str]:
        """Names of the immediate sub-"directories" under the prefix, sorted."""

    @abc.abstractmethod
    def delete(self, uri: str) -> None:
        """Delete one object; deleting a missing object is not an error."""

    @abc.abstractmethod
    def delete_prefix(self, prefix_uri: str) -> int:
        """Delete every key under the prefix; returns how many were deleted."""


def atomic_copy(src: BinaryIO, dest: Path) -> None:
    """Copy a stream to the local file ``dest`` through a temporary file in the same
    directory, so a reader never sees a half-written file (parents are created)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(src, f, 1 << 20)
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; match an ordinary new file
        os.replace(tmp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
