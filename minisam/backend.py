"""Which array module does the arithmetic: NumPy on the CPU or CuPy on a GPU.

Everything in minisam that does array math asks for the module rather than importing
NumPy: ops take it from their data (``get_array_module(x)``), and code that creates
new arrays takes it from here (``backend.xp``). The same source then runs on both.

    import minisam as ms
    ms.backend.use("cupy")     # or: MINISAM_BACKEND=cupy python train.py
    ms.backend.name            # 'cupy'
    ms.backend.xp              # the cupy module

``import minisam`` always works. A backend that cannot run is reported when it is asked
for -- at ``use("cupy")``, or, for ``MINISAM_BACKEND``, when the backend is first needed
(the first Tensor) -- as one ``BackendError`` that says why, how to install CuPy where
that is the fix, and the way back to NumPy; never as a deep traceback from inside an op.
``error_line(err)`` turns it into the one ``error:`` line a command prints.
"""

from __future__ import annotations

import os

import numpy as np

from . import checks

BACKENDS = ("numpy", "cupy")
INSTALL_GPU = 'pip install -e ".[gpu]"'  # as the README says

name: str = "numpy"
xp = np
_from_environment: str | None = None  # a MINISAM_BACKEND request not yet acted on


class BackendError(RuntimeError):
    """The requested array backend cannot be used on this machine.

    ``headline`` says what was asked and why it cannot be done; ``install`` is True when
    installing CuPy is the fix. ``str(err)`` gives the way back for a Python user,
    ``error_line(err)`` the same in one line for a shell user."""

    def __init__(self, headline: str, *, install: bool = False, from_environment: bool = False):
        self.headline, self.install, self.from_environment = headline, install, from_environment
        way_back = 'ms.backend.use("numpy")' + (" (or MINISAM_BACKEND=numpy)" if from_environment else "")
        super().__init__(f"{headline}. {self.advice(way_back)}")

    def advice(self, way_back: str) -> str:
        """The fix in one sentence, ending with ``way_back`` (how to return to NumPy)."""
        if self.install:
            return f"Install CuPy with {INSTALL_GPU}, or run on the CPU with {way_back}."
        return f"Run on the CPU with {way_back}."


def error_line(err: BaseException, way_back: str = "MINISAM_BACKEND=numpy") -> str:
    """One line for a command to print (``error: ...``), with the way back for a shell
    user: ``MINISAM_BACKEND=numpy``, or what the command passes (``"--backend numpy"``)."""
    if isinstance(err, BackendError):
        text = f"{err.headline}. {err.advice(way_back)}"
    else:
        text = str(err)
    return "error: " + " ".join(text.split())


def _cupy_problem() -> tuple[str, bool] | None:
    """Why CuPy cannot run here and whether installing it would help, or None if it runs
    (one tiny computation on the device is tried)."""
    try:
        import cupy
    except ImportError as err:
        return f"CuPy is not installed ({err})", True
    try:
        if not cupy.is_available():
            return "CuPy is installed but finds no usable CUDA GPU (cupy.is_available() is False)", False
        if int((cupy.arange(3) * 2).sum()) != 6:  # a real kernel launch, not just a driver query
            return "CuPy is installed but a test computation on the GPU gave a wrong answer", False
    except Exception as err:  # CUDA errors come in many classes; any of them means "no GPU"
        return f"CuPy is installed but cannot run on the GPU ({type(err).__name__}: {err})", False
    return None


def gpu_unavailable_reason() -> str | None:
    """Why CuPy cannot run here (one phrase, no advice), or None if it can."""
    problem = _cupy_problem()
    return None if problem is None else problem[0]


def is_gpu_available() -> bool:
    """True when CuPy is installed and a tiny computation on the GPU succeeds."""
    return _cupy_problem() is None


def use(backend: str) -> None:
    """Select the array module for new tensors: "numpy" (CPU) or "cupy" (GPU).

    Either it switches or it raises and changes nothing."""
    _select(checks.choice("ms.backend.use", "backend", backend, BACKENDS), from_environment=False)


def _select(backend: str, from_environment: bool) -> None:
    global name, xp, _from_environment
    if backend == "cupy":
        problem = _cupy_problem()
        if problem is not None:
            reason, install = problem
            asked = (
                "MINISAM_BACKEND=cupy asks for CuPy, which cannot be used here"
                if from_environment
                else "cannot use the CuPy backend"
            )
            raise BackendError(f"{asked}: {reason}", install=install, from_environment=from_environment)
        import cupy

        name, xp = "cupy", cupy
    else:
        name, xp = "numpy", np
    _from_environment = None


def _resolve_environment() -> None:
    """Act on a pending MINISAM_BACKEND request; raises (every time) until it can be met
    or ``use()`` overrides it."""
    requested = _from_environment
    if requested.lower() not in BACKENDS:
        raise BackendError(
            f"MINISAM_BACKEND is {requested!r}, which is not a backend (expected numpy or cupy)",
            from_environment=True,
        )
    _select(requested.lower(), from_environment=True)


def _current() -> str:
    """The backend in use ("numpy" or "cupy"), acting on MINISAM_BACKEND first if needed."""
    if _from_environment is not None:
        _resolve_environment()
    return name


def __getattr__(attribute):  # reached only while MINISAM_BACKEND is pending (name, xp unset)
    if attribute in ("name", "xp") and _from_environment is not None:
        _resolve_environment()
        return globals()[attribute]
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


def get_array_module(array):
    """The module (numpy or cupy) that owns ``array``; ops use it instead of a global."""
    if type(array).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def to_device(array, dtype=None):
    """``array`` (anything array-like, host or device) as an array of the current backend."""
    if _current() == "cupy":
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


def _read_environment() -> None:
    """MINISAM_BACKEND picks the default. Anything but numpy is only noted here and acted
    on when a backend is first needed, so that ``import minisam`` itself never fails."""
    global name, xp, _from_environment
    requested = os.environ.get("MINISAM_BACKEND", "").strip()
    if requested and requested.lower() != "numpy":
        del name, xp  # until resolved, reading them goes through __getattr__ above
        _from_environment = requested


_read_environment()
