"""Image datasets stored as one sub-folder per class (read and write, with Pillow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dioptra import pyplugs

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def _parse_size(image_size) -> tuple[int, int, int | None]:
    if isinstance(image_size, str):
        image_size = tuple(int(v) for v in image_size.split(","))
    size = tuple(int(v) for v in image_size)
    if len(size) == 2:
        return size[0], size[1], None
    if len(size) == 3:
        return size[0], size[1], size[2]
    raise ValueError(f"image_size must be (height, width[, channels]), got {image_size!r}")


@pyplugs.register
def load_image_folder(
    path: str | Path, image_size, grayscale: bool | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``path/<class name>/<image>`` files.

    ``image_size`` is ``(height, width)`` or ``(height, width, channels)`` (or the string
    ``"28,28,1"``); images are resized to it.  ``grayscale`` defaults to ``channels == 1``.
    Returns ``(x, y, class_names)``: ``x`` float32 ``(N, C, H, W)`` in [0, 1], ``y`` int64
    indices into the sorted ``class_names``.
    """

    height, width, channels = _parse_size(image_size)
    if grayscale is None:
        grayscale = channels == 1
    mode = "L" if grayscale else "RGB"
    root = Path(path)
    class_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels = [], []
    for index, name in enumerate(class_names):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(file) as img:
                img = img.convert(mode)
                if img.size != (width, height):
                    img = img.resize((width, height), Image.BILINEAR)
                array = np.asarray(img, dtype=np.float32) / 255.0
            images.append(array[None] if grayscale else array.transpose(2, 0, 1))
            labels.append(index)
    c = 1 if grayscale else 3
    x = np.stack(images) if images else np.zeros((0, c, height, width), np.float32)
    return x.astype(np.float32), np.asarray(labels, dtype=np.int64), class_names


@pyplugs.register
def save_image_folder(
    x: np.ndarray,
    y: np.ndarray,
    path: str | Path,
    class_names: list[str] | None = None,
    prefix: str = "image",
) -> list[Path]:
    """Write ``x`` (``(N, C, H, W)`` in [0, 1]) as PNGs into ``path/<class name>/``.

    PNG stores 8 bits per channel, so values are rounded to multiples of 1/255.
    Returns the written paths, in input order.
    """

    root = Path(path)
    y = np.asarray(y)
    if y.ndim == 2:
        y = y.argmax(axis=1)
    written = []
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        name = class_names[int(label)] if class_names is not None else str(int(label))
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
        img = Image.fromarray(pixels[0], "L") if pixels.shape[0] == 1 else Image.fromarray(
            pixels.transpose(1, 2, 0)
        )
        file = folder / f"{prefix}_{i:06d}.png"
        img.save(file)
        written.append(file)
    return written
