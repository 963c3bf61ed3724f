"""The parameters as one long vector: the maths SAM, XSAM and the measurements share.

SAM's equations treat all of a network's parameters as a single vector θ: ‖g‖ is the L2
norm over every parameter together, ⟨v₀, v₁⟩ sums over every parameter, θ + ρ·v moves
every parameter at once. In code θ is a list of arrays, one per parameter; the helpers
here do those vector operations on such lists, so no optimizer or measurement writes its
own loop for them. They never modify their inputs: each returns new arrays (or, through
``KeptArrays``, arrays kept for the purpose), so "going back to θ" is simply handing θ's
own arrays back to the parameters (``set_data``).

Norms and dot products are accumulated as Python floats (float64) on the host, and a sum
of squares that overflows its array's dtype (float32 overflows near ‖g‖ ≈ 1.8e19) is
recomputed in float64 on a rescaled copy, so a large but finite gradient gives a large but
finite norm, never ``inf``.

The closure contract lives here too: ``closure()`` returns the scalar loss Tensor and
does not call backward itself (the optimizer does, as often as its algorithm needs).
"""

from __future__ import annotations

import math

from .backend import get_array_module
from .tensor import Tensor, no_grad

EPS0 = 1e-12  # ε₀, added to every norm that is divided by


# ---- norms and dot products over all parameters together -----------------------------------
def _sum_of_squares(a) -> float:
    xp = get_array_module(a)
    total = float(xp.vdot(a, a))
    if math.isfinite(total):
        return total
    # overflowed a's own dtype: rescale by the largest entry and accumulate in float64
    largest = float(xp.abs(a).max())
    if not math.isfinite(largest) or largest == 0.0:
        return total
    scaled = a.astype(xp.float64) / largest
    return float(xp.vdot(scaled, scaled)) * largest * largest


def norm(arrays) -> float:
    """‖x‖ = sqrt(Σ over every array of Σ xᵢ²), the global L2 norm."""
    return math.sqrt(sum(_sum_of_squares(a) for a in arrays))


def dot(xs, ys) -> float:
    """⟨x, y⟩ = Σ over every array of Σ xᵢ·yᵢ."""
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        xp = get_array_module(x)
        term = float(xp.vdot(x, y))
        if not math.isfinite(term):
            term = float(xp.vdot(x.astype(xp.float64), y.astype(xp.float64)))
        total += term
    return total


def unit(arrays, length: float | None = None) -> list:
    """x/(‖x‖ + ε₀): the direction of x as a vector of length (almost exactly) 1.
    Pass ``length`` when ‖x‖ is already known."""
    length = norm(arrays) if length is None else length
    return scale(arrays, 1.0 / (length + EPS0))


# ---- making new vectors ---------------------------------------------------------------------
def scale(xs, a: float) -> list:
    """a·x, as new arrays."""
    return [a * x for x in xs]


def add_scaled(xs, ys, a: float) -> list:
    """x + a·y, as new arrays (e.g. the ascent point θ + ρ·v)."""
    return [x + a * y for x, y in zip(xs, ys, strict=True)]


def combine(a: float, xs, b: float, ys) -> list:
    """a·x + b·y, as new arrays (e.g. a point on the great circle through v₀ and v₁)."""
    return [a * x + b * y for x, y in zip(xs, ys, strict=True)]


def subtract(xs, ys) -> list:
    """x − y, as new arrays (e.g. the displacement ϑ_k − θ)."""
    return [x - y for x, y in zip(xs, ys, strict=True)]


