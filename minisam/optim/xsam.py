"""XSAM: search, on the sphere around θ, for the direction of the neighbourhood maximum.

Chen & Zhou, "Revisiting Sharpness-Aware Minimization: A More Faithful and Effective
Implementation", ICLR 2026 (arXiv 2603.10048). SAM applies g_k = ∇L(ϑ_k), the gradient
at the ascent point, at θ, as if it pointed from θ towards the maximiser of L on the
ρ-ball. It often does not. XSAM keeps SAM's ascent and then looks for a better direction
in the plane spanned by two unit vectors,

    v₀ = (ϑ_k − θ)/(‖ϑ_k − θ‖ + ε₀)   where the ascent went (k = 1: g₀/‖g₀‖)
    v₁ = g_k/(‖g_k‖ + ε₀)              where SAM's update points
    ψ  = arccos(clip(⟨v₀, v₁⟩, −1, 1))

along the great circle through them (spherical interpolation, "slerp"),

    v(α) = [sin((1−α)ψ)·v₀ + sin(αψ)·v₁] / sin ψ,

a unit vector for every α: α = 0 is v₀, α = 1 is v₁, α in (1, 2] continues past v₁.
Every ``search_every``-th step (steps 0, N, 2N, …; N = 0 never searches) it probes the
loss at θ + ρ_max·v(α) for α on the grid 0, Δ, 2Δ, …, α_max without gradients, on the
same batch, and keeps the α* of largest probe loss (the smallest α on ties) until the
next search. The update is then the base optimizer's step with the gradient

    ‖g_k‖·v(α*)

(same length as SAM's, new direction). α = 1 reproduces SAM for any k; α = 0 with k = 1
gives ‖g₁‖·g₀/‖g₀‖, the paper's "SGD+".

Deliberate differences from the authors' code: the authors take arccos of the unclamped
dot product (NaN when it rounds above 1) and fall back to (v₀ + v₁)/2; minisam clamps to
[−1, 1] and, when sin ψ < 1e-8, uses v(α) = v₁, which is the limit as ψ → 0.
``rho_max=None`` means 2·rho (the ratio of the authors' defaults, 0.15 and 0.30).
"""

from __future__ import annotations

import math

from .. import nn
from ..backend import get_array_module
from ..tensor import no_grad
from .sam import EPS0, SAM, global_dot, global_norm
from .sgd import closure_loss

SIN_PSI_MIN = 1e-8  # below this v₀ and v₁ are (anti)parallel and the slerp is undefined


