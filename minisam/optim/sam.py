"""Sharpness-Aware Minimization: descend with the gradient taken at an ascent point.

SAM (Foret, Kleiner, Mobahi, Neyshabur, ICLR 2021, arXiv 2010.01412) minimises the worst
loss in a ball of radius ρ around the parameters θ,

    min_θ  max_{‖ε‖ ≤ ρ}  L(θ + ε),

approximating the inner maximum by gradient ascent on the same mini-batch. One step:

    ϑ₀ = θ;   ϑᵢ₊₁ = ϑᵢ + (ρ/k)·gᵢ/(‖gᵢ‖ + ε₀),   gᵢ = ∇L(ϑᵢ),   i = 0 … k−1
    g_k = ∇L(ϑ_k)
    restore θ, hand g_k to the base optimizer as the gradient, base.step()

k = 1 is the original SAM; k > 1 is multi-step SAM (the path has length ρ exactly: no
projection back onto the ball). ‖·‖ is the L2 norm over all parameters together and
ε₀ = 1e-12. Weight decay lives in the base optimizer only, applied at θ, never in the
ascent (the convention of the reference codes).

ASAM (Kwon, Kim, Park, Choi, ICML 2021), ``adaptive=True``, rescales each ascent step by
T = |ϑᵢ| + η elementwise:  ϑᵢ₊₁ = ϑᵢ + (ρ/k)·T²·gᵢ/(‖T·gᵢ‖ + ε₀).
minisam deliberately differs from the ASAM authors' code here: they apply T only to
tensors named "weight" (biases and BatchNorm parameters get T = 1); minisam applies it to
every parameter.

BatchNorm: only the first pass (at θ) updates running statistics; the later passes run
inside ``nn.frozen_batchnorm_stats()``.

Usage, the same loop as for SGD:

    opt = optim.SAM(optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05)
    loss = opt.step(lambda: F.cross_entropy(model(x), y))
    opt.diagnostics["gk_norm"]
"""

from __future__ import annotations

import math
import numbers

from .. import nn
from ..backend import get_array_module
from ..tensor import no_grad
from .sgd import Optimizer, closure_loss, restore_keys

EPS0 = 1e-12  # ε₀, added to every norm that is divided by


def global_norm(arrays) -> float:
    """‖·‖ over all parameters together: sqrt(Σ Σ aᵢ²)."""
    total = 0.0
    for a in arrays:
        total += get_array_module(a).vdot(a, a)  # stays on the device until float()
    return math.sqrt(float(total))


def global_dot(xs, ys) -> float:
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        total += get_array_module(x).vdot(x, y)
    return float(total)


class Ascent:
    """What the ascent produced: the saved θ, the displacement ϑ_k − θ, the losses and
    gradient norms along the way. (g_k itself is left in each ``p.grad``.)"""

    __slots__ = ("theta", "displacement", "loss", "ascent_loss", "grad_norms")


