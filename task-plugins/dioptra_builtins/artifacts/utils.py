"""Local file helpers: safe tarball extraction and directory creation."""

from __future__ import annotations

import uuid
from pathlib import Path

from dioptra import pyplugs
from dioptra.archives import ArchiveError, safe_extract

# The project's one safe extraction (no escaping paths, outside links or devices; size
# limits); kept under the v0 plugin's name for code that catches it.
UnsafeArchiveError = ArchiveError


@pyplugs.register
def extract_tarfile(
    filepath: str | Path, tarball_read_mode: str = "r:gz", output_dir: str | Path | None = None
) -> Path:
    """Extract a tarball (or zip) into ``output_dir`` (default: the current directory).

    The archive is checked before anything is written, and nothing stays behind when it
    is refused (:class:`UnsafeArchiveError`). ``tarball_read_mode`` is accepted for v0
    compatibility; the compression is detected from the content.
    """

    output = Path(output_dir) if output_dir is not None else Path.cwd()
    safe_extract(Path(filepath), output)
    return output


@pyplugs.register
def extract_tarfile_in_unique_subdir(
    filepath: str | Path, tarball_read_mode: str = "r:gz"
) -> Path:
    """Extract into a new uniquely named sub-directory of the current directory."""

    output = Path.cwd() / uuid.uuid4().hex
    return extract_tarfile(filepath, tarball_read_mode, output)


@pyplugs.register
def make_directories(dirs: list[str | Path] | str | Path) -> list[Path]:
    """Create each directory (with parents); existing ones are fine."""

    if isinstance(dirs, str | Path):
        dirs = [dirs]
    created = []
    for directory in dirs:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        created.append(path)
    return created
