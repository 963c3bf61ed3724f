"""How a measurement probes the loss: move θ, evaluate, put θ back exactly.

A measurement is given what an optimizer is given: a closure that returns the loss
Tensor (without calling backward) and the parameters. It moves the parameters by pointing
them at new arrays (θ + ε, made by minisam/vector.py), never by writing into θ's own
arrays, so putting θ back is handing those arrays back: bit for bit, with no rounding
left behind. Each ``p.grad`` is put back as found, and BatchNorm layers keep their running
statistics while the loss is probed (``nn.frozen_batchnorm_stats``): measuring a model
does not change it. The arguments are checked on the way in: the parameters are leaf Tensors
(a single Tensor is not a list of them), a direction holds finite real numbers, and a loss or
gradient that is not finite where the measurement needs one stops it with an error.
"""

from __future__ import annotations

from contextlib import contextmanager

from .. import backend, checks, rng
from ..backend import get_array_module
from ..nn import frozen_batchnorm_stats
from ..tensor import Tensor
from ..vector import data_of, loss_and_gradients, loss_value, set_data


def checked_params(params, who: str) -> list:
    """The parameters as a list, each a leaf Tensor that requires a gradient."""
    try:  # a single Tensor is iterable too (by rows), which is never what was meant
        listed = None if isinstance(params, Tensor) else list(params)
    except TypeError:
        listed = None
    if listed is None:
        raise checks.ArgumentError(
            f"{who}: params must be a list of parameters such as list(model.parameters()) or [p], "
            f"got {type(params).__name__}"
        )
    if not listed:
        raise ValueError(f"{who}: got an empty parameter list")
    for i, p in enumerate(listed):
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise TypeError(f"{who}: parameter {i} must be a Tensor with requires_grad=True")
        if p._parents:
            raise TypeError(f"{who}: parameter {i} must be a leaf Tensor, not the result of an operation")
    return listed


@contextmanager
def theta_restored(params):
    """Run the block with θ (the parameters' own arrays) in hand, then point every
    parameter back at its array and restore its ``.grad`` (and, on an error, the random stream)."""
    theta, grads = data_of(params), [p.grad for p in params]
    try:
        with frozen_batchnorm_stats(), stream_kept_on_error():
            yield theta
    finally:
        set_data(params, theta)
        for p, grad in zip(params, grads, strict=True):
            p.grad = grad


@contextmanager
def stream_kept_on_error():
    """If the block raises, the random stream is put back: a failed measurement draws nothing."""
    stream = rng.saved()
    try:
        yield
    except BaseException:
        rng.restore(stream)
        raise


def loss_at(closure, who: str) -> float:
    """L at the current parameters (no graph)."""
    try:
        return float(loss_value(closure, who))
    except RuntimeError as err:  # without a graph, a backward call inside the closure ends up here
        if not str(err).startswith("backward(): this tensor does not require a gradient"):
            raise
        raise RuntimeError(
            f"{who}: the closure called backward itself; it must only compute and return the loss "
            "(the measurement evaluates it, and takes gradients where it needs them)"
        ) from None


def loss_and_gradient_at(closure, params, who: str):
    """L and ∇L at the current parameters; a parameter the loss does not reach gets zeros.
    Both must be finite: ascent steps and finite differences have no meaning on NaN."""
    loss, grads = loss_and_gradients(closure, params, who)
    grads = [
        get_array_module(p.data).zeros_like(p.data) if g is None else g
        for p, g in zip(params, grads, strict=True)
    ]
    value = float(loss.item())  # finite: loss_and_gradients refuses NaN and inf (vector.NonFiniteLoss)
    if not all(bool(get_array_module(g).isfinite(g).all()) for g in grads):
        raise ValueError(
            f"{who}: the gradient of the loss holds NaN or infinite values at a point the measurement probes"
        )
    return value, grads


def directions_like(direction, params, who: str, dtype=None, name: str = "direction") -> list:
    """``direction`` (an array or Tensor per parameter, finite real numbers) as backend arrays
    shaped like the parameters, of their dtype (or ``dtype``); ``name`` is its name in errors."""
    try:
        direction = list(direction)
    except TypeError:
        raise checks.ArgumentError(f"{who}: {name} must be a list of arrays, one per parameter") from None
    if len(direction) != len(params):
        raise ValueError(f"{who}: {name} has {len(direction)} arrays for {len(params)} parameters")
    out = []
    for i, (d, p) in enumerate(zip(direction, params, strict=True)):
        raw = d.data if isinstance(d, Tensor) else d
        try:
            array = None if raw is None else backend.to_device(raw)
        except (TypeError, ValueError):  # ragged lists and the like
            array = None
        if array is None or array.dtype.kind not in "iuf":
            raise checks.ArgumentError(
                f"{who}: {name}[{i}] must be an array of real numbers, got {raw!r:.60}"
            )
        if array.shape != p.shape:
            raise ValueError(f"{who}: {name}[{i}] has shape {array.shape}, parameter {i} has shape {p.shape}")
        if not bool(get_array_module(array).isfinite(array).all()):
            raise checks.ArgumentError(f"{who}: {name}[{i}] holds NaN or infinite values")
        out.append(array.astype(p.dtype if dtype is None else dtype))
    return out


def random_direction(params) -> list:
    """A standard Gaussian array per parameter, drawn on the host from the library generator."""
    gen = rng.generator()
    return [backend.to_device(gen.standard_normal(p.shape), p.dtype) for p in params]
