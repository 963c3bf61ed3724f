"""The Tensor and reverse-mode automatic differentiation.

A Tensor wraps one array (``.data``, NumPy or CuPy). Every operation on Tensors returns
a new Tensor that remembers its inputs (``_parents``) and a small function
(``_backward``) that turns the gradient of the output into gradients of the inputs --
the chain rule for that one op, written right next to its forward computation.

``loss.backward()`` then visits the graph once, from the loss back to the leaves, in
reverse topological order, so every node has received the gradient from all of its
users before it passes gradient on. Only leaves (tensors created by the user with
``requires_grad=True``, such as parameters) keep a ``.grad``; gradients of intermediate
results live in a dictionary local to one backward pass. SAM runs several backward
passes per step, and nothing may leak from one into the next.
"""

from __future__ import annotations

import numpy as np

from . import backend, rng
from .backend import get_array_module

_default_dtype = np.dtype(np.float32)
_grad_enabled = True
relu_mask_hook = None  # set by sharpness.frozen_relu_pattern() to hold ReLU's on/off pattern fixed


def set_default_dtype(dtype) -> None:
    """Floating dtype of new tensors: float32 (default) or float64 (for gradient checks)."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"default dtype must be float32 or float64, got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    return _default_dtype


class no_grad:
    """Context manager: operations inside it build no graph (used for updates and probes)."""

    def __enter__(self):
        global _grad_enabled
        self._previous, _grad_enabled = _grad_enabled, False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def sum_to(grad, shape):
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting, used by every op.

    Broadcasting copies an operand along new leading axes and along axes of size 1, so
    its gradient is the sum over exactly those axes.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def _result(data, parents, backward_fn, op):
    """A new Tensor made by ``op``; it joins the graph only if some input needs a gradient."""
    out = Tensor.__new__(Tensor)
    out.data, out.grad, out._op = data, None, op
    out.requires_grad = _grad_enabled and any(p.requires_grad for p in parents)
    out._parents = parents if out.requires_grad else ()
    out._backward = backward_fn if out.requires_grad else None
    return out


def _broadcasting(op, a, b, compute, grads):
    """An element-wise binary op. ``grads(g)`` returns the full-size input gradients;
    they are summed back to each operand's shape here, the one place this happens."""
    try:
        data = compute(a.data, b.data)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None

    def backward(g):
        ga, gb = grads(g)
        return sum_to(ga, a.shape), sum_to(gb, b.shape)

    return _result(data, (a, b), backward, op)


