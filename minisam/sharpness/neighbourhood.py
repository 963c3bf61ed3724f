"""The worst loss in the ρ-ball around θ, and how well a direction points at it.

This is the inner problem of SAM (Foret et al., ICLR 2021, eq. 1),

    max over ‖ε‖ ≤ ρ of L(θ + ε),

solved properly rather than by SAM's single step, so that SAM's and XSAM's estimates of
the direction to the maximum can be checked against it (Chen & Zhou, ICLR 2026, Fig. 1a).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import backend, checks
from ..tensor import Tensor
from ..vector import EPS0, add_scaled, norm, scale, set_data
from .probing import checked_params, loss_and_gradient_at, random_direction, theta_restored


@dataclass
class WorstCase:
    """Result of ``worst_case_loss``.

    value        the largest L(θ + ε) found with ‖ε‖ ≤ ρ
    epsilon      that ε, one host array per parameter
    loss         L(θ) itself, for reference (sharpness = value − loss)
    restart_values  the best value of each restart (restart 0 starts along g₀)
    """

    value: float
    epsilon: list
    loss: float
    restart_values: list = field(default_factory=list)

    @property
    def sharpness(self) -> float:
        return self.value - self.loss


def worst_case_loss(
    closure, params, rho: float, steps: int = 20, restarts: int = 3, lr: float = 0.25
) -> WorstCase:
    """max over ‖ε‖ ≤ ρ of L(θ + ε), by projected normalised gradient ascent with restarts.

    Each restart starts from ε on the sphere ‖ε‖ = ρ -- restart 0 at SAM's ascent point
    ρ·g₀/‖g₀‖ (so the answer is never below SAM's estimate), the others in random
    Gaussian directions -- and iterates

        ε ← Π_ρ( ε + s·ρ·g(θ+ε)/‖g(θ+ε)‖ ),    Π_ρ(x) = x·min(1, ρ/‖x‖)

    with step length s·ρ, s starting at ``lr`` and halved whenever a step fails to
    raise the loss (so the iterates settle instead of circling a maximum). The best
    point seen over all restarts is returned; the ascent is a local method, so this is
    a lower bound on the true maximum, tight on the smooth small problems minisam uses.
    """
    who = "worst_case_loss"
    params = checked_params(params, who)
    rho = checks.number(who, "rho", rho, 0, above=True)
    steps = checks.count(who, "steps", steps, 0)
    restarts = checks.count(who, "restarts", restarts, 1)
    lr = checks.number(who, "lr (the step length as a fraction of rho)", lr, 0, above=True)

    with theta_restored(params) as theta:
        loss_at_theta, g0 = loss_and_gradient_at(closure, params, who)
        best_value, best_eps, restart_values = -math.inf, None, []
        for restart in range(restarts):
            start = g0 if restart == 0 and norm(g0) > 0 else random_direction(params)
            on_sphere = scale(start, rho / (norm(start) + EPS0))
            value, eps = _ascend(closure, params, theta, on_sphere, rho, steps, lr * rho)
            restart_values.append(value)
            if value > best_value:
                best_value, best_eps = value, eps
    return WorstCase(
        value=best_value, epsilon=[backend.to_host(e).copy() for e in best_eps],
        loss=loss_at_theta, restart_values=restart_values,
    )  # fmt: skip


def _ascend(closure, params, theta, eps, rho, steps, step):
    """One restart of the ascent from θ + ε; returns the best (L(θ + ε), ε) it saw."""
    who = "worst_case_loss"
    set_data(params, add_scaled(theta, eps, 1.0))
    value, grad = loss_and_gradient_at(closure, params, who)
    best = (value, eps)
    for _ in range(steps):
        g_norm = norm(grad)
        if g_norm == 0:
            break
        trial = add_scaled(eps, grad, step / g_norm)
        trial = scale(trial, min(1.0, rho / (norm(trial) + EPS0)))  # back onto the ball
        set_data(params, add_scaled(theta, trial, 1.0))
        trial_value, trial_grad = loss_and_gradient_at(closure, params, who)
        if trial_value > value:
            eps, value, grad = trial, trial_value, trial_grad
            if value > best[0]:
                best = (value, eps)
        else:
            step *= 0.5
    return best


def cosine_to_maximum(direction, best_eps) -> float:
    """cos ∠(direction, ε*): how closely a direction points at the worst point found.

    ``direction`` is one array per parameter -- g₀, SAM's g₁, an XSAM update v(α*) --
    and ``best_eps`` the ε* of ``worst_case_loss`` (or the ``WorstCase`` itself). The
    paper's Fig. 1a question (Chen & Zhou, ICLR 2026): is the gradient at the ascent
    point a better guide to the maximiser on the ρ-sphere than the local gradient?
    """
    if isinstance(best_eps, WorstCase):
        best_eps = best_eps.epsilon
    a, b = _host_vector(direction, "direction"), _host_vector(best_eps, "best_eps")
    if len(a) != len(b) or any(x.size != y.size for x, y in zip(a, b, strict=True)):
        raise ValueError(
            "cosine_to_maximum: direction and best_eps must hold matching arrays, got sizes "
            f"{[x.size for x in a]} and {[y.size for y in b]}"
        )
    a, b = np.concatenate(a), np.concatenate(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + EPS0))


def _host_vector(arrays, name: str) -> list:
    """Arrays or Tensors, one per parameter, finite real numbers, as flat float64 host arrays."""
    who = "cosine_to_maximum"
    try:
        arrays = [np.asarray(backend.to_host(x.data if isinstance(x, Tensor) else x)) for x in arrays]
    except (TypeError, ValueError):  # not iterable, ragged, ...
        arrays = [np.asarray(None)]
    if not arrays:
        raise checks.ArgumentError(f"{who}: {name} is empty; it must hold one array per parameter")
    for i, x in enumerate(arrays):
        if x.dtype.kind not in "iuf":
            raise checks.ArgumentError(
                f"{who}: {name}[{i}] must be an array of real numbers, got dtype {x.dtype}"
            )
        if not np.isfinite(x).all():
            raise checks.ArgumentError(f"{who}: {name}[{i}] holds NaN or infinite values")
    return [x.astype(np.float64).ravel() for x in arrays]
