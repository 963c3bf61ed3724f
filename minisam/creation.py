"""New tensors from a shape (zeros, ones, randn) or shaped like another (zeros_like, ones_like).

A shape is given as ``f(2, 3)`` or ``f((2, 3))``, as in NumPy's reshape and PyTorch; each dimension
is an integer >= 0 (not True, not 2.5). ``zeros``, ``ones`` and ``randn`` give the default dtype
(minisam/tensor_data.py); ``randn`` draws on the host from minisam's generator, so a seed gives the
same numbers on CPU and GPU, and it checks its arguments before drawing, so a refused call leaves
the random stream alone.
"""

from __future__ import annotations

from . import backend, rng
from .backend import get_array_module
from .checks import flag
from .tensor import Tensor
from .tensor_data import _shape, get_default_dtype, tensors_only


def _allocated(op, make, shape):
    """``make(shape)``, or a MemoryError that names the op and the shape (NumPy's "array is too
    big" names neither)."""
    try:
        return make(shape)
    except (MemoryError, ValueError) as err:
        raise MemoryError(f"{op}: cannot allocate shape {shape}: {err}") from None


def zeros(*shape, requires_grad=False) -> Tensor:
    shape = _shape(shape, "zeros", 0)
    data = _allocated("zeros", lambda s: backend.xp.zeros(s, dtype=get_default_dtype()), shape)
    return Tensor(data, requires_grad=requires_grad)


def ones(*shape, requires_grad=False) -> Tensor:
    shape = _shape(shape, "ones", 0)
    data = _allocated("ones", lambda s: backend.xp.ones(s, dtype=get_default_dtype()), shape)
    return Tensor(data, requires_grad=requires_grad)


def zeros_like(t: Tensor, requires_grad=False) -> Tensor:
    """Zeros of ``t``'s shape, dtype and device."""
    tensors_only("zeros_like", t=t)
    return Tensor(get_array_module(t.data).zeros_like(t.data), requires_grad, dtype=t.dtype)


def ones_like(t: Tensor, requires_grad=False) -> Tensor:
    """Ones of ``t``'s shape, dtype and device."""
    tensors_only("ones_like", t=t)
    return Tensor(get_array_module(t.data).ones_like(t.data), requires_grad, dtype=t.dtype)


def randn(*shape, requires_grad=False) -> Tensor:
    """Standard normal samples drawn on the host from minisam's generator."""
    shape = _shape(shape, "randn", 0)
    requires_grad = flag("randn", "requires_grad", requires_grad)
    return Tensor(_allocated("randn", rng.generator().standard_normal, shape), requires_grad=requires_grad)