def _is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class Tensor:
    """An array with an optional gradient. ``Tensor(data, requires_grad=False)``."""

    __hash__ = object.__hash__  # tensors are compared by identity, as parameters must be

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        array = backend.to_device(data, dtype)
        if dtype is None and array.dtype.kind == "f" and array.dtype != _default_dtype:
            array = array.astype(_default_dtype)  # floats follow the default, never upcast
        elif array is data:
            array = array.copy()  # our own memory: an in-place update must not reach the caller
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {array.dtype}")
        self.data, self.grad, self.requires_grad = array, None, bool(requires_grad)
        self._parents, self._backward, self._op = (), None, ""

    # ---- what it is ----------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    T = property(lambda self: self.transpose())

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.to_host(self.data)!r}{grad})"

    def numpy(self) -> np.ndarray:
        """A host (NumPy) copy of the data."""
        return np.array(backend.to_host(self.data), copy=True)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def __bool__(self):
        return bool(self.item())

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._leaf(self.data)

    @staticmethod
    def _leaf(data, requires_grad=False):
        out = _result(data, (), None, "")
        out.requires_grad = requires_grad
        return out

    def _lift(self, other) -> Tensor:
        """Turn a Python number or array into a constant Tensor (numbers take our dtype)."""
        if isinstance(other, Tensor):
            return other
        floating_number = isinstance(other, (int, float)) and self.dtype.kind == "f"
        xp = get_array_module(self.data)
        return Tensor._leaf(xp.asarray(other, dtype=self.dtype if floating_number else None))

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
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, self.dtype)
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

    # ---- arithmetic ----------------------------------------------------------------
    def __add__(self, other):
        return _broadcasting("add", self, self._lift(other), lambda a, b: a + b, lambda g: (g, g))

    def __sub__(self, other):
        return _broadcasting("sub", self, self._lift(other), lambda a, b: a - b, lambda g: (g, -g))

    def __mul__(self, other):
        a, b = self, self._lift(other)
        return _broadcasting("mul", a, b, lambda x, y: x * y, lambda g: (g * b.data, g * a.data))

    def __truediv__(self, other):
        a, b = self, self._lift(other)
        return _broadcasting(
            "div", a, b, lambda x, y: x / y, lambda g: (g / b.data, -g * a.data / (b.data * b.data))
        )

    def __pow__(self, exponent):
        a = self
        if isinstance(exponent, Tensor):  # both base and exponent carry gradients
            b = exponent
            xp = get_array_module(a.data)
            return _broadcasting(
                "pow",
                a,
                b,
                lambda x, y: x**y,
                lambda g: (g * b.data * a.data ** (b.data - 1), g * a.data**b.data * xp.log(a.data)),
            )
        if not isinstance(exponent, (int, float)):
            raise TypeError(f"pow: exponent must be a number or a Tensor, got {type(exponent).__name__}")
        return _result(a.data**exponent, (a,), lambda g: (g * exponent * a.data ** (exponent - 1),), "pow")

    def __neg__(self):
        return _result(-self.data, (self,), lambda g: (-g,), "neg")

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return self._lift(other) - self

    def __rtruediv__(self, other):
        return self._lift(other) / self

    def __rpow__(self, base):
        return self._lift(base) ** self

    def __matmul__(self, other):
        a, b = self, self._lift(other)
        try:
            data = a.data @ b.data
        except ValueError:
            inner = "only" if b.ndim == 1 else "second-to-last"
            raise ValueError(
                f"matmul: cannot multiply shapes {a.shape} and {b.shape}: the last dimension of "
                f"the first must equal the {inner} dimension of the second"
            ) from None

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
        return self._lift(other) @ self

    # ---- reductions ----------------------------------------------------------------
    def _expand_reduced(self, g, axis, keepdims):
        """Give a reduced gradient back the axes the reduction removed."""
        if axis is not None and not keepdims:
            g = get_array_module(g).expand_dims(g, axis)
        return g

    def sum(self, axis=None, keepdims=False):
        a = self
        xp = get_array_module(a.data)

        def backward(g):
            return (xp.broadcast_to(a._expand_reduced(g, axis, keepdims), a.shape),)

        return _result(a.data.sum(axis=axis, keepdims=keepdims), (a,), backward, "sum")

    def mean(self, axis=None, keepdims=False):
        total = self.sum(axis=axis, keepdims=keepdims)
        return total / (self.data.size // max(total.data.size, 1))

    def max(self, axis=None, keepdims=False):
        """Maximum; the gradient is shared equally among tied maxima (like ``torch.amax``)."""
        a = self
        peak = a.data.max(axis=axis, keepdims=True)

        def backward(g):
            winners = a.data == peak
            share = winners / winners.sum(axis=axis, keepdims=True)
            return (a._expand_reduced(g, axis, keepdims) * share.astype(a.dtype),)

        data = peak if keepdims else (peak.reshape(()) if axis is None else peak.squeeze(axis))
        return _result(data, (a,), backward, "max")

    # ---- shape ---------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        a = self
        return _result(a.data.reshape(shape), (a,), lambda g: (g.reshape(a.shape),), "reshape")

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = tuple(axes) if axes else tuple(reversed(range(self.ndim)))
        inverse = tuple(np.argsort(axes))
        return _result(self.data.transpose(axes), (self,), lambda g: (g.transpose(inverse),), "transpose")

    def __getitem__(self, index):
        a = self
        xp = get_array_module(a.data)

        def as_index(i):  # Tensors and lists of indices become arrays on our device
            return xp.asarray(i.data if isinstance(i, Tensor) else i) if isinstance(i, (Tensor, list)) else i

        index = tuple(map(as_index, index)) if isinstance(index, tuple) else as_index(index)

        def backward(g):
            grad = xp.zeros_like(a.data)
            if _is_basic_index(index):
                grad[index] = g  # slices never select an element twice
            else:
                backend.scatter_add(grad, index, g)  # repeated indices must add up
            return (grad,)

        return _result(a.data[index], (a,), backward, "getitem")

    # ---- element-wise functions ----------------------------------------------------
    def _unary(self, op, data, local_grad):
        return _result(data, (self,), lambda g: (g * local_grad(data),), op)

    def exp(self):
        return self._unary("exp", get_array_module(self.data).exp(self.data), lambda out: out)

    def log(self):
        x = self.data
        return self._unary("log", get_array_module(x).log(x), lambda out: 1 / x)

    def sqrt(self):
        return self._unary("sqrt", get_array_module(self.data).sqrt(self.data), lambda out: 0.5 / out)

    def abs(self):
        xp = get_array_module(self.data)
        return self._unary("abs", xp.abs(self.data), lambda out: xp.sign(self.data))

    def tanh(self):
        return self._unary("tanh", get_array_module(self.data).tanh(self.data), lambda out: 1 - out * out)

    def sigmoid(self):
        # 1/(1+e^-x) overflows for very negative x; the tanh form is exact and never does
        xp = get_array_module(self.data)
        return self._unary("sigmoid", 0.5 * (1 + xp.tanh(0.5 * self.data)), lambda out: out * (1 - out))

    def relu(self):
        passes = self.data > 0
        if relu_mask_hook is not None:  # sharpness.frozen_relu_pattern: reuse the masks from θ
            passes = relu_mask_hook(passes)
        return self._unary("relu", self.data * passes, lambda out: passes)

    def clip(self, min=None, max=None):
        x = self.data
        xp = get_array_module(x)
        inside = xp.ones(x.shape, dtype=bool)
        if min is not None:
            inside &= x >= min
        if max is not None:
            inside &= x <= max
        return self._unary("clip", xp.clip(x, min, max), lambda out: inside)

    # ---- comparisons: plain boolean results, outside the graph -----------------------
    # (== and != keep Python's identity meaning, so tensors can live in lists and sets)
    def __lt__(self, other):
        return Tensor._leaf(self.data < self._lift(other).data)

    def __le__(self, other):
        return Tensor._leaf(self.data <= self._lift(other).data)

    def __gt__(self, other):
        return Tensor._leaf(self.data > self._lift(other).data)

    def __ge__(self, other):
        return Tensor._leaf(self.data >= self._lift(other).data)


# ---- functions of several tensors and constructors -------------------------------------
def maximum(a: Tensor, b) -> Tensor:
    """Element-wise maximum; where a == b the gradient goes to ``a``."""
    b = a._lift(b)

    def grads(g):
        a_wins = a.data >= b.data
        return g * a_wins, g * ~a_wins

    return _broadcasting("maximum", a, b, lambda x, y: get_array_module(x).maximum(x, y), grads)


def cat(tensors, axis=0) -> Tensor:
    """Concatenate along an existing axis."""
    tensors = list(tensors)
    xp = get_array_module(tensors[0].data)
    ends = np.cumsum([t.shape[axis] for t in tensors])[:-1].tolist()  # plain ints suit CuPy too
    data = xp.concatenate([t.data for t in tensors], axis=axis)
    return _result(data, tuple(tensors), lambda g: tuple(xp.split(g, ends, axis=axis)), "cat")


def stack(tensors, axis=0) -> Tensor:
    """Stack along a new axis."""
    tensors = list(tensors)
    xp = get_array_module(tensors[0].data)
    data = xp.stack([t.data for t in tensors], axis=axis)
    return _result(data, tuple(tensors), lambda g: tuple(xp.moveaxis(g, axis, 0)), "stack")


def zeros(*shape, requires_grad=False) -> Tensor:
    return Tensor(backend.xp.zeros(shape, dtype=_default_dtype), requires_grad=requires_grad)


def ones(*shape, requires_grad=False) -> Tensor:
    return Tensor(backend.xp.ones(shape, dtype=_default_dtype), requires_grad=requires_grad)


def randn(*shape, requires_grad=False) -> Tensor:
    """Standard normal samples drawn on the host from minisam's generator."""
    return Tensor(rng.generator().standard_normal(shape), requires_grad=requires_grad)
