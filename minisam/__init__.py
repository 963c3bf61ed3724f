"""minisam: Sharpness-Aware Minimization, from scratch, for reading.

import minisam as ms
from minisam import nn, optim
import minisam.functional as F
"""

import signal as _signal
import sys as _sys


def _interrupted_while_starting(signum, frame):  # pragma: no cover - ends the process
    _sys.stderr.write("python -m minisam: interrupted\n")
    _sys.stderr.flush()
    import os

    os._exit(130)


# `python -m minisam ...` imports this package before its __main__ can catch anything: a Ctrl-C
# in that fraction of a second ends with one line, not a traceback (__main__ then takes over).
if _sys.argv[:1] == ["-m"] and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)

from . import backend, nn, optim  # noqa: E402
from .creation import ones, ones_like, randn, zeros, zeros_like  # noqa: E402
from .rng import get_rng_state, manual_seed, set_rng_state  # noqa: E402
from .serialization import load, save  # noqa: E402
from .tensor import Tensor, cat, is_grad_enabled, maximum, no_grad, stack  # noqa: E402
from .tensor_data import get_default_dtype, set_default_dtype  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "backend",
    "cat",
    "get_default_dtype",
    "get_rng_state",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "maximum",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "randn",
    "save",
    "set_default_dtype",
    "set_rng_state",
    "stack",
    "zeros",
    "zeros_like",
]
