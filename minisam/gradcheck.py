"""Check a backward pass against central differences.

For every input x that requires a gradient and every element x[i]:

    numerical  = (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps)
    analytical = x.grad[i] after f(x).backward()

where f is a fixed random weighting of the function's outputs, ``sum(w * fn(*inputs))``,
so that every output element takes part. Central differences are accurate to O(eps²),
but each difference also carries rounding error of about ``machine_eps·|f| / eps``; in
float64 (machine epsilon 1e-16) both are tiny, in float32 (1e-7) the rounding error
swamps a small eps. The default eps = 1e-5 balances the two in float64. Check gradients
in float64: ``minisam.set_default_dtype(np.float64)``.

Use it on your own ops too:

    from minisam.gradcheck import gradcheck
    x = ms.Tensor(np.random.randn(3, 4), requires_grad=True)
    gradcheck(lambda x: (x * x).sum(axis=0), [x])     # raises GradcheckError on a mismatch
"""

from __future__ import annotations

import numpy as np

from . import backend
from .checks import ArgumentError, count, number
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """backward() disagrees with central differences."""


def _weighted_output(fn, inputs, weights):
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: the function must return a Tensor, got {type(out).__name__}")
    return out if weights is None else (out * weights).sum()


def _checked_inputs(inputs) -> list:
    if isinstance(inputs, Tensor) or not isinstance(inputs, (list, tuple)):
        raise ArgumentError(f"gradcheck: inputs must be a list of Tensors, got {type(inputs).__name__}")
    for n, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise ArgumentError(
                f"gradcheck: inputs[{n}] must be an ms.Tensor, got {type(x).__name__}; "
                "wrap it: ms.Tensor(x, requires_grad=True)"
            )
    if not any(x.requires_grad for x in inputs):
        raise ArgumentError("gradcheck: inputs has no Tensor with requires_grad=True: nothing to check")
    if not any(x.requires_grad and x.size for x in inputs):
        raise ArgumentError(
            "gradcheck: inputs has nothing to check: each Tensor in it that requires a gradient is empty"
        )
    for n, x in enumerate(inputs):  # a difference of NaNs compares as a failure nobody could read
        if x.dtype.kind == "f" and not np.isfinite(backend.to_host(x.data)).all():
            raise ArgumentError(
                f"gradcheck: inputs[{n}] holds NaN or infinite values; check at finite points"
            )
    return list(inputs)


def _precision_advice(inputs) -> str:
    """What to do when a check fails in low precision, where a correct op can fail too."""
    low = sorted({str(x.dtype) for x in inputs if x.requires_grad and np.finfo(x.dtype).bits < 64})
    if not low:
        return ""
    return (
        f". The inputs are {' and '.join(low)}: there a central difference carries rounding "
        "error of about 1e-7·|f|/eps, so even a correct backward can fail. Check in float64: "
        "call ms.set_default_dtype(np.float64) before creating the inputs."
    )


def gradcheck(fn, inputs, eps=1e-5, rtol=1e-6, atol=1e-9, seed=0) -> bool:
    """Raise ``GradcheckError`` unless every analytical gradient matches its central
    difference within ``atol + rtol·max(|numerical|, |analytical|)``; return True.

    The inputs' values and gradients are left as they were, even when it raises."""
    if not callable(fn):
        raise ArgumentError(f"gradcheck: fn must be a function of the inputs, got {type(fn).__name__}")
    inputs = _checked_inputs(inputs)
    eps = number("gradcheck", "eps", eps, 0.0, above=True)
    rtol, atol = number("gradcheck", "rtol", rtol, 0.0), number("gradcheck", "atol", atol, 0.0)
    seed = count("gradcheck", "seed", seed)
    with no_grad():
        shape = _weighted_output(fn, inputs, None).shape  # (checks it returns a Tensor)
    weights = None
    if shape != ():  # weight the outputs so a gradient error cannot cancel out in a plain sum
        local = np.random.default_rng(seed)  # not minisam's generator: leave the user's stream alone
        weights = Tensor(local.uniform(0.5, 1.5, size=shape), dtype=inputs[0].dtype)

    saved_grads = [x.grad for x in inputs]
    try:
        for x in inputs:
            x.grad = None
        out = _weighted_output(fn, inputs, weights)
        if not out.requires_grad:
            raise ArgumentError(
                "gradcheck: fn's output does not require a gradient (it does not depend on an input "
                "with requires_grad=True, or it was computed under no_grad): there is no backward to check"
            )
        out.backward()
        analytical = [None if x.grad is None else backend.to_host(x.grad).copy() for x in inputs]
    finally:
        for x, g in zip(inputs, saved_grads, strict=True):
            x.grad = g

    for n, x in enumerate(inputs):
        if not x.requires_grad:
            continue
        received = analytical[n] if analytical[n] is not None else np.zeros(x.shape)
        for index in np.ndindex(*x.shape):
            original = x.data[index].item()
            try:
                with no_grad():
                    x.data[index] = original + eps
                    above = _weighted_output(fn, inputs, weights).item()
                    x.data[index] = original - eps
                    below = _weighted_output(fn, inputs, weights).item()
            finally:
                x.data[index] = original  # put back even if fn raised
            expected = (above - below) / (2 * eps)
            got = float(received[index])
            if not abs(got - expected) <= atol + rtol * max(abs(expected), abs(got)):
                raise GradcheckError(
                    f"gradcheck: input {n} (shape {x.shape}, {x.dtype}) at index {index}: "
                    f"expected {expected:.10g} (central difference, eps={eps:g}), "
                    f"received {got:.10g} (backward); difference {got - expected:.3g}"
                    + _precision_advice(inputs)
                )
    return True
