"""Path helpers of v0 plugins."""

from __future__ import annotations

import shutil
from pathlib import Path


def set_path_ext(filepath: str | Path, ext: str) -> Path:
    """``filepath`` with every suffix replaced by ``.ext`` (``a/b.tar.gz`` -> ``a/b.csv``)."""
    path = Path(filepath)
    stem = path.name.split(".", 1)[0] if not path.name.startswith(".") else path.name
    return path.with_name(f"{stem}.{ext.lstrip('.')}")


def clear_directory(dir_: str | Path) -> None:
    """Delete everything inside the existing directory ``dir_`` (not the directory)."""
    for child in Path(dir_).iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
