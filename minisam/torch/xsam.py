"""XSAM for PyTorch optimizers: ``minisam.torch.XSAM``, the algorithm of ``minisam.optim.XSAM``.

Chen & Zhou, "Revisiting Sharpness-Aware Minimization: A More Faithful and Effective
Implementation", ICLR 2026 (arXiv 2603.10048); minisam/optim/ALGORITHMS.md, section XSAM.
After SAM's ascent to ϑ_k, look for the direction of the neighbourhood maximum on the great
circle through

    v₀ = (ϑ_k − θ)/(‖ϑ_k − θ‖ + ε₀)   where the ascent went (k = 1: g₀/‖g₀‖)
    v₁ = g_k/(‖g_k‖ + ε₀)              where SAM's update points
    ψ  = arccos(clip(⟨v₀, v₁⟩, −1, 1))
    v(α) = [sin((1−α)ψ)·v₀ + sin(αψ)·v₁] / sin ψ         (v(α) = v₁ when sin ψ < 1e-8)

On search steps (0, N, 2N, …; N = ``search_every``, 0 never searches) probe L(θ + ρ_max·v(α))
without gradients on the same batch for α = j·alpha_step, j = 0 … round(alpha_max/alpha_step)
(never past alpha_max), and keep α* = the α of largest loss (the smallest on ties). The base
optimizer then steps at θ with the gradient ‖g_k‖·v(α*): SAM's length, a new direction.

Where the authors' code differs: it takes arccos of the unclamped dot product, which is NaN
in float32 when v₀ and v₁ are nearly parallel and ⟨v₀, v₁⟩ rounds above 1, and falls back to
(v₀ + v₁)/2; here ψ is clamped and the fallback is v₁, the limit as ψ → 0.

Under ``DistributedDataParallel`` pass ``ddp=model``: every pass is synchronised, and the 21
probe losses of a search are averaged over the workers (one all-reduce of 21 numbers), so
every worker picks the same α* -- exactly XSAM on the global batch. XSAM with m-sharpness
(``m`` or ``sync_ascent=False``) is not defined by the paper and is refused.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from .. import checks
from .batchnorm import BatchNormSnapshot, frozen_batchnorm_stats
from .sam import EPS0, SAM, NonFiniteGradient, check_loss

SIN_PSI_MIN = 1e-8  # below this v₀ and v₁ are (anti)parallel and the great circle is undefined


def slerp(psi: float, alpha: float) -> tuple[float, float]:
    """The coefficients (a, b) of v(α) = a·v₀ + b·v₁ on the great circle through v₀ and v₁."""
    sin_psi = math.sin(psi)
    if sin_psi < SIN_PSI_MIN:  # v₀ ∥ v₁: use v₁, the limit as ψ → 0
        return 0.0, 1.0
    return math.sin((1 - alpha) * psi) / sin_psi, math.sin(alpha * psi) / sin_psi


def search_alpha(probe_losses) -> float:
    """α* from [(α, L(θ + ρ_max·v(α))), …]: the α of largest loss, the smallest α on ties.
    A NaN probe never wins; if every probe is NaN there is no answer."""
    best_alpha, best_loss = None, -math.inf
    for alpha, loss in probe_losses:
        if loss > best_loss or (best_alpha is None and loss == best_loss):  # strictly: ties keep the first
            best_alpha, best_loss = alpha, loss
    if best_alpha is None:
        raise NonFiniteGradient("every probe loss of the search is NaN")
    return best_alpha


class XSAM(SAM):
    """``XSAM(base, rho=0.05, rho_max=None, alpha=1.0, alpha_max=2.0, alpha_step=0.1, steps=1,
    search_every=100, *, ddp=None)``; ``rho_max=None`` means 2·rho.

    ``step(closure, *, scaler=None)`` costs SAM's ``steps + 1`` forward+backward passes, plus
    one forward pass per grid point (21 by default) on search steps. ``alpha`` is the current
    α*. ``diagnostics`` holds SAM's entries and

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
        *,
        m=None,
        ddp=None,
        sync_ascent=True,
    ):
        if m is not None or sync_ascent is not True:
            raise ValueError(
                "XSAM: m-sharpness (m=..., or sync_ascent=False under DDP) is not defined for XSAM by "
                "its paper, and minisam does not invent a definition; use SAM for m-sharpness"
            )
        super().__init__(base, rho=rho, steps=steps, ddp=ddp)
        self.__dict__.update(
            self._settings(
                rho=rho, rho_max=rho_max, alpha=alpha, alpha_max=alpha_max, alpha_step=alpha_step,
                steps=steps, search_every=search_every,
            )
        )  # fmt: skip

    def _settings(
        self, rho, steps, rho_max=None, alpha=1.0, alpha_max=2.0, alpha_step=0.1, search_every=100, **_sam
    ) -> dict:
        # v₀ is undefined at ρ = 0 (there is no ascent), and every probe sits at distance ρ_max
        rho = checks.number("XSAM", "rho", rho, 0.0, above=True)
        if rho_max is not None:
            rho_max = checks.number("XSAM", "rho_max", rho_max, 0.0, above=True)
        return {
            "rho": rho,
            "steps": checks.count("XSAM", "steps", steps, 1),
            "adaptive": False,
            "eta": 0.0,
            "m": None,
            "rho_max": 2 * rho if rho_max is None else rho_max,
            "alpha": checks.number("XSAM", "alpha", alpha),
            "alpha_max": checks.number("XSAM", "alpha_max", alpha_max, 0.0),
            "alpha_step": checks.number("XSAM", "alpha_step", alpha_step, 0.0, above=True),
            "search_every": checks.count("XSAM", "search_every", search_every, 0),
        }

    @property
    def alpha_grid(self) -> list[float]:
        """j·alpha_step for j = 0 … round(alpha_max/alpha_step), never past alpha_max: 0, 0.1, …, 2.0."""
        last = round(self.alpha_max / self.alpha_step)
        if last * self.alpha_step > self.alpha_max * (1 + 1e-12):
            last -= 1  # round() went up past alpha_max
        return [j * self.alpha_step for j in range(last + 1)]

    def is_search_step(self, step: int) -> bool:
        return self.search_every > 0 and step % self.search_every == 0

    def step(self, closure=None, *, scaler=None):
        who = "XSAM.step"
        self._begin(closure, scaler, who)
        a = None
        with BatchNormSnapshot() as before_step:
            try:
                # 1. SAM's ascent (plain, not adaptive): ϑ_k − θ and g_k; θ is back in place
                a = self._ascend_on(closure, None, who)
                gk_norm = a.gk_norm

                # 2. v₀ and v₁ are kept as scalings of the tensors we have: v₀ = to_v0·(ϑ_k − θ),
                # v₁ = to_v1·g_k (to_v1 also removes a GradScaler's factor); ψ needs only their
                # dot product, cos ψ = ⟨v₀, v₁⟩, which the ascent computed as a.cos_psi
                to_v0 = 1 / (a.distance + EPS0)
                to_v1 = self._unscale / (gk_norm + EPS0)
                psi = math.acos(min(1.0, max(-1.0, a.cos_psi)))  # clamped: rounding can leave [−1, 1]

                # 3.–4. on search steps, probe the loss along the great circle and keep α*
                searched = self.is_search_step(self.step_count)
                probe_losses = self._search(closure, a, psi, to_v0, to_v1) if searched else []
                if searched:
                    self.alpha = search_alpha(probe_losses)
            except NonFiniteGradient as error:
                before_step.restore()
                return self._on_non_finite(who, [] if a is None else [a.loss], error)
            except BaseException:
                before_step.restore()
                raise

        # 5. θ is back: hand ‖g_k‖·v(α*) to the base optimizer as the gradient (times S, which the
        # GradScaler's step divides out again)
        coef_v0, coef_v1 = slerp(psi, self.alpha)
        length = gk_norm / self._unscale
        with torch.no_grad():
            gradient = a.gk  # scaled in place: g_k is not needed any more
            torch._foreach_mul_(gradient, length * coef_v1 * to_v1)
            if coef_v0 != 0:
                torch._foreach_add_(gradient, a.displacement, alpha=length * coef_v0 * to_v0)
        for p in self.params:
            p.grad = None
        for p, g in zip(a.params, gradient, strict=True):
            p.grad = g
        self._base_step()

        self._record([a], gk_norm)
        self.diagnostics.update(alpha=self.alpha, psi=psi, searched=searched, probe_losses=probe_losses)
        self.step_count += 1
        return a.loss

    def _search(self, closure, a, psi, to_v0, to_v1) -> list:
        """[(α, L(θ + ρ_max·v(α))) for α on the grid], without gradients, on the same batch,
        averaged over the workers under DDP; the parameters are back at θ afterwards."""
        if self.ddp is None and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            raise RuntimeError(
                "XSAM.step: torch.distributed is running with several processes but XSAM was not given "
                "ddp=<the DistributedDataParallel model>; each worker would pick its own α* from its own "
                "probe losses and the replicas would drift apart"
            )
        losses = []
        try:
            with torch.no_grad(), frozen_batchnorm_stats():
                for alpha in self.alpha_grid:
                    coef_v0, coef_v1 = slerp(psi, alpha)
                    for p, theta, e, g in zip(a.params, a.theta, a.displacement, a.gk, strict=True):
                        point = self._point_buffer(p)
                        torch.add(theta, e, alpha=self.rho_max * coef_v0 * to_v0, out=point)
                        point.add_(g, alpha=self.rho_max * coef_v1 * to_v1)
                        p.data = point  # the probe point θ + ρ_max·v(α)
                    # the loss at the probe point θ + ρ_max·v(α)
                    losses.append(check_loss(closure(), "XSAM.step", needs_grad=False).detach())
        finally:
            for p, theta in zip(a.params, a.theta, strict=True):
                p.data = theta  # back to θ exactly
        losses = torch.stack(losses).to(torch.float64)
        if self.ddp is not None:  # the global batch's loss is the mean of the workers' (equal) shares
            dist.all_reduce(losses, group=self.ddp.process_group)
            losses /= dist.get_world_size(self.ddp.process_group)
        return list(zip(self.alpha_grid, losses.tolist(), strict=True))

    # ---- checkpoints: SAM's, plus the search state -------------------------------------------
    _HYPER = ("rho", "rho_max", "alpha_max", "alpha_step", "steps", "search_every")
    _STATE = ("step_count", "alpha")

    def _counters(self, state) -> dict:
        return {
            "step_count": checks.count("XSAM", "step_count", state["step_count"], 0),
            "alpha": checks.number("XSAM", "alpha", state["alpha"]),
        }
