"""The Tensor and reverse-mode automatic differentiation.

A Tensor wraps one array (``.data``, NumPy or CuPy). Every op has one shape: compute the output,
define right under it the ``backward`` that turns the output's gradient into its inputs' gradients
(the chain rule for that one op), and hand both to ``_result``. ``loss.backward()`` visits the
graph once, in reverse topological order, so each node has the gradient from all of its users
before it passes gradient on. Only leaves (made with ``requires_grad=True``, such as parameters)
keep a ``.grad``; other gradients live in a dictionary local to one pass, so nothing leaks into
the next pass (SAM runs several per step).

Dtypes: a Python number or NumPy array combined with a floating Tensor becomes a constant of that
Tensor's dtype (as PyTorch does for numbers), so a float32 network stays float32 whatever data it
meets; two Tensors promote as in NumPy (float32 with float64 gives float64). Every gradient has the
dtype of its tensor. What ``Tensor(data)`` accepts and the default dtype: minisam/tensor_data.py.
"""

from __future__ import annotations

import functools
import numbers
import operator

import numpy as np

from . import backend
from .backend import get_array_module
from .checks import ArgumentError
from .tensor_data import TensorData, _matmul_mismatch, _shape, _torch_names, as_array, operand, tensor_list
from .tensor_data import get_default_dtype as get_default_dtype  # nn.py reads it from here
from .tensor_data import operand_tensor as _operand

_grad_enabled = True


class no_grad:
    """Operations inside build no graph (used for updates and probes). A context manager
    (``with no_grad():``) or a decorator (``@no_grad()`` or ``@no_grad``)."""

    def __new__(cls, fn=None):
        return super().__new__(cls) if fn is None else cls()(fn)

    def __enter__(self):
        global _grad_enabled
        self._previous, _grad_enabled = _grad_enabled, False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn):
        if not callable(fn):
            raise ArgumentError(
                f"no_grad: decorates a function, got {fn!r} (use `with no_grad():` for a block)"
            )

        @functools.wraps(fn)
        def without_grad(*args, **kwargs):
            with no_grad():  # a fresh one per call, so recursion restores correctly
                return fn(*args, **kwargs)

        return without_grad


def is_grad_enabled() -> bool:
    return _grad_enabled


def sum_to(grad, shape):
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting, used by every op.
    Broadcasting copies an operand along new leading axes and along axes of size 1, so its
    gradient is the sum over exactly those axes."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=tuple(range(lead)) + stretched, keepdims=True).reshape(shape)


def _result(data, parents, backward, op):
    """A new Tensor made by ``op``; it joins the graph only if some input needs a gradient."""
    out = Tensor.__new__(Tensor)
    out.data, out.grad, out._op = data, None, op
    out.requires_grad = _grad_enabled and any(p.requires_grad for p in parents)
    out._parents = parents if out.requires_grad else ()
    out._backward = backward if out.requires_grad else None
    return out


def _comparison(test):
    """An element-wise comparison operator (a == b, a < b, ...): a boolean Tensor, no gradient."""

    def compare(self, other):
        if other is None or isinstance(other, str):
            return NotImplemented  # t == None, t == "x": Python falls back to identity (False)
        return Tensor._leaf(test(self.data, self._lift(other, test.__name__).data))

    return compare


