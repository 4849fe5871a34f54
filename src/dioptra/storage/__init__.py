"""Object storage addressed by ``s3://bucket/key`` URIs: a local directory or S3."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .base import ObjectNotFound, ObjectStore, parse_uri
from .local import LocalStore

__all__ = [
    "LocalStore",
    "ObjectNotFound",
    "ObjectStore",
    "S3Store",
    "open_store",
    "parse_uri",
]


def __getattr__(name: str):
    # S3Store on first use: boto3 takes half a second to import, and most servers
    # store locally.
    if name == "S3Store":
        from .s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def open_store(url: str) -> ObjectStore:
    """The object store that ``url`` names.

    * ``s3`` or ``s3://``: S3 at ``DIOPTRA_S3_ENDPOINT_URL`` (AWS itself when unset),
      with the keys in ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` and the region
      in ``AWS_DEFAULT_REGION`` / ``AWS_REGION`` (boto3's own lookup when unset);
    * ``file:///some/dir`` or a plain directory path: a LocalStore there.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the object store URL is empty: give a directory, file:///dir or s3")
    url = url.strip()
    if url in ("s3", "s3://"):
        from .s3 import S3Store

        return S3Store(
            endpoint_url=_env("DIOPTRA_S3_ENDPOINT_URL"),
            access_key=_env("AWS_ACCESS_KEY_ID"),
            secret_key=_env("AWS_SECRET_ACCESS_KEY"),
            region=_env("AWS_DEFAULT_REGION") or _env("AWS_REGION"),
        )
    if url.startswith("s3://"):
        raise ValueError(
            f"object store URL {url!r}: use 's3' (buckets are chosen per object; the "
            "endpoint comes from DIOPTRA_S3_ENDPOINT_URL)"
        )
    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ValueError(f"object store URL {url!r}: expected file:///absolute/dir")
        return LocalStore(Path(unquote(parts.path)))
    scheme = urlsplit(url).scheme
    if "://" in url and scheme:
        raise ValueError(
            f"object store URL {url!r}: unsupported scheme {scheme!r} "
            "(use a directory, file:///dir or s3)"
        )
    return LocalStore(Path(url))
