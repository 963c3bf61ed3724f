"""Shared fixtures: which backend a test runs on, and float64 for gradient checks."""

import numpy as np
import pytest

import minisam as ms
from minisam import backend as ms_backend


def _switch_to(name):
    """Use backend ``name`` for one test; skip (with the reason) if it cannot run here."""
    if name == "cupy":
        reason = ms_backend.gpu_unavailable_reason()
        if reason is not None:
            pytest.skip(f"CuPy backend unavailable: {reason}")
    previous = ms_backend.name
    ms_backend.use(name)
    return previous


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request):
    """Run the test once on NumPy and once on CuPy (the CuPy run skips where there is no GPU).

    Yields the backend's name; new Tensors land on that backend while the test runs."""
    previous = _switch_to(request.param)
    yield request.param
    ms_backend.use(previous)


@pytest.fixture
def cupy_backend():
    """The CuPy backend for one test, or a skip that says why it cannot run here."""
    previous = _switch_to("cupy")
    yield "cupy"
    ms_backend.use(previous)


@pytest.fixture
def float64():
    """Default dtype float64 for one test (gradient checks), restored afterwards."""
    previous = ms.get_default_dtype()
    ms.set_default_dtype(np.float64)
    yield np.float64
    ms.set_default_dtype(previous)
