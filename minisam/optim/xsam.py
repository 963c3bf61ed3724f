"""XSAM: search the sphere around θ for the direction of the neighbourhood maximum.

Chen & Zhou, "Revisiting Sharpness-Aware Minimization: A More Faithful and Effective
Implementation", ICLR 2026 (arXiv 2603.10048). SAM applies g_k, the gradient at the ascent
point, at θ as if it pointed from θ towards the worst point of the ρ-ball; often it does
not. XSAM keeps SAM's climb and then picks the direction explicitly, on the arc between

    v₀ = (ϑ_k − θ)/(‖ϑ_k − θ‖ + ε₀)   where the climb went (k = 1: g₀/‖g₀‖)
    v₁ = g_k/(‖g_k‖ + ε₀)              where SAM's update points,   ψ = arccos⟨v₀, v₁⟩,

the great circle v(α) = [sin((1−α)ψ)·v₀ + sin(αψ)·v₁]/sin ψ. On search steps (0, N, 2N, …)
it evaluates L(θ + ρ_max·v(α)) on a grid of α and keeps the α* of largest loss; every step
descends with ‖g_k‖·v(α*). The five moments are in minisam/optim/ALGORITHMS.md, section
XSAM, and appear in that order in ``XSAM.step``.

Special cases: α = 1 gives g_k·‖g_k‖/(‖g_k‖ + ε₀), SAM's gradient up to a relative ε₀/‖g_k‖
(the authors' SAM baseline is exactly XSAM at α = 1); α = 0 with k = 1 gives ‖g₁‖·g₀/‖g₀‖,
the paper's "SGD+". Differences from the authors' code: ⟨v₀, v₁⟩ is clipped to [−1, 1]
before arccos (theirs can be NaN), and when sin ψ < 1e-8 the arc is v₁ itself (theirs:
(v₀ + v₁)/2), the limit as ψ → 0.
"""

from __future__ import annotations

import math

from .. import checks, nn, vector
from ..tensor import no_grad
from .sam import climb
from .sgd import unchanged_on_error
from .wrapper import SharpnessAware, moved_to

SIN_PSI_MIN = 1e-8  # below this v₀ and v₁ are (anti)parallel and the arc is undefined
MAX_GRID_POINTS = 1001  # a search costs one forward pass per grid point


def slerp(v0, v1, psi, alpha):
    """v(α) = [sin((1−α)ψ)·v₀ + sin(αψ)·v₁]/sin ψ, the point at α along the great circle
    from v₀ (α = 0) through v₁ (α = 1); a unit vector when v₀ and v₁ are.

    Degenerate case: when sin ψ < 1e-8 (v₀ and v₁ parallel or opposite) no great circle is
    defined by them, and v(α) = v₁ for every α (the limit as ψ → 0)."""
    a, b = slerp_weights(psi, alpha)
    return vector.combine(a, v0, b, v1)


def slerp_weights(psi, alpha):
    """The weights (a, b) of v(α) = a·v₀ + b·v₁; (0, 1) in the degenerate case."""
    sin_psi = math.sin(psi)
    if sin_psi < SIN_PSI_MIN:
        return 0.0, 1.0
    return math.sin((1 - alpha) * psi) / sin_psi, math.sin(alpha * psi) / sin_psi


# ---- in place, in arrays the step owns ------------------------------------------------------
# A memory trick (the other is ``vector.KeptArrays``), kept because the bench needs it. On the
# bench MLP (CPU time, medians), making v₀ and v₁ as new arrays cost 0.5 ms of a 9-10 ms XSAM step
# and scaling them in place 0.15 ms; building the update in new arrays as well made the step 4-8 %
# slower. Each array written here is one the step made and needs no more: g₀ and g_k come new
# from backward (which never hands one array to two parameters), ϑ_k − θ from the kept arrays.
def scaled_in_place(arrays, a):
    """a·x written over x's own arrays (x is then gone); returns them."""
    for x in arrays:
        x *= a
    return arrays


def slerp_in_place(v0, v1, psi, alpha, length):
    """``length``·v(α), equal to rounding to ``vector.scale(slerp(v0, v1, psi, alpha), length)``,
    but built in v₁'s own arrays, with v₀'s as scratch: neither is usable afterwards."""
    a, b = slerp_weights(psi, alpha)
    for x0, x1 in zip(v0, v1, strict=True):
        x1 *= length * b
        if a != 0.0:
            x0 *= length * a
            x1 += x0
    return v1


def search_alpha(params, v0, v1, psi, rho_max, grid, closure, who="XSAM.step"):
    """Moment 4: probe L(θ + ρ_max·v(α)) for every α of the grid, on the closure's batch,
    without gradients and with BatchNorm's statistics frozen. ``params`` hold θ before and
    after. Returns (α*, [(α, probe loss), …]); α* has the largest loss, the smallest α on ties."""
    theta = vector.data_of(params)
    probe_losses = []
    with no_grad(), nn.frozen_batchnorm_stats():
        for alpha in grid:
            with moved_to(params, vector.add_scaled(theta, slerp(v0, v1, psi, alpha), rho_max)):
                probe_losses.append((alpha, vector.loss_value(closure, who)))
    bad = [(alpha, value) for alpha, value in probe_losses if not math.isfinite(value)]
    if bad:  # max() of NaNs would pick an α at random
        raise vector.NonFiniteLoss(f"{who}: the probe loss at α = {bad[0][0]} is {bad[0][1]}", bad[0][1])
    best = max(probe_losses, key=lambda probe: probe[1])  # max keeps the first of equal maxima
    return best[0], probe_losses


