"""minisam: Sharpness-Aware Minimization, from scratch, for reading.

import minisam as ms
from minisam import nn, optim
import minisam.functional as F
"""

from . import backend, nn, optim
from .creation import ones, ones_like, randn, zeros, zeros_like
from .rng import get_rng_state, manual_seed, set_rng_state
from .serialization import load, save
from .tensor import Tensor, cat, is_grad_enabled, maximum, no_grad, stack
from .tensor_data import get_default_dtype, set_default_dtype

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
