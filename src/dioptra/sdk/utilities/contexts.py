"""Context managers of v0 entry points: ``plugin_dirs`` and ``redirect_print``."""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def plugin_dirs(dirs: Iterable[str] = (".",)) -> Iterator[None]:
    """Make ``$DIOPTRA_PLUGIN_DIR`` and ``dirs`` importable inside the block.

    The new entries go right after ``sys.path[0]`` (the script's own folder keeps
    precedence); relative or missing ``DIOPTRA_PLUGIN_DIR`` entries are skipped, as are
    entries already on the path. ``sys.path`` is restored exactly on exit.
    """
    saved = list(sys.path)
    present = set(sys.path)
    added: list[str] = []
    for entry in os.environ.get("DIOPTRA_PLUGIN_DIR", "").split(":"):
        if not entry or not os.path.isabs(entry):
            continue
        resolved = Path(entry).resolve()
        if resolved.is_dir() and str(resolved) not in present:
            added.append(str(resolved))
    for entry in dirs:
        resolved = Path(entry).resolve()
        if resolved.is_dir() and str(resolved) not in present:
            added.append(str(resolved))
    head = sys.path[:1]
    sys.path[:] = list(dict.fromkeys([*head, *added, *sys.path[1:]]))
    try:
        yield
    finally:
        sys.path[:] = saved


@contextmanager
def redirect_print(new_target: IO[str] | None = None) -> Iterator[None]:
    """Send ``print`` output to ``new_target`` (no newline added), or drop it."""
    original = builtins.print

    def _print(*args: str, sep: str = " ", **_: object) -> None:
        if new_target is not None:
            new_target.write(sep.join(args))

    builtins.print = _print  # type: ignore[assignment]
    try:
        yield
    finally:
        builtins.print = original
