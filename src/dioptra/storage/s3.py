"""Object store on an S3 server (AWS or any S3-compatible endpoint) through boto3."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from .base import ObjectNotFound, ObjectStore, atomic_copy, split_key, split_prefix

# Error codes meaning "no such object/bucket"; HEAD requests only carry the HTTP status.
_MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_DELETE_BATCH = 1000  # the most keys one DeleteObjects request may carry


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Store(ObjectStore):
    """Objects in S3 buckets; a bucket is created the first time it is written to.

    ``page_size`` is the MaxKeys of each listing request (S3 caps it at 1000); listings
    always follow continuation tokens to the end.
    """

    def __init__(
        self,
        endpoint_url: str | None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        *,
        page_size: int = 1000,
    ) -> None:
        self.endpoint_url = endpoint_url or None
        self.page_size = page_size
        config = Config(
            signature_version="s3v4",
            # Path-style requests work with every S3-compatible server and need no DNS
            # entries per bucket.
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            # Newer botocore adds CRC trailers to every upload by default, which some
            # S3-compatible servers reject; only send checksums where S3 demands them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region or None,
        )
        self.region = session.region_name or "us-east-1"
        self.client: Any = session.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
        )
        self._known_buckets: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Store(endpoint_url={self.endpoint_url!r})"

    # Buckets --------------------------------------------------------------------------
    def _ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if it does not exist yet (checked once per store)."""
        with self._lock:
            if bucket in self._known_buckets:
                return
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self.client.create_bucket(**kwargs)
            except ClientError as create_exc:
                # Another writer may have created it in the meantime.
                if _code(create_exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        with self._lock:
            self._known_buckets.add(bucket)

    # Writing --------------------------------------------------------------------------
    def put_bytes(self, uri: str, data: bytes) -> None:
        bucket, parts = split_key(uri)
        self._ensure_bucket(bucket)
        self.client.put_object(Bucket=bucket, Key="/".join(parts), Body=bytes(data))

    def put_file(self, uri: str, path: Path | str) -> None:
        bucket, parts = split_key(uri)
        self._ensure_bucket(bucket)
        # upload_file switches to a multipart upload for big files.
        self.client.upload_file(
            str(path), bucket, "/".join(parts), Config=TransferConfig(use_threads=False)
        )

    # Reading --------------------------------------------------------------------------
    def _get(self, uri: str) -> Any:
        bucket, parts = split_key(uri)
        try:
            return self.client.get_object(Bucket=bucket, Key="/".join(parts))["Body"]
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise ObjectNotFound(uri) from None
            raise

    def get_bytes(self, uri: str) -> bytes:
        body = self._get(uri)
        try:
            return body.read()
        finally:
            body.close()

    def open_read(self, uri: str) -> BinaryIO:
        return self._get(uri)  # botocore's StreamingBody: read(n) and close()

    def download(self, uri: str, dest: Path | str) -> None:
        body = self._get(uri)
        try:
            atomic_copy(body, Path(dest))
        finally:
            body.close()

    def exists(self, uri: str) -> bool:
        bucket, parts = split_key(uri)
        try:
            self.client.head_object(Bucket=bucket, Key="/".join(parts))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        return True

    # Listing --------------------------------------------------------------------------
    def _pages(self, bucket: str, prefix: str, delimiter: str | None = None) -> Any:
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Prefix": prefix,
            "PaginationConfig": {"PageSize": self.page_size},
        }
        if delimiter:
            kwargs["Delimiter"] = delimiter
        try:
            yield from self.client.get_paginator("list_objects_v2").paginate(**kwargs)
        except ClientError as exc:
            if _code(exc) != "NoSuchBucket":
                raise

    def list_keys(self, prefix_uri: str) -> list[str]:
        bucket, prefix = split_prefix(prefix_uri)
        return sorted(
            obj["Key"] for page in self._pages(bucket, prefix) for obj in page.get("Contents", [])
        )

    def list_dirs(self, prefix_uri: str) -> list[str]:
        bucket, prefix = split_prefix(prefix_uri)
        names = {
            common["Prefix"][len(prefix) :].rstrip("/")
            for page in self._pages(bucket, prefix, delimiter="/")
            for common in page.get("CommonPrefixes", [])
        }
        names.discard("")  # a key like "a/x//y" would give an empty "directory"
        return sorted(names)

    # Deleting -------------------------------------------------------------------------
    def delete(self, uri: str) -> None:
        bucket, parts = split_key(uri)
        try:
            self.client.delete_object(Bucket=bucket, Key="/".join(parts))
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise

    def delete_prefix(self, prefix_uri: str) -> int:
        bucket, _prefix = split_prefix(prefix_uri)
        keys = self.list_keys(prefix_uri)
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            response = self.client.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise RuntimeError(
                    f"could not delete {len(errors)} object(s) under {prefix_uri}: "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
        return len(keys)
