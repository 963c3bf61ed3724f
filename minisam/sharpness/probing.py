"""How a measurement probes the loss: move θ, evaluate, put θ back exactly.

A measurement is given what an optimizer is given: a closure that returns the loss
Tensor (without calling backward) and the parameters. It moves the parameters by pointing
them at new arrays (θ + ε, made by minisam/vector.py), never by writing into θ's own
arrays, so putting θ back is handing those arrays back: bit for bit, with no rounding
left behind. Each ``p.grad`` is put back as found, and BatchNorm layers keep their running
statistics while the loss is probed (``nn.frozen_batchnorm_stats``): measuring a model
does not change it.
"""

from __future__ import annotations

from contextlib import contextmanager

from .. import backend, rng
from ..backend import get_array_module
from ..nn import frozen_batchnorm_stats
from ..tensor import Tensor
from ..vector import data_of, loss_and_gradients, loss_value, set_data


def checked_params(params, who: str) -> list:
    """The parameters as a list, each a Tensor that requires a gradient."""
    params = list(params)
    if not params:
        raise ValueError(f"{who}: got an empty parameter list")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise TypeError(f"{who}: parameter {i} must be a Tensor with requires_grad=True")
    return params


@contextmanager
def theta_restored(params):
    """Run the block with θ (the parameters' own arrays) in hand, then point every
    parameter back at its array and restore its ``.grad``."""
    theta, grads = data_of(params), [p.grad for p in params]
    try:
        with frozen_batchnorm_stats():
            yield theta
    finally:
        set_data(params, theta)
        for p, grad in zip(params, grads, strict=True):
            p.grad = grad


def loss_at(closure, who: str) -> float:
    """L at the current parameters (no graph)."""
    return float(loss_value(closure, who))


def loss_and_gradient_at(closure, params, who: str):
    """L and ∇L at the current parameters; a parameter the loss does not reach gets zeros."""
    loss, grads = loss_and_gradients(closure, params, who)
    grads = [
        get_array_module(p.data).zeros_like(p.data) if g is None else g
        for p, g in zip(params, grads, strict=True)
    ]
    return float(loss.item()), grads


def directions_like(direction, params, who: str, dtype=None) -> list:
    """``direction`` (an array or Tensor per parameter) as backend arrays shaped like the
    parameters, of their dtype (or ``dtype``)."""
    direction = list(direction)
    if len(direction) != len(params):
        raise ValueError(f"{who}: got {len(direction)} arrays for {len(params)} parameters")
    out = []
    for i, (d, p) in enumerate(zip(direction, params, strict=True)):
        d = backend.to_device(d.data if isinstance(d, Tensor) else d, p.dtype if dtype is None else dtype)
        if d.shape != p.shape:
            raise ValueError(f"{who}: array {i} has shape {d.shape}, parameter {i} has shape {p.shape}")
        out.append(d)
    return out


def random_direction(params) -> list:
    """A standard Gaussian array per parameter, drawn on the host from the library generator."""
    gen = rng.generator()
    return [backend.to_device(gen.standard_normal(p.shape), p.dtype) for p in params]