class KeptArrays:
    """New vectors written into arrays kept from call to call. ``SAM`` and ``XSAM`` each
    keep one, for the climb's points ϑ₁ … ϑ_k and the displacement ϑ_k − θ.

    ``add_scaled`` and ``subtract`` compute exactly what the functions of the
    same names in this module compute (the same operations in the same order, so the same
    bits), but write the result into one of two sets of arrays, used in turn: a result
    stays intact through the next call, which may read it, and is overwritten by the call
    after. Never hand these arrays to anything that keeps them (such as ``p.grad``).

    Why (a memory trick, kept because it measured worth it): with new arrays for every
    vector of every step, glibc's malloc gave the top of its heap back to the system after
    a step and faulted it in again in the next, in some processes and not in others. On the
    bench MLP that was 750-930 page faults per step and a SAM or XSAM step 1.3-1.45x slower
    than in a process without them; with kept arrays no step page-faults."""

    def __init__(self):
        self._sets, self._turn = ([], []), 0

    def _next(self, like) -> list:
        self._turn = 1 - self._turn
        out = self._sets[self._turn]
        if len(out) != len(like) or not all(map(_same_kind, out, like)):
            out[:] = [get_array_module(x).empty_like(x) for x in like]
        return out

    def add_scaled(self, xs, ys, a: float) -> list:
        """x + a·y (a·y first, as ``add_scaled``)."""
        out = self._next(xs)
        for o, x, y in zip(out, xs, ys, strict=True):
            xp = get_array_module(x)
            xp.multiply(y, a, out=o)
            xp.add(x, o, out=o)
        return list(out)

    def subtract(self, xs, ys) -> list:
        """x − y."""
        out = self._next(xs)
        for o, x, y in zip(out, xs, ys, strict=True):
            get_array_module(x).subtract(x, y, out=o)
        return list(out)


def _same_kind(kept, x) -> bool:
    return type(kept) is type(x) and kept.shape == x.shape and kept.dtype == x.dtype


# ---- parameters and their arrays ------------------------------------------------------------
def data_of(params) -> list:
    """The arrays the parameters hold now (θ). Not copies: nothing here writes into them."""
    return [p.data for p in params]


def set_data(params, arrays) -> None:
    """Point every parameter at an array: an ascent point, a probe point, or θ itself again.
    Handing θ's saved arrays back restores θ exactly, with no rounding."""
    for p, a in zip(params, arrays, strict=True):
        p.data = a


# ---- the closure contract -------------------------------------------------------------------
def _checked_loss(loss, who: str) -> Tensor:
    if not isinstance(loss, Tensor) or loss.size != 1:
        what = f"a Tensor of shape {loss.shape}" if isinstance(loss, Tensor) else type(loss).__name__
        raise TypeError(
            f"{who}: the closure must return the scalar loss Tensor (and not call backward "
            f"itself), got {what}"
        )
    return loss


class NonFiniteLoss(ValueError, RuntimeError):
    """The loss became NaN or infinite (``value``): a step or a measurement on it would spread
    NaN into everything it touches. A ValueError and a RuntimeError, so either catches it."""

    def __init__(self, message: str, value: float):
        super().__init__(message)
        self.value = value


def loss_and_gradients(closure, params, who: str):
    """One forward+backward pass at the current parameters.

    Clears the gradients, calls ``closure()``, checks that it returned a finite scalar loss
    and did not call ``backward`` itself (a gradient present before our own backward means
    it did, and would be counted twice), backpropagates, and returns ``(loss, grads)``: the
    loss detached, and each parameter's gradient (``None`` where the loss does not reach it).
    A NaN or infinite loss raises ``NonFiniteLoss`` (the optimizers then put back whatever
    the step had changed)."""
    for p in params:
        p.grad = None
    loss = _checked_loss(closure(), who)
    value = loss.item()
    if not math.isfinite(value):
        raise NonFiniteLoss(
            f"{who}: the closure's loss is {value}, so nothing was changed (a NaN or infinite loss "
            "spreads to every parameter a step touches; a smaller learning rate may help; look for "
            "NaN or inf in the data and the model)",
            value,
        )
    if any(p.grad is not None for p in params):
        raise RuntimeError(
            f"{who}: the closure called backward itself. In minisam the closure only computes "
            "and returns the loss; the optimizer calls backward as often as its algorithm needs "
            "(calling it in the closure too would add the gradient twice). Remove the "
            "loss.backward() line from the closure."
        )
    loss.backward()
    return loss.detach(), [p.grad for p in params]


def loss_value(closure, who: str) -> float:
    """L at the current parameters, without building a graph (XSAM's probes, measurements)."""
    with no_grad():
        return _checked_loss(closure(), who).item()
