"""Matplotlib figures for the tracking plugins (drawn off-screen with the Agg canvas)."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dioptra import pyplugs


@pyplugs.register
def image_grid(x: np.ndarray, titles: list[str] | None = None, ncols: int = 10) -> Figure:
    """A grid of images ``(N, C, H, W)`` in [0, 1] (grey when ``C == 1``)."""

    x = np.asarray(x)
    n = len(x)
    ncols = max(1, min(int(ncols), n))
    nrows = max(1, -(-n // ncols))
    figure = Figure(figsize=(1.2 * ncols, 1.3 * nrows))
    FigureCanvasAgg(figure)
    for i in range(n):
        axis = figure.add_subplot(nrows, ncols, i + 1)
        image = x[i]
        if image.shape[0] == 1:
            axis.imshow(image[0], cmap="gray", vmin=0.0, vmax=1.0)
        else:
            axis.imshow(np.clip(image.transpose(1, 2, 0), 0.0, 1.0))
        axis.set_axis_off()
        if titles is not None:
            axis.set_title(str(titles[i]), fontsize=8)
    figure.tight_layout()
    return figure