class XSAM(SAM):
    """``XSAM(base, rho=0.05, rho_max=None, alpha=1.0, alpha_max=2.0, alpha_step=0.1,
    steps=1, search_every=100)``.

    ``step(closure)`` costs SAM's ``steps + 1`` forward+backward passes, plus one forward
    pass per grid point (21 by default) on search steps. ``alpha`` is the current α*.
    After each step ``diagnostics`` holds SAM's entries and

        alpha           the α used for this step
        psi             the angle ψ between v₀ and v₁ (radians)
        searched        whether this step searched
        probe_losses    [(α, L(θ + ρ_max·v(α))) for the grid] on search steps, else []
    """

    def __init__(
        self,
        base,
        rho=0.05,
        rho_max=None,
        alpha=1.0,
        alpha_max=2.0,
        alpha_step=0.1,
        steps=1,
        search_every=100,
    ):
        super().__init__(base, rho=rho, steps=steps)
        self.__dict__.update(
            self._settings(
                rho=rho,
                rho_max=rho_max,
                alpha=alpha,
                alpha_max=alpha_max,
                alpha_step=alpha_step,
                steps=steps,
                search_every=search_every,
            )
        )

    def _settings(
        self,
        rho,
        steps,
        rho_max=None,
        alpha=1.0,
        alpha_max=2.0,
        alpha_step=0.1,
        search_every=100,
        **_sam_only,
    ) -> dict:
        rho = self._number("rho", rho)
        alpha_step = self._number("alpha_step", alpha_step)
        if alpha_step == 0:
            raise ValueError("XSAM: alpha_step must be positive, got 0")
        return {
            "rho": rho,
            "steps": self._count("steps", steps, 1),
            "adaptive": False,
            "eta": 0.0,
            "rho_max": 2 * rho if rho_max is None else self._number("rho_max", rho_max),
            "alpha": self._number("alpha", alpha, -math.inf),
            "alpha_max": self._number("alpha_max", alpha_max),
            "alpha_step": alpha_step,
            "search_every": self._count("search_every", search_every, 0),
        }

    @property
    def alpha_grid(self) -> list[float]:
        """j·alpha_step for j = 0 … round(alpha_max/alpha_step): 0, 0.1, …, 2.0 by default."""
        return [j * self.alpha_step for j in range(round(self.alpha_max / self.alpha_step) + 1)]

    def is_search_step(self, step: int) -> bool:
        return self.search_every > 0 and step % self.search_every == 0

    def step(self, closure=None):
        if closure is None:
            raise ValueError(
                "XSAM.step needs a closure that evaluates the loss on the batch (without "
                "calling backward): it evaluates it several times"
            )
        # 1. SAM's ascent (plain, not adaptive): ϑ_k, and g_k in every p.grad
        ascent = self._ascend(closure)
        try:
            displacement, gk = ascent.displacement, self._gradients()
            displacement_norm, gk_norm = global_norm(displacement), global_norm(gk)

            # 2. v₀ = (ϑ_k − θ)/‖ϑ_k − θ‖ and v₁ = g_k/‖g_k‖ are kept as scalings of the arrays
            # we already have; only their dot product is needed to get ψ.
            to_v0 = 1 / (displacement_norm + EPS0)
            to_v1 = 1 / (gk_norm + EPS0)
            cos_psi = global_dot(displacement, gk) * to_v0 * to_v1
            psi = math.acos(min(1.0, max(-1.0, cos_psi)))  # clamped: rounding can leave [−1, 1]

            # 3. the slerp v(α) = [sin((1−α)ψ)·v₀ + sin(αψ)·v₁]/sin ψ, as coefficients (a, b)
            def slerp(alpha):
                sin_psi = math.sin(psi)
                if sin_psi < SIN_PSI_MIN:  # v₀ ∥ v₁: the great circle is undefined; use v₁
                    return 0.0, 1.0
                return math.sin((1 - alpha) * psi) / sin_psi, math.sin(alpha * psi) / sin_psi

            # 4. the search: probe L(θ + ρ_max·v(α)) along the arc, no gradients, same batch
            searched = self.is_search_step(self.step_count)
            probe_losses = []
            if searched:
                best_loss, best_alpha = -math.inf, self.alpha
                # the ascent point's arrays are free again: each probe point is built in them
                probes, scratch = self._workspace("ascent_point"), self._workspace("scratch")
                with no_grad(), nn.frozen_batchnorm_stats():
                    for alpha in self.alpha_grid:
                        a, b = slerp(alpha)
                        ca, cb = self.rho_max * a * to_v0, self.rho_max * b * to_v1
                        for p, theta, e, g, probe, tmp in zip(
                            self.params, ascent.theta, displacement, gk, probes, scratch, strict=True
                        ):
                            xp = get_array_module(theta)
                            xp.multiply(e, ca, out=probe)
                            probe += theta
                            probe += xp.multiply(g, cb, out=tmp)
                            p.data = probe  # the probe point θ + ρ_max·v(α)
                        loss = closure_loss(closure, "XSAM.step").item()
                        probe_losses.append((alpha, loss))
                        if loss > best_loss:  # strictly greater: ties keep the smallest α
                            best_loss, best_alpha = loss, alpha
                self.alpha = best_alpha  # α*, kept until the next search step
        finally:
            # 5. restore θ, and hand ‖g_k‖·v(α*) to the base optimizer as the gradient
            self._restore(ascent)
        a, b = slerp(self.alpha)
        ca, cb = gk_norm * a * to_v0, gk_norm * b * to_v1
        for p, e, g, tmp in zip(self.params, displacement, gk, self._workspace("scratch"), strict=True):
            g *= cb  # g is p.grad (or a fresh zero array): scaled in place, no copy
            if ca != 0:
                g += get_array_module(e).multiply(e, ca, out=tmp)
            p.grad = g
        self.base.step()

        self._record(ascent, gk_norm, displacement_norm, cos_psi)
        self.diagnostics.update(alpha=self.alpha, psi=psi, searched=searched, probe_losses=probe_losses)
        self.step_count += 1
        return ascent.loss

    # ---- checkpoints: SAM's, plus the search state ---------------------------------------
    _HYPER = ("rho", "rho_max", "alpha_max", "alpha_step", "steps", "search_every")
    _STATE = ("step_count", "alpha")

    def _check_counters(self, state) -> dict:
        return {
            "step_count": self._count("step_count", state["step_count"], 0),
            "alpha": self._number("alpha", state["alpha"], -math.inf),
        }
