"""The array side of a Tensor: what it holds, how it reads back, how array arguments are spelled.

``Tensor(data)`` takes numbers: a Python number, nested lists, or an array of bool, integer or
floating dtype. Anything else (``None``, a string, a ragged list, complex or object data) is
refused with an error that shows what came, rather than turned into a tensor nobody meant.

Floating data takes the default dtype, float32 (float64 for gradient checks), unless a dtype is
asked for, so float64 NumPy data never upcasts a float32 network. A conversion never changes a
value: 300 does not become 44 in uint8, 1.5 does not become 1, and 1e300 does not become inf in
float32; each is refused, naming the dtype. The array is the tensor's own:
an array the caller passed in is copied, so an in-place update of a parameter cannot reach it.
Only floating tensors may require a gradient.

A Tensor reads back as an array (``.shape``, ``.dtype``, ``.numpy()``, ``.item()``, ``float(t)``),
and its arguments follow NumPy and PyTorch: a shape as ``f(2, 3)`` or ``f((2, 3))``, an axis as
``axis=``/``keepdims=`` or PyTorch's ``dim=``/``keepdim=``, matmul's shape rules (an error says
which dimensions disagree). The other operand of an op is a Tensor, a number or an array of
numbers; NumPy would read ``None`` as NaN, so ``t + None`` is refused by name.
minisam/tensor.py builds the Tensor, with its gradient, on top of this.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .backend import get_array_module
from .checks import ArgumentError, count, flag

_default_dtype = np.dtype(np.float32)


def _dtype(who: str, name: str, dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype of bool, integers or floats, or an error naming ``name``."""
    try:
        # None and True would be read as float64 by np.dtype: a typo, not a choice
        parsed = None if dtype is None or isinstance(dtype, bool) else np.dtype(dtype)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.kind not in "biuf":
        raise ArgumentError(f"{who}: {name} must be a NumPy dtype of bool, integers or floats, got {dtype!r}")
    return parsed


