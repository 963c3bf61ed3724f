"""Which array module does the arithmetic: NumPy on the CPU or CuPy on a GPU.

Everything in minisam that does array math asks for the module rather than importing
NumPy: ops take it from their data (``get_array_module(x)``), and code that creates
new arrays takes it from here (``backend.xp``). The same source then runs on both.

    import minisam as ms
    ms.backend.use("cupy")     # or: MINISAM_BACKEND=cupy python train.py
    ms.backend.name            # 'cupy'
    ms.backend.xp              # the cupy module

Asking for CuPy where it cannot run fails at once, here, with the reason and the way
back to NumPy -- never later as a deep traceback from inside an op.
"""

from __future__ import annotations

import os

import numpy as np

BACKENDS = ("numpy", "cupy")

name: str = "numpy"
xp = np


class BackendError(RuntimeError):
    """The requested array backend cannot be used on this machine."""


_FALLBACK = (
    'To run on the CPU instead, call minisam.backend.use("numpy") '
    "or set MINISAM_BACKEND=numpy (or leave it unset)."
)


def _import_cupy():
    try:
        import cupy
    except ImportError as err:
        raise BackendError(
            "The CuPy backend was requested but CuPy is not installed "
            f"({err}). Install it with: pip install 'minisam[gpu]'. {_FALLBACK}"
        ) from None
    return cupy


def gpu_unavailable_reason() -> str | None:
    """Why CuPy cannot run here, or None if it can (one tiny op on the device is tried)."""
    try:
        cupy = _import_cupy()
    except BackendError as err:
        return str(err)
    try:
        if not cupy.is_available():
            return "CuPy is installed but finds no usable CUDA GPU (cupy.is_available() is False)"
        if int((cupy.arange(3) * 2).sum()) != 6:  # a real kernel launch, not just a driver query
            return "CuPy is installed but a test computation on the GPU gave a wrong answer"
    except Exception as err:  # CUDA errors come in many classes; any of them means "no GPU"
        return f"CuPy is installed but cannot run on the GPU ({type(err).__name__}: {err})"
    return None


def is_gpu_available() -> bool:
    """True when CuPy is installed and a tiny computation on the GPU succeeds."""
    return gpu_unavailable_reason() is None


def use(backend: str) -> None:
    """Select the array module for new tensors: "numpy" (CPU) or "cupy" (GPU)."""
    global name, xp
    if not isinstance(backend, str) or backend.lower() not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    backend = backend.lower()
    if backend == "cupy":
        reason = gpu_unavailable_reason()
        if reason is not None:
            raise BackendError(f"cannot use the CuPy backend: {reason}. {_FALLBACK}")
        import cupy

        name, xp = "cupy", cupy
    else:
        name, xp = "numpy", np


def get_array_module(array):
    """The module (numpy or cupy) that owns ``array``; ops use it instead of a global."""
    if type(array).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def to_device(array, dtype=None):
    """``array`` (anything array-like, host or device) as an array of the current backend."""
    if name == "cupy":
        return xp.asarray(array, dtype=dtype)
    if type(array).__module__.startswith("cupy"):
        array = array.get()
    return np.asarray(array, dtype=dtype)


def to_host(array) -> np.ndarray:
    """A NumPy copy (or view, for NumPy input) of a backend array."""
    if type(array).__module__.startswith("cupy"):
        return array.get()
    return np.asarray(array)


def scatter_add(target, index, values) -> None:
    """``target[index] += values`` where repeated indices accumulate (NumPy's add.at)."""
    if type(target).__module__.startswith("cupy"):
        import cupyx

        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


def _use_from_environment() -> None:
    requested = os.environ.get("MINISAM_BACKEND", "").strip()
    if requested:
        try:
            use(requested)
        except ValueError as err:
            raise ValueError(f"MINISAM_BACKEND: {err}") from None


_use_from_environment()
