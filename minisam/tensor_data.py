"""The array side of a Tensor: what it holds, how it reads back, how array arguments are spelled.

``Tensor(data)`` takes numbers: a Python number, nested lists, or an array of bool, integer or
floating dtype. Anything else (``None``, a string, a ragged list, complex or object data) is
refused with an error that shows what came, rather than turned into a tensor nobody meant.

Floating data takes the default dtype, float32 (float64 for gradient checks), unless a dtype is
asked for, so float64 NumPy data never upcasts a float32 network. The array is the tensor's own:
an array the caller passed in is copied, so an in-place update of a parameter cannot reach it.
Only floating tensors may require a gradient.

A Tensor reads back as an array (``.shape``, ``.dtype``, ``.numpy()``, ``.item()``, ``float(t)``),
and its arguments follow NumPy and PyTorch: a shape as ``f(2, 3)`` or ``f((2, 3))``, an axis as
``axis=``/``keepdims=`` or PyTorch's ``dim=``/``keepdim=``, matmul's shape rules (an error says
which dimensions disagree). minisam/tensor.py builds the Tensor, with its gradient, on top of this.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .checks import ArgumentError, flag

_default_dtype = np.dtype(np.float32)


def set_default_dtype(dtype) -> None:
    """Floating dtype of new tensors: float32 (default) or float64 (for gradient checks)."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"default dtype must be float32 or float64, got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    return _default_dtype


def as_array(data, dtype=None, requires_grad=False):
    """``data`` as a new array of the current backend, checked and typed as said above."""
    try:
        array = backend.to_device(data, dtype)
    except (TypeError, ValueError):  # ragged lists, strings that are not numbers, ...
        array = None
    if array is None or array.dtype.kind not in "biuf":
        raise ArgumentError(
            "Tensor: data must be numbers (bool, int or float: a number, nested lists or an "
            f"array), got {repr(data)[:60]}" + ("" if array is None else f" of dtype {array.dtype}")
        )
    if dtype is None and array.dtype.kind == "f" and array.dtype != _default_dtype:
        array = array.astype(_default_dtype)  # floats follow the default, never upcast
    elif array is data:
        array = array.copy()  # our own memory: an in-place update must not reach the caller
    if flag("Tensor", "requires_grad", requires_grad) and array.dtype.kind != "f":
        raise ArgumentError(f"Tensor: only floating-point tensors can require gradients, got {array.dtype}")
    return array


def _torch_names(op, axis, keepdims, dim, keepdim):
    """PyTorch spells ``axis``/``keepdims`` as ``dim``/``keepdim``; either spelling, not both."""
    if dim is not None:
        if axis is not None:
            raise ArgumentError(f"{op}: pass axis= or dim= (its PyTorch name), not both")
        axis = dim
    return axis, keepdims if keepdim is None else keepdim


def _shape(shape) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` both mean shape (2, 3), as in NumPy's reshape and PyTorch."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _matmul_mismatch(a_shape, b_shape) -> str:
    """Which dimensions of a matmul disagree: the inner ones, or the batch ones."""
    where = f"matmul: cannot multiply shapes {a_shape} and {b_shape}"
    if not a_shape or not b_shape:
        return f"{where}: both operands need at least one dimension (use * for a scalar)"
    if a_shape[-1] == b_shape[-2 if len(b_shape) > 1 else -1]:
        return f"{where}: their batch dimensions {a_shape[:-2]} and {b_shape[:-2]} cannot be broadcast"
    inner = "only" if len(b_shape) == 1 else "second-to-last"
    return f"{where}: the last dimension of the first must equal the {inner} dimension of the second"


class TensorData:
    """A Tensor as an array: its shape and dtype, its data read back on the host (Tensor's base)."""

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.to_host(self.data)!r}{grad})"

    def numpy(self) -> np.ndarray:
        """A host (NumPy) copy of the data."""
        return np.array(backend.to_host(self.data), copy=True)

    def tolist(self):
        return backend.to_host(self.data).tolist()

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a Tensor of shape {self.shape} is ambiguous; reduce it to one "
                "element first, e.g. (a == b).numpy().all() or (pred == y).sum().item()"
            )
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())