class SAM(Optimizer):
    """``SAM(base, rho=0.05, steps=1, adaptive=False, eta=0.01)``: wraps any base optimizer.

    ``step(closure)`` costs ``steps + 1`` forward+backward passes on the batch the
    closure evaluates and returns the loss at θ. ``lr`` reads and writes the base
    optimizer's, so schedulers work on the wrapper. After each step ``diagnostics`` holds

        loss            L(θ)                  ascent_loss     L(ϑ_k)
        g0_norm         ‖g₀‖                  gk_norm         ‖g_k‖
        grad_norms      [‖g₀‖ … ‖g_{k−1}‖]    ascent_distance ‖ϑ_k − θ‖
        cos_psi         cos of the angle between ϑ_k − θ and g_k
        step            index of the step just taken
    """

    def __init__(self, base, rho=0.05, steps=1, adaptive=False, eta=0.01):
        if not isinstance(base, Optimizer):
            raise TypeError(f"{type(self).__name__}: base must be an Optimizer, got {type(base).__name__}")
        self.base = base
        self.params = base.params
        self.__dict__.update(self._settings(rho=rho, steps=steps, adaptive=adaptive, eta=eta))
        self.step_count = 0
        self.diagnostics = {}
        self._workspaces = {}

    # ---- helpers shared with XSAM ------------------------------------------------------
    def _settings(self, rho, steps, adaptive, eta) -> dict:
        """The hyper-parameters, validated (used by __init__ and load_state_dict)."""
        return {
            "rho": self._number("rho", rho),
            "steps": self._count("steps", steps, 1),
            "adaptive": bool(adaptive),
            "eta": self._number("eta", eta),
        }

    def _number(self, name, value, minimum=0.0):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= minimum:
            raise ValueError(f"{type(self).__name__}: {name} must be a number >= {minimum:g}, got {value!r}")
        return float(value)

    def _count(self, name, value, minimum):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{type(self).__name__}: {name} must be an integer >= {minimum}, got {value!r}")
        return int(value)

    @property
    def lr(self):
        return self.base.lr

    @lr.setter
    def lr(self, value):
        self.base.lr = value

    def zero_grad(self) -> None:
        self.base.zero_grad()

    def _workspace(self, name: str) -> list:
        """Arrays shaped like the parameters, made once and reused every step. (A fresh
        multi-megabyte array each step is slow: the allocator hands it back to the OS when
        it is freed, so every step pays page faults again -- see ``python -m minisam bench``.)"""
        arrays = self._workspaces.get(name)
        if arrays is None or any(
            a.shape != p.shape or a.dtype != p.dtype for a, p in zip(arrays, self.params, strict=True)
        ):
            arrays = [get_array_module(p.data).empty_like(p.data) for p in self.params]
            self._workspaces[name] = arrays
        return arrays

    def _gradients(self):
        """The current gradients, a zero array for a parameter the loss did not reach."""
        return [
            p.grad if p.grad is not None else get_array_module(p.data).zeros_like(p.data) for p in self.params
        ]

    def _pass(self, closure):
        """One forward+backward pass at the current parameters; returns the loss value."""
        self.zero_grad()
        loss = closure_loss(closure, f"{type(self).__name__}.step")
        loss.backward()
        return loss

    def _ascend(self, closure, adaptive=False) -> Ascent:
        """Steps 1 and 2 of SAM: k normalised ascent steps from θ on the closure's batch,
        ending with the gradient g_k = ∇L(ϑ_k) in every ``p.grad``. The parameters are
        left at ϑ_k; on an error they are put back to θ before it propagates."""
        ascent = Ascent()
        # θ's own arrays are never written during the step: the parameters point at other
        # arrays ϑ = θ + displacement, so restoring θ is handing the originals back.
        ascent.theta = [p.data for p in self.params]
        ascent.grad_norms, displacement = [], None
        ascent.loss = self._pass(closure).detach()  # at θ: the one pass that updates BatchNorm
        try:
            with nn.frozen_batchnorm_stats():
                for _ in range(self.steps):
                    grads = self._gradients()
                    grad_norm = global_norm(grads)
                    ascent.grad_norms.append(grad_norm)
                    if adaptive:
                        # ASAM: with T = |ϑᵢ| + η the step is (ρ/k)·T²·gᵢ/(‖T·gᵢ‖ + ε₀)
                        xp = get_array_module(grads[0])
                        scales = [xp.abs(p.data) + self.eta for p in self.params]
                        scaled = [t * g for t, g in zip(scales, grads, strict=True)]
                        norm = global_norm(scaled)
                        moves = [t * tg for t, tg in zip(scales, scaled, strict=True)]
                    else:
                        norm, moves = grad_norm, grads
                    factor = (self.rho / self.steps) / (norm + EPS0)
                    with no_grad():
                        if displacement is None:
                            displacement = self._workspace("displacement")
                            points = self._workspace("ascent_point")
                            for p, theta, e, m, point in zip(
                                self.params, ascent.theta, displacement, moves, points, strict=True
                            ):
                                xp = get_array_module(m)
                                xp.multiply(m, factor, out=e)  # ϑ₁ − θ = ρ·g₀/‖g₀‖ (k = 1)
                                xp.add(theta, e, out=point)
                                p.data = point  # the ascent point ϑ₁, in its own array
                        else:
                            for p, theta, e, m in zip(
                                self.params, ascent.theta, displacement, moves, strict=True
                            ):
                                e += factor * m
                                get_array_module(e).add(theta, e, out=p.data)  # ϑᵢ₊₁ = θ + Σ steps
                    # the gradient at the new ascent point, on the same batch
                    ascent_loss = self._pass(closure)
        except BaseException:
            self._restore(ascent)
            raise
        ascent.ascent_loss = ascent_loss.item()
        ascent.displacement = displacement
        return ascent

    def _restore(self, ascent: Ascent) -> None:
        """Back to θ exactly. ALGORITHMS.md asks for a copy back, never ϑ_k − ε (which
        rounds); here θ's arrays were never written, so they are simply handed back."""
        for p, theta in zip(self.params, ascent.theta, strict=True):
            p.data = theta

    def _record(self, ascent: Ascent, gk_norm: float, displacement_norm: float, cos_psi: float):
        self.diagnostics = {
            "loss": ascent.loss.item(),
            "ascent_loss": ascent.ascent_loss,
            "g0_norm": ascent.grad_norms[0],
            "gk_norm": gk_norm,
            "grad_norms": ascent.grad_norms,
            "ascent_distance": displacement_norm,
            "cos_psi": cos_psi,
            "step": self.step_count,
        }

    # ---- the step ------------------------------------------------------------------------
    def step(self, closure=None):
        if closure is None:
            raise ValueError(
                f"{type(self).__name__}.step needs a closure that evaluates the loss on the "
                "batch (without calling backward): it evaluates it several times"
            )
        ascent = self._ascend(closure, adaptive=self.adaptive)
        gk = self._gradients()
        gk_norm = global_norm(gk)
        displacement_norm = global_norm(ascent.displacement)
        cos_psi = global_dot(ascent.displacement, gk) / ((displacement_norm + EPS0) * (gk_norm + EPS0))
        # back to θ exactly, then the base optimizer's step at θ with g_k as the gradient
        # (g_k is already in p.grad; weight decay and momentum are the base's business)
        self._restore(ascent)
        self.base.step()
        self._record(ascent, gk_norm, displacement_norm, cos_psi)
        self.step_count += 1
        return ascent.loss

    # ---- checkpoints ---------------------------------------------------------------------
    _HYPER = ("rho", "steps", "adaptive", "eta")
    _STATE = ("step_count",)

    def state_dict(self) -> dict:
        state = {name: getattr(self, name) for name in self._HYPER + self._STATE}
        state["base"] = self.base.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore settings, counters and the base optimizer's state. Everything is
        validated before anything changes, so an error (naming the key) changes nothing."""
        restore_keys(state, self._HYPER + self._STATE + ("base",), type(self).__name__)
        values = self._settings(**{name: state[name] for name in self._HYPER})
        values.update(self._check_counters(state))
        self.base.load_state_dict(state["base"])  # atomic itself: raises before any change
        self.__dict__.update(values)

    def _check_counters(self, state) -> dict:
        return {"step_count": self._count("step_count", state["step_count"], 0)}
