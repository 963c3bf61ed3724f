"""Pictures of the loss around θ: 1-D and 2-D slices, and the plane of g₀ and g₁.

loss_slice_1d    L(θ + α·d)                      (Goodfellow et al. 2015; Li et al. 2018)
loss_slice_2d    L(θ + α·d₁ + β·d₂) on a grid    (Li et al., NeurIPS 2018)
filter_normalized_direction   a random d scaled filter by filter to θ, so slices of
                 networks with differently scaled weights compare (Li et al. 2018)
grad_plane       the plane of g₀ = ∇L(θ) and SAM's g₁ (Chen & Zhou, ICLR 2026, Fig. 1a)
circle_losses    L on the ρ-circle of such a plane, to find its maximiser exhaustively
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import backend, checks
from ..backend import get_array_module
from ..vector import EPS0, add_scaled, combine, dot, norm, scale, set_data
from .probing import (
    checked_params,
    directions_like,
    loss_and_gradient_at,
    loss_at,
    random_direction,
    theta_restored,
)


def loss_slice_1d(closure, params, direction, alphas) -> np.ndarray:
    """L(θ + α·d) for each α in ``alphas`` (Goodfellow et al. 2015; Li et al. 2018)."""
    who = "loss_slice_1d"
    params = checked_params(params, who)
    direction = directions_like(direction, params, who)
    alphas = _grid(who, "alphas", alphas)
    values = np.empty(len(alphas))
    with theta_restored(params) as theta:
        for i, alpha in enumerate(alphas):
            set_data(params, add_scaled(theta, direction, float(alpha)))
            values[i] = loss_at(closure, who)
    return values


def loss_slice_2d(closure, params, d1, d2, alphas, betas) -> np.ndarray:
    """Z[i, j] = L(θ + alphas[j]·d1 + betas[i]·d2): rows follow betas, columns alphas, so
    ``plt.contour(*np.meshgrid(alphas, betas), Z)`` draws it (Li et al., NeurIPS 2018)."""
    who = "loss_slice_2d"
    params = checked_params(params, who)
    d1 = directions_like(d1, params, who, name="d1")
    d2 = directions_like(d2, params, who, name="d2")
    alphas, betas = _grid(who, "alphas", alphas), _grid(who, "betas", betas)
    Z = np.empty((len(betas), len(alphas)))
    with theta_restored(params) as theta:
        for i, beta in enumerate(betas):
            for j, alpha in enumerate(alphas):
                set_data(params, add_scaled(add_scaled(theta, d1, float(alpha)), d2, float(beta)))
                Z[i, j] = loss_at(closure, who)
    return Z


def filter_normalized_direction(params) -> list:
    """A random direction scaled filter by filter to the parameters (Li, Xu, Taylor,
    Studer, Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018):

        d ~ N(0, I);   d_i ← d_i/‖d_i‖ · ‖θ_i‖   for every filter i

    where a filter is one output row of a weight, i.e. a slice along axis 0 of any
    parameter with ndim ≥ 2 (a Linear row, a Conv output channel). Parameters with
    ndim ≤ 1 -- biases, BatchNorm scales and shifts -- get d = 0, as Li et al. do
    (their "ignore biasbn" setting): this keeps slices comparable across networks whose
    weights differ in scale. Returns one backend array per parameter.
    """
    params = checked_params(params, "filter_normalized_direction")
    direction = []
    for d, p in zip(random_direction(params), params, strict=True):
        xp = get_array_module(p.data)
        if p.ndim <= 1:
            direction.append(xp.zeros_like(p.data))
            continue
        axes = tuple(range(1, p.ndim))
        d_norm = xp.sqrt((d * d).sum(axis=axes, keepdims=True))
        p_norm = xp.sqrt((p.data * p.data).sum(axis=axes, keepdims=True))
        direction.append(d * (p_norm / (d_norm + EPS0)))
    return direction


@dataclass
class GradPlane:
    """The plane of g₀ and g₁ (Chen & Zhou, ICLR 2026, Fig. 1a), with an orthonormal basis.

    e1 = g₀/‖g₀‖;  e2 = the part of g₁ orthogonal to e1, normalised (zero if g₁ ∥ g₀).
    g0, g1 are the gradients (host arrays per parameter); cos_g0_g1 the cosine between
    them; g1_coords the coordinates (⟨g₁,e1⟩, ⟨g₁,e2⟩) of g₁ in the plane.
    """

    e1: list
    e2: list
    g0: list
    g1: list
    rho: float
    cos_g0_g1: float
    g1_coords: tuple


def grad_plane(closure, params, rho: float) -> GradPlane:
    """g₀ = ∇L(θ), g₁ = ∇L(θ + ρ·g₀/‖g₀‖) (SAM's gradient at its ascent point), and the
    orthonormal basis of their plane by Gram–Schmidt. Draw the paper's Fig. 1a with
    ``loss_slice_2d(closure, params, plane.e1, plane.e2, ...)`` and ``circle_losses``."""
    who = "grad_plane"
    params = checked_params(params, who)
    rho = checks.number(who, "rho", rho, 0, above=True)
    with theta_restored(params) as theta:
        _, g0 = loss_and_gradient_at(closure, params, who)
        g0_norm = norm(g0)
        if g0_norm == 0:
            raise ValueError("grad_plane: the gradient at θ is zero, so g₀ spans no plane")
        e1 = scale(g0, 1.0 / g0_norm)
        set_data(params, add_scaled(theta, e1, rho))  # SAM's ascent point
        _, g1 = loss_and_gradient_at(closure, params, who)
    along = dot(g1, e1)
    rest = add_scaled(g1, e1, -along)  # Gram–Schmidt: g₁ less its part along e1
    rest_norm = norm(rest)
    e2 = scale(rest, 1.0 / rest_norm if rest_norm > 0 else 0.0)
    return GradPlane(
        e1=_host(e1), e2=_host(e2), g0=_host(g0), g1=_host(g1), rho=rho,
        cos_g0_g1=along / (norm(g1) + EPS0), g1_coords=(along, rest_norm),
    )  # fmt: skip


def circle_losses(closure, params, d1, d2, rho: float, num: int = 360):
    """L(θ + ρ(cos φ·d1 + sin φ·d2)) for ``num`` angles φ in [0, 2π): the loss on the
    ρ-circle of a plane (d1, d2 orthonormal). Returns ``(angles, losses)``; the argmax is
    the maximiser of L on that circle, found exhaustively."""
    who = "circle_losses"
    params = checked_params(params, who)
    rho = checks.number(who, "rho", rho, 0, above=True)
    num = checks.count(who, "num", num, 1)
    d1 = directions_like(d1, params, who, name="d1")
    d2 = directions_like(d2, params, who, name="d2")
    angles = np.linspace(0.0, 2 * np.pi, num, endpoint=False)
    losses = np.empty(num)
    with theta_restored(params) as theta:
        for k, phi in enumerate(angles):
            on_circle = combine(math.cos(phi), d1, math.sin(phi), d2)
            set_data(params, add_scaled(theta, on_circle, rho))
            losses[k] = loss_at(closure, who)
    return angles, losses


def _grid(who: str, name: str, values) -> np.ndarray:
    """The steps of a slice (alphas, betas) as a flat float64 array of finite real numbers:
    ``None`` would be read as NaN, ``True`` as 1.0 and a string as a number by NumPy."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):  # ragged lists and the like
        array = np.asarray(None)
    if array.dtype.kind not in "iuf":
        raise checks.ArgumentError(
            f"{who}: {name} must be real numbers (a list or an array), got {values!r:.60}"
        )
    if not np.isfinite(array).all():
        raise checks.ArgumentError(f"{who}: {name} must be finite, got {values!r:.60}")
    return array.astype(np.float64).ravel()


def _host(arrays) -> list:
    return [backend.to_host(a).copy() for a in arrays]
