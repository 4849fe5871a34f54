"""Configure PyTorch for a job: seed, thread count, determinism."""

from __future__ import annotations

import os

import torch

from dioptra import pyplugs


@pyplugs.register
def init_torch(seed: int, threads: int | None = None, deterministic: bool = True) -> str:
    """Seed PyTorch and return the device to use (``"cuda"`` when available, else ``"cpu"``).

    ``threads`` sets the number of intra-op CPU threads (default: PyTorch's choice, or
    ``$DIOPTRA_TORCH_THREADS`` when set).  ``deterministic`` asks PyTorch for deterministic
    kernels (with a warning rather than an error where none exists).
    """

    if threads is None and os.environ.get("DIOPTRA_TORCH_THREADS"):
        threads = int(os.environ["DIOPTRA_TORCH_THREADS"])
    if threads is not None and threads > 0:
        torch.set_num_threads(int(threads))
    if seed is not None and int(seed) >= 0:
        torch.manual_seed(int(seed) % 2**63)
    _set_deterministic(bool(deterministic))
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.deterministic = bool(deterministic)
        torch.backends.cudnn.benchmark = not deterministic
    return "cuda" if torch.cuda.is_available() else "cpu"


def _set_deterministic(enabled: bool) -> None:
    # The public torch.use_deterministic_algorithms also syncs the compiler's settings,
    # importing torch._dynamo/_inductor (2 s per job); eager code reads only this flag.
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:
        torch.use_deterministic_algorithms(enabled, warn_only=True)
    else:
        setter(enabled, warn_only=True)
