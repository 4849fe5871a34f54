"""Multipart file parts, copied to a bounded temporary file."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import UploadFile

from dioptra.services.errors import BadRequest


@contextmanager
def saved_upload(upload: UploadFile, field: str, max_bytes: int) -> Iterator[Path]:
    """The upload as a file on disk, removed afterwards; 400 when empty or too large."""
    with tempfile.TemporaryDirectory(prefix="dioptra-upload-") as tmp:
        path = Path(tmp) / "upload"
        with path.open("wb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
        size = path.stat().st_size
        if size == 0:
            raise BadRequest(f"The file in field '{field}' is empty.")
        if size > max_bytes:
            raise BadRequest(
                f"The file in field '{field}' is {size} bytes; the limit is {max_bytes}."
            )
        yield path
