"""Measuring sharpness: the worst loss in a ρ-ball, where it lies, curvature, loss slices.

Every measurement takes the same two things an optimizer does -- a ``closure`` that
returns the loss Tensor (without calling backward) and the list of ``params`` -- so it
works on a network, a mini-batch or a toy landscape alike. Each one moves the
parameters while it measures and always puts them back by copying the saved arrays
(never by subtracting what was added, which would leave rounding behind), and it leaves
every ``p.grad`` as it found it. Arrays stay on the current backend; random directions
are drawn from the library generator on the host and moved there.

‖·‖ is the L2 norm over all parameters together, as in SAM.

    worst = worst_case_loss(closure, params, rho=0.05)          # max L(θ+ε), ‖ε‖ ≤ ρ
    cosine_to_maximum(g1, worst.epsilon)                         # how well g₁ points at it
    top_hessian_eigenvalue(closure, params)                      # λ_max by power iteration
    loss_slice_1d(closure, params, filter_normalized_direction(params), alphas)
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from . import backend, rng, tensor
from .backend import get_array_module
from .tensor import Tensor, no_grad

EPS0 = 1e-12  # the guard added to every norm that is divided by, as in the optimizers


# ---- small tools on lists of arrays (one array per parameter) -------------------------------
def _raw(a):
    return a.data if isinstance(a, Tensor) else a


def _dot(xs, ys) -> float:
    pairs = zip(xs, ys, strict=True)
    return float(sum(float(get_array_module(x).vdot(x, y)) for x, y in pairs))


def _norm(xs) -> float:
    return math.sqrt(_dot(xs, xs))


def _on_device(direction, params, what: str) -> list:
    """``direction`` (an array or Tensor per parameter) as arrays shaped and typed like params."""
    direction = list(direction)
    if len(direction) != len(params):
        raise ValueError(f"{what}: got {len(direction)} arrays for {len(params)} parameters")
    out = []
    for i, (d, p) in enumerate(zip(direction, params, strict=True)):
        d = backend.to_device(_raw(d), p.dtype)
        if d.shape != p.shape:
            raise ValueError(f"{what}: array {i} has shape {d.shape}, parameter {i} has shape {p.shape}")
        out.append(d)
    return out


def _check_params(params, who: str) -> list:
    params = list(params)
    if not params:
        raise ValueError(f"{who}: got an empty parameter list")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise TypeError(f"{who}: parameter {i} must be a Tensor with requires_grad=True")
    return params


@contextmanager
def _params_restored(params):
    """Run the block, then copy every parameter's saved data back and restore its ``.grad``."""
    saved = [p.data.copy() for p in params]
    grads = [p.grad for p in params]
    try:
        yield saved
    finally:
        for p, data, grad in zip(params, saved, grads, strict=True):
            p.data[...] = data
            p.grad = grad


def _set(params, base, offset, scale=1.0):
    """θ ← base + scale·offset, in place (base is the saved θ)."""
    for p, b, o in zip(params, base, offset, strict=True):
        p.data[...] = b + scale * o


def _loss(closure) -> float:
    with no_grad():
        loss = closure()
    if not isinstance(loss, Tensor) or loss.size != 1:
        raise TypeError("the closure must return the scalar loss Tensor (without calling backward)")
    return float(loss.item())


def _loss_and_gradient(closure, params):
    """L and ∇L at the current parameters (fresh gradients, copied out)."""
    for p in params:
        p.grad = None
    loss = closure()
    if not isinstance(loss, Tensor) or loss.size != 1:
        raise TypeError("the closure must return the scalar loss Tensor (without calling backward)")
    loss.backward()
    grads = [get_array_module(p.data).zeros_like(p.data) if p.grad is None else p.grad.copy() for p in params]
    for p in params:
        p.grad = None
    return float(loss.item()), grads


def _random_direction(params) -> list:
    """A standard Gaussian array per parameter, drawn on the host from the library generator."""
    gen = rng.generator()
    return [backend.to_device(gen.standard_normal(p.shape), p.dtype) for p in params]


