"""Multipart file parts, copied to a bounded temporary file."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import UploadFile

from dioptra.folders import temporary_folder
from dioptra.services.errors import BadRequest


@contextmanager
def saved_upload(upload: UploadFile, field: str, max_bytes: int) -> Iterator[Path]:
    """The upload as a file on disk, removed afterwards; 400 when empty or too large."""
    # Measured before it is copied: a refused file is not written a second time.
    size = upload.file.seek(0, os.SEEK_END)
    upload.file.seek(0)
    if size == 0:
        raise BadRequest(f"The file in field '{field}' is empty.")
    if size > max_bytes:
        raise BadRequest(
            f"The file in field '{field}' is {size} bytes; the limit is {max_bytes}."
        )
    with temporary_folder(prefix="dioptra-upload-") as tmp:
        path = tmp / "upload"
        with path.open("wb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
        yield path
