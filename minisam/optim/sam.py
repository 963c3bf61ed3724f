"""Sharpness-Aware Minimization: descend with the gradient found at an ascent point.

SAM (Foret, Kleiner, Mobahi, Neyshabur, ICLR 2021, arXiv 2010.01412) minimises the worst
loss in a ball of radius ρ around the parameters θ, min_θ max_{‖ε‖≤ρ} L(θ + ε), estimating
the inner maximum by climbing the same mini-batch's loss. One step, in the five moments of
minisam/optim/ALGORITHMS.md, section SAM:

    1. L(θ) and g₀ = ∇L(θ)
    2. climb: ϑᵢ₊₁ = ϑᵢ + (ρ/k)·gᵢ/(‖gᵢ‖ + ε₀),  gᵢ = ∇L(ϑᵢ),  ϑ₀ = θ,  i = 0 … k−1
    3. g_k = ∇L(ϑ_k)
    4. back to θ (its own arrays, never written)
    5. the base optimizer's step at θ, with g_k as the gradient

k = 1 is the original SAM, k > 1 multi-step SAM (path length ρ, no projection). ASAM
(Kwon et al., ICML 2021), ``adaptive=True``, rescales each climbing step by T = |ϑᵢ| + η:
ϑᵢ₊₁ = ϑᵢ + (ρ/k)·T²·gᵢ/(‖T·gᵢ‖ + ε₀), on every parameter (the ASAM authors' code: only on
tensors named "weight"). ``m`` sets m-sharpness: each micro-batch of m examples climbs on
its own, and the base optimizer gets the mean of their g_k. Only the pass at θ updates
BatchNorm's running statistics. ``rho=0`` makes SAM exactly its base optimizer.

    opt = optim.SAM(optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05)
    loss = opt.step(lambda: F.cross_entropy(model(x), y))
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import checks, nn, vector
from ..backend import get_array_module
from ..tensor import Tensor
from .micro_batches import mean_diagnostics, mean_gradient, micro_batches
from .sgd import unchanged_on_error
from .wrapper import SharpnessAware, moved_to

EPS0 = vector.EPS0  # ε₀, added to every norm that is divided by (kept importable from here)


def ascend(theta, g0, gradient_at, rho, steps, adaptive=False, eta=0.01, new=vector):
    """Moments 2 and 3: k steps of length ρ/k up the loss from θ, then the gradient there.

    ``gradient_at(ϑ)`` returns (L(ϑ), ∇L(ϑ)). θ's arrays are never written, so going back
    to θ is handing them back. ``new`` makes each ϑᵢ: the ``vector`` module (new arrays)
    or a ``vector.KeptArrays`` (arrays kept from step to step). Returns
    (ϑ_k, [‖g₀‖ … ‖g_{k−1}‖], L(ϑ_k), g_k)."""
    point, gradient, grad_norms, loss = theta, g0, [], None
    for _ in range(steps):
        grad_norms.append(vector.norm(gradient))
        direction, length = gradient, grad_norms[-1]
        if adaptive:  # ASAM: move along T²·gᵢ, normalised by ‖T·gᵢ‖, T = |ϑᵢ| + η
            direction, length = asam_direction(point, gradient, eta)
        # ϑᵢ₊₁ = ϑᵢ + (ρ/k)·direction/(length + ε₀): climb
        point = new.add_scaled(point, direction, (rho / steps) / (length + EPS0))
        loss, gradient = gradient_at(point)
    return point, grad_norms, loss, gradient


def asam_direction(point, gradient, eta):
    """ASAM's rescaled direction T²·g and the length ‖T·g‖ it is normalised by, T = |ϑ| + η."""
    scales = [abs(x) + eta for x in point]
    scaled = [t * g for t, g in zip(scales, gradient, strict=True)]
    return [t * tg for t, tg in zip(scales, scaled, strict=True)], vector.norm(scaled)


@dataclass
class Climb:
    """What moments 1–3 produced on one batch. The lists hold one array per parameter that
    got a gradient at θ (``moving``: their positions); the others take no part at all."""

    moving: list  # positions, in the parameter list, of the parameters that take part
    theta: list  # their arrays at θ
    loss: Tensor  # L(θ), detached
    grad_norms: list  # ‖g₀‖ … ‖g_{k−1}‖
    ascent_loss: float  # L(ϑ_k)
    displacement: list  # ϑ_k − θ = displacement_scale·displacement; for k = 1 (not ASAM) g₀ itself
    displacement_scale: float  # a = ρ/(‖g₀‖ + ε₀) for k = 1 (not ASAM), else 1
    gk: list  # g_k = ∇L(ϑ_k)
    distance: float  # ‖ϑ_k − θ‖
    gk_norm: float  # ‖g_k‖
    cos_psi: float  # ⟨ϑ_k − θ, g_k⟩/(‖ϑ_k − θ‖‖g_k‖), each norm + ε₀

    def spread(self, arrays, count: int) -> list:
        """``arrays`` (one per moving parameter) as a full list, None for the others."""
        full = [None] * count
        for i, a in zip(self.moving, arrays, strict=True):
            full[i] = a
        return full

    def diagnostics(self) -> dict:
        return {
            "loss": self.loss.item(),
            "ascent_loss": self.ascent_loss,
            "g0_norm": self.grad_norms[0],
            "gk_norm": self.gk_norm,
            "grad_norms": self.grad_norms,
            "ascent_distance": self.distance,
            "cos_psi": self.cos_psi,
        }