def alpha_grid(alpha_max, alpha_step) -> list:
    """j·Δα for j = 0 … ⌊α_max/Δα⌋, never past α_max: 0, 0.1, …, 2.0 by default."""
    count = math.floor(alpha_max / alpha_step * (1 + 1e-12)) + 1  # 2.0/0.1 may round to 19.999…
    return [min(j * alpha_step, alpha_max) for j in range(count)]


class XSAM(SharpnessAware):
    """``XSAM(base, rho=0.05, rho_max=None, alpha=1.0, alpha_max=2.0, alpha_step=0.1, steps=1,
    search_every=100)``; ``rho_max=None`` means 2·rho. Needs rho > 0 and rho_max > 0 (at ρ = 0
    the climb does not move and v₀ is undefined).

    ``step(closure)`` costs SAM's ``steps + 1`` passes, plus one forward pass per grid point
    (21 by default) on search steps. ``alpha`` is the current α*. After each step
    ``diagnostics`` holds SAM's entries and alpha (used in this step), psi (radians),
    searched, and probe_losses ([(α, L(θ + ρ_max·v(α)))] on search steps, else []). After
    the step each ``p.grad`` holds the gradient the base optimizer was given, ‖g_k‖·v(α*)."""

    _HYPER = ("rho", "rho_max", "alpha", "alpha_max", "alpha_step", "steps", "search_every")

    def __init__(
        self, base, rho=0.05, rho_max=None, alpha=1.0, alpha_max=2.0, alpha_step=0.1, steps=1,
        search_every=100, m=None,
    ):  # fmt: skip
        if m is not None:
            raise checks.ArgumentError(
                f"XSAM: m-sharpness (m={m!r}) is not defined for XSAM (minisam/optim/ALGORITHMS.md, "
                "section m-sharpness); use optim.SAM(base, m=...) or leave m unset"
            )
        super().__init__(base)
        settings = dict(rho=rho, rho_max=rho_max, alpha=alpha, alpha_max=alpha_max, alpha_step=alpha_step)
        self.__dict__.update(self._settings(**settings, steps=steps, search_every=search_every))
        self._kept = vector.KeptArrays()

    @property
    def alpha_grid(self) -> list:
        return alpha_grid(self.alpha_max, self.alpha_step)

    def is_search_step(self, step: int) -> bool:
        """Steps 0, N, 2N, … search (N = search_every); N = 0 never does."""
        return self.search_every > 0 and step % self.search_every == 0

    def step(self, closure=None):
        self._check_closure(closure)
        with unchanged_on_error(self.params):  # a failed step changes nothing (grads, BatchNorm, RNG)
            # 1. SAM's climb (plain): L(θ), the ascent point ϑ_k and g_k; the parameters hold θ again
            c = climb(self.params, closure, self.rho, self.steps, who="XSAM.step", new=self._kept)
            # 2. v₀ = (ϑ_k − θ)/‖ϑ_k − θ‖ (k = 1: g₀/‖g₀‖), v₁ = g_k/‖g_k‖ and the angle ψ between them
            # (each made in place, over ϑ_k − θ or g₀ and over g_k: the step needs those no more)
            v0 = scaled_in_place(c.displacement, c.displacement_scale / (c.distance + vector.EPS0))
            v1 = scaled_in_place(c.gk, 1.0 / (c.gk_norm + vector.EPS0))
            # ψ = arccos⟨v₀, v₁⟩; the climb has computed ⟨v₀, v₁⟩ already, as cos_psi. Clipped:
            # rounding can leave [−1, 1]
            psi = math.acos(min(1.0, max(-1.0, c.cos_psi)))
            # 3–4. on a search step, α* = the α whose point θ + ρ_max·v(α) has the largest loss
            searched, alpha, probe_losses = self.is_search_step(self.step_count), self.alpha, []
            if searched:
                taking_part = [self.params[i] for i in c.moving]
                alpha, probe_losses = search_alpha(
                    taking_part, v0, v1, psi, self.rho_max, self.alpha_grid, closure
                )
        # 5. at θ, the base optimizer's step with the gradient ‖g_k‖·v(α*)
        self._descend(c.spread(slerp_in_place(v0, v1, psi, alpha, length=c.gk_norm), len(self.params)))
        self.alpha = alpha  # α*, kept until the next search step
        self.diagnostics = c.diagnostics()
        self.diagnostics.update(alpha=alpha, psi=psi, searched=searched, probe_losses=probe_losses)
        self.diagnostics["step"] = self.step_count
        self.step_count += 1
        return c.loss

    # ---- the settings, checked (constructor and load_state_dict) -------------------------
    def _settings(self, rho, rho_max, alpha, alpha_max, alpha_step, steps, search_every) -> dict:
        rho = checks.number("XSAM", "rho", rho, 0.0, above=True)
        rho_max = 2 * rho if rho_max is None else checks.number("XSAM", "rho_max", rho_max, 0.0, above=True)
        alpha_max = checks.number("XSAM", "alpha_max", alpha_max, 0.0, above=True)
        alpha_step = checks.number("XSAM", "alpha_step", alpha_step, 0.0, alpha_max, above=True)
        if alpha_max / alpha_step >= MAX_GRID_POINTS:
            raise checks.ArgumentError(
                f"XSAM: alpha_step={alpha_step!r} would make a grid of {alpha_max / alpha_step:.3g} points "
                f"up to alpha_max={alpha_max!r} (one forward pass each); at most {MAX_GRID_POINTS} allowed"
            )
        return {
            "rho": rho,
            "rho_max": rho_max,
            "alpha": checks.number("XSAM", "alpha", alpha),
            "alpha_max": alpha_max,
            "alpha_step": alpha_step,
            "steps": checks.count("XSAM", "steps", steps, 1),
            "search_every": checks.count("XSAM", "search_every", search_every, 0),
        }
