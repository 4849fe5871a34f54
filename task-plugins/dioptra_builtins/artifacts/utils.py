"""Local file helpers: safe tarball extraction and directory creation."""

from __future__ import annotations

import os
import tarfile
import uuid
from pathlib import Path

from dioptra import pyplugs


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target directory, or is not a
    regular file or directory."""


def _check_members(archive: tarfile.TarFile, output_dir: Path) -> list[tarfile.TarInfo]:
    root = output_dir.resolve()
    members = archive.getmembers()
    for member in members:
        name = member.name
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(f"refusing archive member {name!r}: not a file or directory")
        if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in Path(name).parts:
            raise UnsafeArchiveError(f"refusing archive member {name!r}: path escapes")
        target = (root / name).resolve()
        if target != root and root not in target.parents:
            raise UnsafeArchiveError(f"refusing archive member {name!r}: path escapes")
    return members


@pyplugs.register
def extract_tarfile(
    filepath: str | Path, tarball_read_mode: str = "r:gz", output_dir: str | Path | None = None
) -> Path:
    """Extract a tarball into ``output_dir`` (default: the current directory).

    Every member is checked first: only regular files and directories whose paths stay
    inside ``output_dir`` are accepted (no absolute paths, ``..``, links or devices);
    otherwise :class:`UnsafeArchiveError` is raised and nothing is extracted.
    """

    output = Path(output_dir) if output_dir is not None else Path.cwd()
    output.mkdir(parents=True, exist_ok=True)
    with tarfile.open(filepath, tarball_read_mode) as archive:
        members = _check_members(archive, output)
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: also drop set-id bits
            archive.extractall(output, members=members, filter="data")
        else:  # pragma: no cover
            archive.extractall(output, members=members)
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
