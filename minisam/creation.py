"""New tensors from a shape (zeros, ones, randn) or shaped like another (zeros_like, ones_like).

A shape is given as ``f(2, 3)`` or ``f((2, 3))``, as in NumPy's reshape and PyTorch. ``zeros``, ``ones``
and ``randn`` give the default dtype (minisam/tensor_data.py); ``randn`` draws on the host from minisam's
generator, so a seed gives the same numbers on CPU and GPU.
"""

from __future__ import annotations

from . import backend, rng
from .backend import get_array_module
from .tensor import Tensor
from .tensor_data import _shape, get_default_dtype


def zeros(*shape, requires_grad=False) -> Tensor:
    return Tensor(backend.xp.zeros(_shape(shape), dtype=get_default_dtype()), requires_grad=requires_grad)


def ones(*shape, requires_grad=False) -> Tensor:
    return Tensor(backend.xp.ones(_shape(shape), dtype=get_default_dtype()), requires_grad=requires_grad)


def zeros_like(t: Tensor, requires_grad=False) -> Tensor:
    """Zeros of ``t``'s shape, dtype and device."""
    return Tensor(get_array_module(t.data).zeros_like(t.data), requires_grad, dtype=t.dtype)


def ones_like(t: Tensor, requires_grad=False) -> Tensor:
    """Ones of ``t``'s shape, dtype and device."""
    return Tensor(get_array_module(t.data).ones_like(t.data), requires_grad, dtype=t.dtype)


def randn(*shape, requires_grad=False) -> Tensor:
    """Standard normal samples drawn on the host from minisam's generator."""
    return Tensor(rng.generator().standard_normal(_shape(shape)), requires_grad=requires_grad)