# ---- the worst loss in the ρ-ball -------------------------------------------------------------
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

    This is the inner problem of SAM (Foret et al., ICLR 2021, eq. 1), solved properly
    rather than by SAM's single step. Each restart r starts from ε on the sphere ‖ε‖ = ρ --
    restart 0 at SAM's ascent point ρ·g₀/‖g₀‖ (so the answer is never below SAM's
    estimate), the others in random Gaussian directions -- and iterates

        ε ← Π_ρ( ε + s·ρ·g(θ+ε)/‖g(θ+ε)‖ ),    Π_ρ(x) = x·min(1, ρ/‖x‖)

    with step length s·ρ, s starting at ``lr`` and halved whenever a step fails to
    raise the loss (so the iterates settle instead of circling a maximum). The best
    point seen over all restarts is returned; the ascent is a local method, so this is
    a lower bound on the true maximum, tight on the smooth small problems minisam uses.
    """
    params = _check_params(params, "worst_case_loss")
    if not isinstance(rho, (int, float)) or not rho > 0:
        raise ValueError(f"worst_case_loss: rho must be a number > 0, got {rho!r}")
    for name, value, minimum in (("steps", steps, 0), ("restarts", restarts, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"worst_case_loss: {name} must be an integer >= {minimum}, got {value!r}")
    if not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(
            f"worst_case_loss: lr (the step length as a fraction of rho) must be > 0, got {lr!r}"
        )

    with _params_restored(params) as theta:
        loss_at_theta, g0 = _loss_and_gradient(closure, params)
        best = (-math.inf, None)
        restart_values = []
        for restart in range(restarts):
            start = g0 if restart == 0 and _norm(g0) > 0 else _random_direction(params)
            scale = rho / (_norm(start) + EPS0)
            eps = [scale * d for d in start]
            _set(params, theta, eps)
            value, grad = _loss_and_gradient(closure, params)
            run_best, step = (value, eps), lr * rho
            for _ in range(steps):
                g_norm = _norm(grad)
                if g_norm == 0:
                    break
                trial = [e + (step / g_norm) * g for e, g in zip(eps, grad, strict=True)]
                shrink = min(1.0, rho / (_norm(trial) + EPS0))  # back onto the ball
                trial = [shrink * t for t in trial]
                _set(params, theta, trial)
                trial_value, trial_grad = _loss_and_gradient(closure, params)
                if trial_value > value:
                    eps, value, grad = trial, trial_value, trial_grad
                    if value > run_best[0]:
                        run_best = (value, eps)
                else:
                    step *= 0.5
            restart_values.append(run_best[0])
            if run_best[0] > best[0]:
                best = run_best
    return WorstCase(
        value=best[0], epsilon=[backend.to_host(e).copy() for e in best[1]],
        loss=loss_at_theta, restart_values=restart_values,
    )  # fmt: skip


def cosine_to_maximum(direction, best_eps) -> float:
    """cos ∠(direction, ε*): how closely a direction points at the worst point found.

    ``direction`` is one array per parameter -- g₀, SAM's g₁, an XSAM update v(α*) --
    and ``best_eps`` the ε* of ``worst_case_loss`` (or the ``WorstCase`` itself). The
    paper's Fig. 1a question (Chen & Zhou, ICLR 2026): is the gradient at the ascent
    point a better guide to the maximiser on the ρ-sphere than the local gradient?
    """
    if isinstance(best_eps, WorstCase):
        best_eps = best_eps.epsilon
    a = [np.asarray(backend.to_host(_raw(d)), np.float64).ravel() for d in direction]
    b = [np.asarray(backend.to_host(_raw(e)), np.float64).ravel() for e in best_eps]
    if len(a) != len(b) or any(x.size != y.size for x, y in zip(a, b, strict=True)):
        raise ValueError(
            "cosine_to_maximum: direction and best_eps must hold matching arrays, got sizes "
            f"{[x.size for x in a]} and {[y.size for y in b]}"
        )
    a, b = np.concatenate(a), np.concatenate(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + EPS0))


# ---- curvature ---------------------------------------------------------------------------------
HVP_STEP = 1e-6  # the finite-difference step along a unit vector, in float64


@contextmanager
def frozen_relu_pattern():
    """Record which units every ReLU lets through in the first pass; replay that pattern.

    A ReLU network is only piecewise smooth. If a finite-difference step ±εv moves some
    unit's pre-activation across zero, the gradient jumps by a finite amount, and the
    jump divided by 2ε swamps the curvature -- power iteration even seeks such kinks
    out, because the jump dominates Hv (a trained MNIST-1D MLP gave λ_max = −297 where
    the smooth piece has 3.4). Holding the on/off pattern fixed measures the curvature
    of the smooth piece θ lies on: the Hessian that autograd would give (ReLU'' = 0).
    Call ``pattern.replay()`` before each later pass. Max-pooling's choice is not held.
    """

    class Pattern:
        def __init__(self):
            self.masks, self.position, self.recording = [], 0, True

        def replay(self):
            self.position, self.recording = 0, False

        def __call__(self, mask):
            if self.recording:
                self.masks.append(mask)
                return mask
            if self.position >= len(self.masks) or self.masks[self.position].shape != mask.shape:
                raise RuntimeError("frozen_relu_pattern: this pass has other ReLUs than the first")
            self.position += 1
            return self.masks[self.position - 1]

    pattern, previous = Pattern(), tensor.relu_mask_hook
    tensor.relu_mask_hook = pattern
    try:
        yield pattern
    finally:
        tensor.relu_mask_hook = previous


def hessian_vector_product(closure, params, vector, eps: float | None = None) -> list:
    """Hv ≈ (g(θ + εv) − g(θ − εv)) / 2ε, central differences of exact gradients.

    Computed in float64 whatever the parameters' dtype, with a small step (ε = 1e-6
    along ``vector`` scaled to unit length), and with ReLU's on/off pattern held at θ's
    (``frozen_relu_pattern``): the result is the curvature of the smooth piece of the
    loss that θ lies on. In float64 the rounding error, about u·‖g‖/ε with u = 1e-16, is
    only ~1e-10 at ε = 1e-6. The parameters' own arrays are put back untouched; the
    result is float64.
    """
    params = _check_params(params, "hessian_vector_product")
    vector = [v.astype(np.float64) for v in _on_device(vector, params, "hessian_vector_product")]
    length = _norm(vector)
    if length == 0:
        return [get_array_module(v).zeros_like(v) for v in vector]
    unit = [v / length for v in vector]
    step = HVP_STEP if eps is None else float(eps)
    originals, grads = [p.data for p in params], [p.grad for p in params]
    theta = [o.astype(np.float64) for o in originals]
    gradients = []
    try:
        with frozen_relu_pattern() as pattern:
            for p, t in zip(params, theta, strict=True):
                p.data = t
            _loss(closure)  # records the pattern at θ
            for sign in (1.0, -1.0):
                pattern.replay()
                for p, t, u in zip(params, theta, unit, strict=True):
                    p.data = t + sign * step * u
                gradients.append(_loss_and_gradient(closure, params)[1])
    finally:
        for p, original, grad in zip(params, originals, grads, strict=True):
            p.data, p.grad = original, grad
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
    minimum that is λ_max. The standard sharpness measure of Keskar et al. (ICLR 2017)
    and of the SAM papers. Returns λ, or ``(λ, v)`` with v one host array per parameter.
    """
    params = _check_params(params, "top_hessian_eigenvalue")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 1:
        raise ValueError(f"top_hessian_eigenvalue: iters must be an integer >= 1, got {iters!r}")
    vector = _random_direction(params)
    scale = 1.0 / (_norm(vector) + EPS0)
    vector = [scale * v for v in vector]
    eigenvalue = None
    for _ in range(iters):
        product = hessian_vector_product(closure, params, vector, eps)
        estimate = _dot(vector, product)  # the Rayleigh quotient, vᵀHv with ‖v‖ = 1
        size = _norm(product)
        if size == 0:  # H v = 0: every direction tried is flat
            eigenvalue = 0.0
            break
        vector = [w / size for w in product]
        converged = eigenvalue is not None and abs(estimate - eigenvalue) <= tol * abs(estimate)
        eigenvalue = estimate
        if converged:
            break
    if return_vector:
        return eigenvalue, [backend.to_host(v).copy() for v in vector]
    return eigenvalue


