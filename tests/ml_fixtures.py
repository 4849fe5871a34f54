"""Fixtures shared by the builtin-plugin tests (loaded by conftest.py as a plugin)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def single_threaded():
    """One torch/BLAS thread: the networks and matrices are tiny, so one thread is
    fastest, and fair to whatever else runs (OpenBLAS threads spin under contention)."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits, split by the builtin loader with seed 0."""
    from dioptra import pyplugs

    return pyplugs.call("dioptra_builtins.data", "digits", "load_digits_dataset", seed=0)
