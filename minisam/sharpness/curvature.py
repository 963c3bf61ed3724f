"""Curvature: Hessian-vector products and the top Hessian eigenvalue λ_max.

λ_max of ∇²L(θ) is the standard sharpness measure (Keskar et al., ICLR 2017) and the one
the SAM papers report. It is found by power iteration on Hessian-vector products, each
the central difference of two exact gradients, taken in float64 with ReLU layers' on/off
pattern held at θ's (``nn.frozen_relu_pattern``): the result is the curvature of the
smooth piece of the loss that θ lies on, which is what autograd's Hessian would be.
"""

from __future__ import annotations

import numpy as np

from .. import backend, checks
from ..backend import get_array_module
from ..nn import frozen_relu_pattern
from ..vector import EPS0, add_scaled, dot, norm, scale, set_data
from .probing import (
    checked_params,
    directions_like,
    loss_and_gradient_at,
    loss_at,
    random_direction,
    stream_kept_on_error,
    theta_restored,
)

HVP_STEP = 1e-6  # the finite-difference step along a unit vector, in float64


def hessian_vector_product(closure, params, vector, eps: float | None = None) -> list:
    """Hv ≈ (g(θ + εv) − g(θ − εv)) / 2ε, central differences of exact gradients.

    Computed in float64 whatever the parameters' dtype, with a small step (ε = 1e-6
    along ``vector`` scaled to unit length), and with ReLU layers' on/off pattern held at
    θ's: the result is the curvature of the smooth piece of the loss that θ lies on. In
    float64 the rounding error, about u·‖g‖/ε with u = 1e-16, is only ~1e-10 at ε = 1e-6.
    The parameters' own arrays are put back untouched; the result is float64.
    """
    who = "hessian_vector_product"
    params = checked_params(params, who)
    direction = directions_like(vector, params, who, dtype=np.float64, name="vector")
    step = HVP_STEP if eps is None else checks.number(who, "eps", eps, 0, above=True)
    length = norm(direction)
    if length == 0:
        return [get_array_module(d).zeros_like(d) for d in direction]
    unit = scale(direction, 1.0 / length)
    gradients = []
    with theta_restored(params) as theta, frozen_relu_pattern() as pattern:
        theta64 = [t.astype(np.float64) for t in theta]
        set_data(params, theta64)
        loss_at(closure, who)  # a first pass at θ records the ReLU pattern
        for sign in (1.0, -1.0):
            pattern.replay()
            set_data(params, add_scaled(theta64, unit, sign * step))
            gradients.append(loss_and_gradient_at(closure, params, who)[1])
    g_plus, g_minus = gradients
    return [length * (gp - gm) / (2 * step) for gp, gm in zip(g_plus, g_minus, strict=True)]


def top_hessian_eigenvalue(
    closure,
    params,
    iters: int = 50,
    tol: float = 1e-8,
    eps: float | None = None,
    return_vector: bool = False,
):
    """λ_max of ∇²L(θ) by power iteration on finite-difference Hessian-vector products.

        v₀ random (library generator);  w = H vₜ;  λₜ = vₜᵀ w;  vₜ₊₁ = w/‖w‖

    until |λₜ − λₜ₋₁| ≤ tol·|λₜ| or ``iters`` products (2 gradients each). Power iteration
    converges to the eigenvalue of largest *magnitude*, at a rate set by |λ₂/λ₁|; near a
    minimum that is λ_max. Returns λ, or ``(λ, v)`` with v one host array per parameter.
    """
    who = "top_hessian_eigenvalue"
    params = checked_params(params, who)
    iters = checks.count(who, "iters", iters, 1)
    tol = checks.number(who, "tol", tol, 0)
    return_vector = checks.flag(who, "return_vector", return_vector)
    with stream_kept_on_error():  # a measurement that fails draws nothing
        vector = random_direction(params)
        vector = scale(vector, 1.0 / (norm(vector) + EPS0))
        eigenvalue = None
        for _ in range(iters):
            product = hessian_vector_product(closure, params, vector, eps)
            estimate = dot(vector, product)  # the Rayleigh quotient, vᵀHv with ‖v‖ = 1
            size = norm(product)
            if size == 0:  # H v = 0: every direction tried is flat
                eigenvalue = 0.0
                break
            vector = scale(product, 1.0 / size)
            converged = eigenvalue is not None and abs(estimate - eigenvalue) <= tol * abs(estimate)
            eigenvalue = estimate
            if converged:
                break
    if return_vector:
        return eigenvalue, [backend.to_host(v).copy() for v in vector]
    return eigenvalue