def climb(params, closure, rho, steps, adaptive=False, eta=0.01, who="SAM.step", new=vector) -> Climb:
    """SAM's moments 1–3 on the closure's batch. The parameters hold θ again on return.
    ``new`` makes the points and the displacement (see ``ascend``)."""
    # 1. the loss and gradient at θ: the one pass that may update BatchNorm's statistics
    loss, grads = vector.loss_and_gradients(closure, params, who)
    moving = [i for i, g in enumerate(grads) if g is not None]
    taking_part = [params[i] for i in moving]

    def gradient_at(point):  # a pass at a point of the climb; BatchNorm's statistics stay
        with moved_to(taking_part, point), nn.frozen_batchnorm_stats():
            point_loss, point_grads = vector.loss_and_gradients(closure, params, who)
        got = [point_grads[i] for i in moving]  # a branch not reached here counts as zero
        grads = [
            get_array_module(x).zeros_like(x) if g is None else g for g, x in zip(got, point, strict=True)
        ]
        return point_loss.item(), grads

    theta = vector.data_of(taking_part)
    # 2. the climb to ϑ_k, and 3. the gradient g_k there, on the same batch
    # (4. back to θ: gradient_at hands θ's own arrays back after every pass)
    g0 = [grads[i] for i in moving]
    point, grad_norms, ascent_loss, gk = ascend(theta, g0, gradient_at, rho, steps, adaptive, eta, new)
    if steps == 1 and not adaptive:
        # ϑ₁ − θ = a·g₀ with a = ρ/(‖g₀‖ + ε₀), kept as the pair (a, g₀): exact and free, where
        # (θ + a·g₀) − θ would cost a pass and lose a·g₀'s low bits wherever |θ| ≫ |a·g₀|
        d, scale, d_norm = g0, rho / (grad_norms[0] + EPS0), grad_norms[0]
    else:
        d = new.subtract(point, theta)
        scale, d_norm = 1.0, vector.norm(d)
    distance, along = scale * d_norm, scale * vector.dot(d, gk)  # ‖ϑ_k − θ‖, ⟨ϑ_k − θ, g_k⟩
    gk_norm = vector.norm(gk)
    cos_psi = along / ((distance + EPS0) * (gk_norm + EPS0))
    return Climb(moving, theta, loss, grad_norms, ascent_loss, d, scale, gk, distance, gk_norm, cos_psi)


class SAM(SharpnessAware):
    """``SAM(base, rho=0.05, steps=1, adaptive=False, eta=0.01, m=None)``: wraps a base optimizer.

    ``step(closure)`` costs ``steps + 1`` forward+backward passes and returns L(θ). With
    ``m`` set, call ``step(closure, batch_size=B)`` with a closure that takes a ``slice`` of
    the batch (minisam/optim/ALGORITHMS.md, section m-sharpness). After each step
    ``diagnostics`` holds loss, ascent_loss (L(ϑ_k)), g0_norm, gk_norm, grad_norms
    ([‖g₀‖ … ‖g_{k−1}‖]), ascent_distance (‖ϑ_k − θ‖), cos_psi and step; with m, means over
    the micro-batches and their number, micro_batches. After the step each ``p.grad`` holds
    the gradient the base optimizer was given (g_k)."""

    _HYPER = ("rho", "steps", "adaptive", "eta", "m")
    _OPTIONAL = ("m",)

    def __init__(self, base, rho=0.05, steps=1, adaptive=False, eta=0.01, m=None):
        super().__init__(base)
        self.__dict__.update(self._settings(rho=rho, steps=steps, adaptive=adaptive, eta=eta, m=m))
        self._kept = vector.KeptArrays()

    def step(self, closure=None, batch_size=None):
        self._check_closure(closure)
        parts = micro_batches(closure, self.m, batch_size)
        with unchanged_on_error(self.params):  # a failed step changes nothing (grads, BatchNorm, RNG)
            # 1–4. each (micro-)batch climbs from θ and comes back to it
            climbs = [self._climb(part) for part in parts]
        # 5. the base optimizer's step at θ with g_k (with m: the mean of the micro-batches' g_k)
        self._descend(mean_gradient(climbs, len(self.params)))
        self.diagnostics = mean_diagnostics(climbs, with_count=self.m is not None)
        self.diagnostics["step"] = self.step_count
        self.step_count += 1
        return (
            climbs[0].loss
            if len(climbs) == 1
            else Tensor(self.diagnostics["loss"], dtype=climbs[0].loss.dtype)
        )

    def _climb(self, closure) -> Climb:
        """Moments 1–4 on one (micro-)batch."""
        settings = (self.rho, self.steps, self.adaptive, self.eta)
        return climb(self.params, closure, *settings, "SAM.step", new=self._kept)

    # ---- the settings, checked (constructor and load_state_dict) -------------------------
    def _settings(self, rho, steps, adaptive, eta, m=None) -> dict:
        return {
            "rho": checks.number("SAM", "rho", rho, 0.0),
            "steps": checks.count("SAM", "steps", steps, 1),
            "adaptive": checks.flag("SAM", "adaptive", adaptive),
            "eta": checks.number("SAM", "eta", eta, 0.0),
            "m": None if m is None else checks.count("SAM", "m", m, 1),
        }