# ---- loss slices and directions ----------------------------------------------------------------
def loss_slice_1d(closure, params, direction, alphas) -> np.ndarray:
    """L(θ + α·d) for each α in ``alphas`` (Goodfellow et al. 2015; Li et al. 2018)."""
    params = _check_params(params, "loss_slice_1d")
    direction = _on_device(direction, params, "loss_slice_1d")
    alphas = np.asarray(alphas, np.float64).ravel()
    with _params_restored(params) as theta:
        values = []
        for alpha in alphas:
            _set(params, theta, direction, float(alpha))
            values.append(_loss(closure))
    return np.array(values)


def loss_slice_2d(closure, params, d1, d2, alphas, betas) -> np.ndarray:
    """Z[i, j] = L(θ + alphas[j]·d1 + betas[i]·d2): rows follow betas, columns alphas, so
    ``plt.contour(*np.meshgrid(alphas, betas), Z)`` draws it (Li et al., NeurIPS 2018)."""
    params = _check_params(params, "loss_slice_2d")
    d1 = _on_device(d1, params, "loss_slice_2d (d1)")
    d2 = _on_device(d2, params, "loss_slice_2d (d2)")
    alphas = np.asarray(alphas, np.float64).ravel()
    betas = np.asarray(betas, np.float64).ravel()
    Z = np.empty((len(betas), len(alphas)))
    with _params_restored(params) as theta:
        for i, beta in enumerate(betas):
            for j, alpha in enumerate(alphas):
                for p, t, a, b in zip(params, theta, d1, d2, strict=True):
                    p.data[...] = t + float(alpha) * a + float(beta) * b
                Z[i, j] = _loss(closure)
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
    params = list(params)
    direction = []
    for d, p in zip(_random_direction(params), params, strict=True):
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
    params = _check_params(params, "grad_plane")
    if not isinstance(rho, (int, float)) or not rho > 0:
        raise ValueError(f"grad_plane: rho must be a number > 0, got {rho!r}")
    with _params_restored(params) as theta:
        _, g0 = _loss_and_gradient(closure, params)
        g0_norm = _norm(g0)
        if g0_norm == 0:
            raise ValueError("grad_plane: the gradient at θ is zero, so g₀ spans no plane")
        e1 = [g / g0_norm for g in g0]
        _set(params, theta, e1, rho)
        _, g1 = _loss_and_gradient(closure, params)
    along = _dot(g1, e1)
    rest = [g - along * e for g, e in zip(g1, e1, strict=True)]
    rest_norm = _norm(rest)
    e2 = [r / rest_norm if rest_norm > 0 else r * 0 for r in rest]
    host = lambda xs: [backend.to_host(x).copy() for x in xs]  # noqa: E731
    return GradPlane(
        e1=host(e1), e2=host(e2), g0=host(g0), g1=host(g1), rho=float(rho),
        cos_g0_g1=along / (_norm(g1) + EPS0), g1_coords=(along, rest_norm),
    )  # fmt: skip


def circle_losses(closure, params, d1, d2, rho: float, num: int = 360):
    """L(θ + ρ(cos φ·d1 + sin φ·d2)) for ``num`` angles φ in [0, 2π): the loss on the
    ρ-circle of a plane (d1, d2 orthonormal). Returns ``(angles, losses)``; the argmax is
    the maximiser of L on that circle, found exhaustively."""
    angles = np.linspace(0.0, 2 * np.pi, int(num), endpoint=False)
    params = _check_params(params, "circle_losses")
    d1 = _on_device(d1, params, "circle_losses (d1)")
    d2 = _on_device(d2, params, "circle_losses (d2)")
    losses = np.empty(len(angles))
    with _params_restored(params) as theta:
        for k, phi in enumerate(angles):
            for p, t, a, b in zip(params, theta, d1, d2, strict=True):
                p.data[...] = t + rho * (math.cos(phi) * a + math.sin(phi) * b)
            losses[k] = _loss(closure)
    return angles, losses