class Tensor(TensorData):
    """An array with an optional gradient. ``Tensor(data, requires_grad=False, dtype=None)``.
    Its array side (shape, dtype, ``.numpy()``, ``.item()``) is ``TensorData``, in
    minisam/tensor_data.py; this class adds the graph and the ops."""

    __array_ufunc__ = None  # NumPy arrays and scalars defer to our operators: 2.0 * t, array @ t

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = as_array(data.data if isinstance(data, Tensor) else data, dtype, requires_grad)
        self.grad, self.requires_grad = None, bool(requires_grad)
        self._parents, self._backward, self._op = (), None, ""

    T = property(lambda self: self.transpose())

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._leaf(self.data)

    @staticmethod
    def _leaf(data):  # a constant: no inputs, so it never requires a gradient
        return _result(data, (), None, "")

    def _lift(self, other, op="") -> Tensor:
        """``other`` as a Tensor: numbers and arrays become constants of our dtype (if floating)."""
        if isinstance(other, Tensor):
            return other
        return Tensor._leaf(operand(op, "the other operand", self.data, other))

    # ---- backward ------------------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires a gradient."""
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require a gradient (no input had "
                "requires_grad=True, or it was computed under no_grad)"
            )
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar loss, got shape {self.shape}; "
                    "reduce it first (e.g. .sum() or .mean()) or pass grad="
                )
            grad = xp.ones_like(self.data)
        else:
            grad = operand("backward()", "grad", self.data, grad.data if isinstance(grad, Tensor) else grad)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad has shape {grad.shape}, expected {self.shape}")

        grads = {id(self): grad}  # gradients of this pass only: nothing leaks to the next
        given = set()  # arrays already handed to a leaf, so no two leaves share one
        for node in reversed(self._topological_order()):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if not node._parents:  # a leaf: keep its gradient
                if g.base is not None or id(g) in given:
                    g = g.copy()  # own it, so an in-place change to .grad stays local
                given.add(id(g))
                node.grad = g if node.grad is None else node.grad + g
                continue
            for parent, pg in zip(node._parents, node._backward(g), strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.shape:  # a bug in an op's backward, caught where it is
                    raise RuntimeError(
                        f"{node._op} backward: gradient of shape {pg.shape} "
                        f"for an input of shape {parent.shape}"
                    )
                if pg.dtype != parent.dtype:  # e.g. float64 data met a float32 parameter
                    pg = pg.astype(parent.dtype)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg

    def _topological_order(self) -> list[Tensor]:
        """Every node that needs a gradient, each after all of its inputs (iterative DFS,
        so a deep graph cannot hit Python's recursion limit)."""
        order, seen = [], set()
        stack = [(self, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if p.requires_grad and id(p) not in seen)
        return order

    # ---- arithmetic: a + b, a - b, a * b, a / b, a ** p, -a, a @ b ----------------------
    def __add__(self, other):
        a, b = self, _operand("add", self, other)

        def backward(g):
            return sum_to(g, a.shape), sum_to(g, b.shape)

        return _result(a.data + b.data, (a, b), backward, "add")

    def __sub__(self, other):
        a, b = self, _operand("sub", self, other)

        def backward(g):
            return sum_to(g, a.shape), sum_to(-g, b.shape)

        return _result(a.data - b.data, (a, b), backward, "sub")

    def __mul__(self, other):
        a, b = self, _operand("mul", self, other)

        def backward(g):
            return sum_to(g * b.data, a.shape), sum_to(g * a.data, b.shape)

        return _result(a.data * b.data, (a, b), backward, "mul")

    def __truediv__(self, other):
        a, b = self, _operand("div", self, other)

        def backward(g):  # d(a/b)/da = 1/b,  d(a/b)/db = -a/b²
            return sum_to(g / b.data, a.shape), sum_to(-g * a.data / (b.data * b.data), b.shape)

        return _result(a.data / b.data, (a, b), backward, "div")

    def __pow__(self, exponent):
        if isinstance(exponent, bool) or not isinstance(exponent, numbers.Real):
            raise TypeError(
                f"pow: the exponent must be a number, got {type(exponent).__name__} "
                "(for a Tensor exponent b write (b * a.log()).exp())"
            )
        a = self
        p = exponent.item() if isinstance(exponent, np.generic) else exponent  # keeps a's dtype

        def backward(g):
            return (g * p * a.data ** (p - 1),)

        return _result(a.data**p, (a,), backward, "pow")

    def __neg__(self):
        def backward(g):
            return (-g,)

        return _result(-self.data, (self,), backward, "neg")

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return self._lift(other, "sub") - self

    def __rtruediv__(self, other):
        return self._lift(other, "div") / self

    def __matmul__(self, other):
        a, b = self, self._lift(other, "matmul")
        try:
            data = a.data @ b.data
        except ValueError:
            raise ValueError(_matmul_mismatch(a.shape, b.shape)) from None

        def backward(g):
            xa, xb = a.data, b.data
            # A 1-D operand acts as a row (left) or a column (right) matrix; put back the axis
            # matmul removed, so one rule serves 1-D, 2-D and batched products.
            if xb.ndim == 1:
                xb, g = xb[:, None], g[..., None]
            if xa.ndim == 1:
                xa, g = xa[None, :], g[..., None, :]
            ga = sum_to(g @ xb.swapaxes(-1, -2), xa.shape).reshape(a.shape) if a.requires_grad else None
            gb = sum_to(xa.swapaxes(-1, -2) @ g, xb.shape).reshape(b.shape) if b.requires_grad else None
            return ga, gb

        return _result(data, (a, b), backward, "matmul")

    def __rmatmul__(self, other):
        return self._lift(other, "matmul") @ self

    # ---- reductions (PyTorch's dim=/keepdim= are accepted for axis=/keepdims=) ---------
    def _unreduce(self, g, axis, keepdims):
        """Give a reduced gradient back the axes the reduction removed."""
        if axis is not None and not keepdims:
            g = get_array_module(g).expand_dims(g, axis)
        return g

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _torch_names("sum", axis, keepdims, dim, keepdim)
        a = self

        def backward(g):
            return (get_array_module(g).broadcast_to(a._unreduce(g, axis, keepdims), a.shape),)

        return _result(a.data.sum(axis=axis, keepdims=keepdims), (a,), backward, "sum")

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        total = self.sum(*_torch_names("mean", axis, keepdims, dim, keepdim))
        count = self.data.size // max(total.data.size, 1)
        if count == 0 and total.data.size:  # 0/0: the mean of nothing is no number
            raise ValueError(f"mean: no values to average over (a tensor of shape {self.shape})")
        return total / count

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Maximum; the gradient is shared equally among tied maxima (like ``torch.amax``)."""
        axis, keepdims = _torch_names("max", axis, keepdims, dim, keepdim)
        a, peak = self, self.data.max(axis=axis, keepdims=True)

        def backward(g):
            winners = a.data == peak
            share = winners / winners.sum(axis=axis, keepdims=True)
            return (a._unreduce(g, axis, keepdims) * share.astype(a.dtype),)

        data = peak if keepdims else (peak.reshape(()) if axis is None else peak.squeeze(axis))
        return _result(data, (a,), backward, "max")

    def argmax(self, axis=None, *, dim=None) -> Tensor:
        """Index of the largest entry (of the flattened tensor when axis is None); no gradient."""
        axis, _ = _torch_names("argmax", axis, False, dim, None)
        return Tensor._leaf(self.data.argmax(axis=axis))

    # ---- shape ---------------------------------------------------------------------
    def reshape(self, *shape):
        a = self

        def backward(g):
            return (g.reshape(a.shape),)

        return _result(a.data.reshape(_shape(shape)), (a,), backward, "reshape")

    def transpose(self, *axes):
        axes = _shape(axes, "transpose", None, "each axis") or tuple(reversed(range(self.ndim)))
        inverse = tuple(np.argsort(axes))

        def backward(g):
            return (g.transpose(inverse),)

        return _result(self.data.transpose(axes), (self,), backward, "transpose")

    def __getitem__(self, index):
        a = self
        xp = get_array_module(a.data)

        def as_index(i):  # Tensors and lists of indices become arrays on our device ([] indexes nothing)
            if isinstance(i, Tensor):
                return xp.asarray(i.data)
            return xp.asarray(i, dtype=None if i else np.intp) if isinstance(i, list) else i

        index = tuple(map(as_index, index)) if isinstance(index, tuple) else as_index(index)
        items = index if isinstance(index, tuple) else (index,)
        basic = all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)

        def backward(g):
            grad = xp.zeros_like(a.data)
            if basic:
                grad[index] = g  # basic indexing (ints, slices) never selects an element twice
            else:
                backend.scatter_add(grad, index, g)  # repeated indices must add up
            return (grad,)

        return _result(a.data[index], (a,), backward, "getitem")

    # ---- element-wise functions ----------------------------------------------------
    def exp(self):
        out = get_array_module(self.data).exp(self._floating)

        def backward(g):
            return (g * out,)

        return _result(out, (self,), backward, "exp")

    def log(self):
        x = self._floating

        def backward(g):
            return (g / x,)

        return _result(get_array_module(x).log(x), (self,), backward, "log")

    def tanh(self):
        out = get_array_module(self.data).tanh(self._floating)

        def backward(g):
            return (g * (1 - out * out),)

        return _result(out, (self,), backward, "tanh")

    def relu(self):
        passes = self.data > 0  # d relu/dx = 1 where x > 0, else 0 (0 at the kink, as PyTorch)

        def backward(g):
            return (g * passes,)

        return _result(self.data * passes, (self,), backward, "relu")

    # ---- comparisons (== != < <= > >=): element-wise boolean Tensors, outside the graph -------
    __eq__, __ne__ = _comparison(operator.eq), _comparison(operator.ne)
    __lt__, __le__ = _comparison(operator.lt), _comparison(operator.le)
    __gt__, __ge__ = _comparison(operator.gt), _comparison(operator.ge)
    __hash__ = object.__hash__  # by identity, as PyTorch: sets and dicts of parameters work


# ---- functions of several tensors -------------------------------------------------------
def maximum(a: Tensor, b) -> Tensor:
    """Element-wise maximum; where a == b the gradient goes to ``a``."""
    b = _operand("maximum", a, b)
    a_wins = a.data >= b.data

    def backward(g):
        return sum_to(g * a_wins, a.shape), sum_to(g * ~a_wins, b.shape)

    return _result(get_array_module(a.data).maximum(a.data, b.data), (a, b), backward, "maximum")


def cat(tensors, axis=0) -> Tensor:
    """Concatenate along an existing axis."""
    tensors = tensor_list("cat", tensors, axis)
    xp = get_array_module(tensors[0].data)
    try:
        data = xp.concatenate([t.data for t in tensors], axis=axis)
    except ValueError as err:
        raise ValueError(f"cat: shapes {[t.shape for t in tensors]} along axis {axis}: {err}") from None
    ends = np.cumsum([t.shape[axis] for t in tensors])[:-1].tolist()  # plain ints suit CuPy too

    def backward(g):
        return tuple(xp.split(g, ends, axis=axis))

    return _result(data, tuple(tensors), backward, "cat")


def stack(tensors, axis=0) -> Tensor:
    """Stack along a new axis."""
    tensors = tensor_list("stack", tensors, axis)
    xp = get_array_module(tensors[0].data)
    try:
        data = xp.stack([t.data for t in tensors], axis=axis)
    except ValueError as err:
        raise ValueError(f"stack: shapes {[t.shape for t in tensors]}: {err}") from None

    def backward(g):
        return tuple(xp.moveaxis(g, axis, 0))

    return _result(data, tuple(tensors), backward, "stack")
