"""Reference answers to the exercises of lesson 03 (SAM from first principles).

Try the exercises before you read these. Plain NumPy, one array per parameter; ‖·‖ is the
norm over all arrays together, ε₀ = 1e-12 (minisam/optim/ALGORITHMS.md, sections SAM and XSAM).
Check your own versions with ``minisam.exercises``.
"""

import math

import numpy as np

EPS0 = 1e-12


def global_norm(arrays):
    """‖x‖ over every array together: one vector, however it is cut into arrays."""
    return math.sqrt(sum(float(np.sum(a * a)) for a in arrays))


def sam_perturbation(grads, rho):
    """ε̂ = ρ·g/(‖g‖ + ε₀): the step of length ρ straight uphill."""
    scale = rho / (global_norm(grads) + EPS0)
    return [scale * g for g in grads]


def sam_gradient(params, loss_and_grad, rho):
    """g(θ + ε̂(θ)): the gradient at the ascent point. θ itself is never written: the ascent
    point is a new list of arrays, so there is nothing to undo afterwards."""
    _, grads = loss_and_grad(params)
    eps = sam_perturbation(grads, rho)
    ascent_point = [p + e for p, e in zip(params, eps, strict=True)]
    _, grads_there = loss_and_grad(ascent_point)
    return grads_there


def slerp(v0, v1, alpha):
    """v(α) = [sin((1−α)ψ)·v₀ + sin(αψ)·v₁]/sin ψ, the point at angle αψ on the great circle
    from v₀ through v₁; v₁ when the circle is undefined (v₀ and v₁ (anti)parallel)."""
    cos_psi = sum(float(np.sum(a * b)) for a, b in zip(v0, v1, strict=True))
    psi = math.acos(min(1.0, max(-1.0, cos_psi)))  # rounding can push the dot product past ±1
    if math.sin(psi) < 1e-8:
        return [b.copy() for b in v1]
    a = math.sin((1 - alpha) * psi) / math.sin(psi)
    b = math.sin(alpha * psi) / math.sin(psi)
    return [a * x + b * y for x, y in zip(v0, v1, strict=True)]


def xsam_gradient(params, loss_and_grad, loss, rho, rho_max, alphas):
    """One XSAM search step (k = 1): returns (α*, ‖g₁‖·v(α*))."""
    _, g0 = loss_and_grad(params)
    eps = sam_perturbation(g0, rho)
    _, g1 = loss_and_grad([p + e for p, e in zip(params, eps, strict=True)])
    v0 = [e / (global_norm(eps) + EPS0) for e in eps]  # where the ascent went
    v1 = [g / (global_norm(g1) + EPS0) for g in g1]  # where SAM's update points

    best_alpha, best_loss = None, -math.inf
    for alpha in alphas:
        direction = slerp(v0, v1, alpha)
        probe = loss([p + rho_max * d for p, d in zip(params, direction, strict=True)])
        if probe > best_loss:  # strictly greater: on a tie the smallest α stays
            best_alpha, best_loss = alpha, probe
    length = global_norm(g1)
    return best_alpha, [length * d for d in slerp(v0, v1, best_alpha)]