def set_default_dtype(dtype) -> None:
    """Floating dtype of new tensors: float32 (default) or float64 (for gradient checks)."""
    global _default_dtype
    dtype = _dtype("set_default_dtype", "dtype", dtype)
    if dtype not in (np.float32, np.float64):
        raise ArgumentError(f"set_default_dtype: default dtype must be float32 or float64, got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    return _default_dtype


def _cast(array, dtype: np.dtype, who: str = "Tensor"):
    """``array`` as ``dtype``, refusing a conversion that would change a value: an integer type
    must hold every value exactly (no 300 → 44 in uint8, no 1.5 → 1), and a finite float must
    not become infinite (1e300 in float32)."""
    if array.dtype == dtype:
        return array
    xp = get_array_module(array)
    if dtype.kind in "biu" and array.size:
        low, high = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
        whole = array.dtype.kind != "f" or bool(xp.all(xp.isfinite(array) & (array == xp.round(array))))
        if not whole or float(array.min()) < low or float(array.max()) > high:
            raise ArgumentError(
                f"{who}: data cannot be held exactly as {dtype} (integers from {low} to {high}), "
                f"got values from {array.min()} to {array.max()}"
            )
    with np.errstate(over="ignore"):  # an overflow is caught just below, by name
        converted = array.astype(dtype)
    if dtype.kind == "f":
        lost = ~xp.isfinite(converted)
        if bool(lost.any()) and bool(xp.isfinite(array[lost]).any()):
            raise ArgumentError(f"{who}: data holds values too large for {dtype} (they would become inf)")
    return converted


def as_array(data, dtype=None, requires_grad=False):
    """``data`` as a new array of the current backend, checked and typed as said above."""
    wanted = None if dtype is None else _dtype("Tensor", "dtype", dtype)
    try:
        array = backend.to_device(data)
    except (TypeError, ValueError):  # ragged lists, strings that are not numbers, ...
        array = None
    if array is None or array.dtype.kind not in "biuf":
        raise ArgumentError(
            "Tensor: data must be numbers (bool, int or float: a number, nested lists or an "
            f"array), got {repr(data)[:60]}" + ("" if array is None else f" of dtype {array.dtype}")
        )
    if wanted is None and array.dtype.kind == "f":
        wanted = _default_dtype  # floats follow the default, never upcast
    converted = array if wanted is None else _cast(array, wanted)
    if converted is data:
        converted = converted.copy()  # our own memory: an in-place update must not reach the caller
    if flag("Tensor", "requires_grad", requires_grad) and converted.dtype.kind != "f":
        raise ArgumentError(
            f"Tensor: only floating-point tensors can require gradients, got {converted.dtype}"
        )
    return converted


def operand(op: str, name: str, data, value):
    """``value`` (a number, nested lists or an array of numbers) as an array on ``data``'s device,
    of ``data``'s dtype if that is floating. None, strings, complex and object data are refused:
    NumPy would turn None into NaN, and ``t + None`` must not quietly become NaN."""
    xp = get_array_module(data)
    try:
        array = None if value is None or isinstance(value, (str, bytes)) else xp.asarray(value)
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype.kind not in "biuf":
        raise ArgumentError(
            f"{op}: {name} must be a Tensor, a number or an array of numbers, got {repr(value)[:60]}"
            + ("" if array is None else f" of dtype {array.dtype}")
        )
    return array.astype(data.dtype, copy=False) if data.dtype.kind == "f" else array


def operand_tensor(op, a, other):
    """The second operand of an element-wise op as a Tensor, checked to broadcast with ``a``."""
    if not isinstance(a, TensorData):
        raise ArgumentError(f"{op}: the first operand must be a Tensor, got {type(a).__name__}")
    b = a._lift(other, op)
    if a.shape != b.shape and b.ndim and a.ndim:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
    return b


def tensor_list(op, tensors, axis) -> list:
    """The tensors of cat/stack, checked: a non-empty sequence of Tensors, and an integer axis."""
    try:
        listed = None if isinstance(tensors, TensorData) else list(tensors)
    except TypeError:
        listed = None
    if listed is None:
        raise ArgumentError(f"{op}: tensors must be a sequence of Tensors, got a {type(tensors).__name__}")
    tensors = listed
    if not tensors:
        raise ArgumentError(f"{op}: tensors must be a non-empty sequence of Tensors, got an empty one")
    for i, t in enumerate(tensors):
        if not isinstance(t, TensorData):
            raise ArgumentError(f"{op}: tensors[{i}] must be a Tensor, got {type(t).__name__}")
    count(op, "axis", axis, None)
    return tensors


def tensors_only(op: str, **arguments) -> None:
    """Refuse, by name, an argument of a functional op that is not a Tensor (None is let through:
    an optional bias), rather than fail deep inside it on ``.data``."""
    for name, value in arguments.items():
        if value is not None and not isinstance(value, TensorData):
            module = type(value).__module__.split(".")[0]
            what = f"a {'' if module == 'builtins' else module + '.'}{type(value).__name__}"
            raise ArgumentError(f"{op}: {name} must be an ms.Tensor, got {what}; wrap it: ms.Tensor({name})")


def _torch_names(op, axis, keepdims, dim, keepdim):
    """PyTorch spells ``axis``/``keepdims`` as ``dim``/``keepdim``; either spelling, not both.
    The axis is an integer or a tuple of them (not True, not 1.5), the flag a bool."""
    if dim is not None:
        if axis is not None:
            raise ArgumentError(f"{op}: pass axis= or dim= (its PyTorch name), not both")
        axis = dim
    if axis is not None and type(axis) is not int:  # (plain ints, the common case, pass as they are)
        for a in axis if isinstance(axis, tuple) else (axis,):
            count(op, "axis", a, None)
    if keepdim is not None:
        keepdims = flag(op, "keepdim", keepdim)
    elif type(keepdims) is not bool:
        keepdims = flag(op, "keepdims", keepdims)
    return axis, keepdims


def _shape(shape, op="reshape", minimum=None, name="each dimension of shape") -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` both mean shape (2, 3), as in NumPy's reshape and PyTorch.
    Each entry is an integer (not True, not 2.5) >= ``minimum``."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    if all(type(n) is int and (minimum is None or n >= minimum) for n in shape):
        return shape  # the common case, checked without a call per dimension (reshape is everywhere)
    return tuple(count(op, name, n, minimum) for n in shape)


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
    # the data for exp, log and tanh: NumPy computes those of bool and small integers in float16
    _floating = property(
        lambda self: self.data if self.dtype.kind == "f" else self.data.astype(_default_dtype)
    )

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor: it has no first dimension (use .item() for its value)")
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
