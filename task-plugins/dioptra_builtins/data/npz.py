"""Store arrays in NumPy ``.npz`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dioptra import pyplugs


@pyplugs.register
def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, by name (pickled objects are refused)."""

    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


@pyplugs.register
def save_npz(path: str | Path, compressed: bool = True, **arrays: np.ndarray) -> Path:
    """Write ``arrays`` to ``path`` and return it."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        (np.savez_compressed if compressed else np.savez)(handle, **arrays)
    return path
