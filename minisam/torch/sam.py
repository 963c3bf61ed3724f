"""Sharpness-Aware Minimization for PyTorch optimizers: ``minisam.torch.SAM``.

The algorithm of ``minisam.optim.SAM`` (minisam/optim/ALGORITHMS.md, sections SAM and
m-sharpness), step for step, on torch tensors: CPU or CUDA, float32 or float64, under
``torch.autocast`` with a ``GradScaler``, and under ``DistributedDataParallel``. It wraps
an existing ``torch.optim`` optimizer (SGD, Adam, AdamW, ...) the way the NumPy class
wraps its base. One step on a batch:

    ϑ₀ = θ;   ϑᵢ₊₁ = ϑᵢ + (ρ/k)·gᵢ/(‖gᵢ‖ + ε₀),   gᵢ = ∇L(ϑᵢ),   i = 0 … k−1
    g_k = ∇L(ϑ_k)
    restore θ (a copy, never a subtraction), hand g_k to the base optimizer, base.step()

‖·‖ is the L2 norm over all parameters together, accumulated in float64, and ε₀ = 1e-12.
ASAM (``adaptive=True``) moves by (ρ/k)·T²·gᵢ/(‖T·gᵢ‖ + ε₀) with T = |ϑᵢ| + η on every
parameter (the ASAM authors' code applies T only to tensors named "weight").

m-sharpness (``m=...``): the batch is cut, in order, into B/m micro-batches; each does its
own ascent from θ and its own gradient g̃_j at θ + ε_j; the base optimizer gets the mean
of the g̃_j. The closure then takes the micro-batch as a ``slice`` of example indices.

Usage (the closure returns the loss and does not call backward; the optimizer does):

    opt = minisam.torch.SAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05)
    loss = opt.step(lambda: F.cross_entropy(model(x), y))

    opt = minisam.torch.SAM(base, rho=0.05, m=16)            # m-sharpness
    loss = opt.step(lambda part=slice(None): F.cross_entropy(model(x[part]), y[part]), batch_size=len(x))

Parameters that receive no gradient at θ (an unused layer, ``requires_grad=False``) take
no part in any norm or move and are left to the base optimizer with ``grad = None``, which
leaves them alone. BatchNorm running statistics are updated only by the pass at θ (see
``batchnorm.py``). Mixed precision: ``opt.step(closure, scaler=scaler)`` then
``scaler.update()`` (see README.md in this folder). Data-parallel training: ``ddp=model``,
and ``sync_ascent=False`` for each worker's own perturbation (see README.md).
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch

from .. import checks
from .batchnorm import BatchNormSnapshot, frozen_batchnorm_stats

EPS0 = 1e-12  # ε₀, added to every norm that is divided by


class NonFiniteGradient(FloatingPointError):
    """A gradient or loss the step needs is inf or NaN; the parameters were left at θ."""


# ---- the parameters as one vector (the NumPy side's minisam/vector.py, on torch) -----------
def _combined(values, dtype=None):
    """Σ over one 0-d tensor per parameter, as a float64 Python float (one device sync)."""
    values = [v if v.device == values[0].device else v.to(values[0].device) for v in values]
    return torch.stack(values).to(torch.float64 if dtype is None else dtype)


def norm(tensors) -> float:
    """‖x‖ = sqrt(Σ over every tensor of Σ xᵢ²). Computed in the tensors' own dtype (fast);
    if that overflows (float32 does for ‖x‖ above about 1.8e19) it is recomputed in float64,
    so a large but finite gradient gives a large but finite norm, never inf."""
    tensors = list(tensors)
    total = torch.linalg.vector_norm(_combined(torch._foreach_norm(tensors))).item()
    if not math.isfinite(total):
        norms = [torch.linalg.vector_norm(t, dtype=torch.float64) for t in tensors]
        total = torch.linalg.vector_norm(_combined(norms)).item()
    return total


def dot(xs, ys) -> float:
    """⟨x, y⟩ = Σ over every tensor of Σ xᵢ·yᵢ (recomputed in float64 if it overflows)."""
    pairs = list(zip(xs, ys, strict=True))
    total = _combined([torch.vdot(x.reshape(-1), y.reshape(-1)) for x, y in pairs]).sum().item()
    if not math.isfinite(total):
        terms = [torch.vdot(x.reshape(-1).double(), y.reshape(-1).double()) for x, y in pairs]
        total = _combined(terms).sum().item()
    return total


def ascend(gradient_here, theta, points, grads, rho, steps, adaptive=False, eta=0.01, unscale=1.0):
    """Steps 1 and 2 of SAM from θ: ``theta`` holds θ's tensors, which are only read, and
    ``points`` the tensors the parameters point at during the ascent, into which each ascent
    point ϑᵢ₊₁ = θ + (ϑᵢ₊₁ − θ) is written.

    ``grads`` is g₀ = ∇L(θ); ``gradient_here(last)`` runs one forward+backward pass at the
    current parameters and returns ``(loss, grads)`` (``last`` is True for the pass at ϑ_k).
    ``unscale`` is 1/S when the gradients carry a GradScaler's factor S: the direction
    gᵢ/‖gᵢ‖ does not depend on S, but ε₀ must be added to the true norm.

    Returns ``(displacement ϑ_k − θ, [‖g₀‖ … ‖g_{k−1}‖], L(ϑ_k), g_k)``.
    """
    displacement, grad_norms = None, []
    for i in range(steps):
        grad_norm = norm(grads) * unscale
        if not math.isfinite(grad_norm):
            where = "θ" if i == 0 else f"the ascent point ϑ_{i}"
            raise NonFiniteGradient(f"the gradient at {where} is not finite (its norm is {grad_norm})")
        grad_norms.append(grad_norm)
        with torch.no_grad():
            if adaptive:
                # ASAM: with T = |ϑᵢ| + η the step is (ρ/k)·T²·gᵢ/(‖T·gᵢ‖ + ε₀)
                scales = torch._foreach_add(torch._foreach_abs(theta if i == 0 else points), eta)
                scaled = torch._foreach_mul(scales, grads)
                size, moves = norm(scaled) * unscale, torch._foreach_mul(scales, scaled)
            else:
                size, moves = grad_norm, grads
            move = torch._foreach_mul(moves, (rho / steps) * unscale / (size + EPS0))
            if displacement is None:
                displacement = move
            else:
                torch._foreach_add_(displacement, move)
            for point, t, d in zip(points, theta, displacement, strict=True):
                torch.add(t, d, out=point)  # climb: ϑᵢ₊₁ = θ + Σ (ρ/k)·gᵢ/‖gᵢ‖
        # the gradient at the new ascent point, on the same batch
        ascent_loss, grads = gradient_here(i == steps - 1)
    return displacement, grad_norms, ascent_loss, grads


class Ascent:
    """What one ascent from θ produced, on the whole batch or one micro-batch."""

    __slots__ = ("loss", "params", "theta", "grad_norms", "displacement", "ascent_loss", "gk")
    __slots__ += ("gk_norm", "distance", "cos_psi")  # ‖g_k‖, ‖ϑ_k − θ‖, cos ∠(ϑ_k − θ, g_k)


def check_loss(loss, who: str, needs_grad: bool = True) -> torch.Tensor:
    """The closure contract: a scalar loss tensor (that backward can run through)."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        what = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss)
        raise TypeError(
            f"{who}: the closure must return the scalar loss tensor (and not call backward itself), "
            f"got {what}"
        )
    if needs_grad and not loss.requires_grad:
        raise RuntimeError(
            f"{who}: the closure's loss does not depend on any parameter that requires a gradient "
            "(was it computed under torch.no_grad(), or from detached outputs?)"
        )
    return loss


class SAM:
    """``SAM(base, rho=0.05, steps=1, adaptive=False, eta=0.01, m=None, *, ddp=None, sync_ascent=True)``.

    ``base`` is a ``torch.optim.Optimizer`` instance; its hyper-parameters (lr, momentum,
    weight decay, ...) and its state are its own, and weight decay therefore enters only at
    θ, never in the ascent. Schedulers wrap ``opt.base``.

    ``step(closure, *, batch_size=None, scaler=None)`` costs ``steps + 1`` forward+backward
    passes and returns the loss at θ (detached; with ``m`` the mean of the micro-batch
    losses). After each step ``diagnostics`` holds plain floats:

        loss            L(θ)                  ascent_loss     L(ϑ_k)
        g0_norm         ‖g₀‖                  gk_norm         ‖g_k‖
        grad_norms      [‖g₀‖ … ‖g_{k−1}‖]    ascent_distance ‖ϑ_k − θ‖
        cos_psi         cos of the angle between ϑ_k − θ and g_k
        step            index of the step     skipped         True if a GradScaler step was skipped
        micro_batches   B/m (1 without m); with m the entries above are means over micro-batches
        gradient_norm   the norm of the gradient handed to the base optimizer (‖g_k‖ without m)

    ``ddp``: the ``DistributedDataParallel`` model, needed only for ``sync_ascent=False``:
    then every pass but the last runs under ``ddp.no_sync()``, so each worker climbs along
    its own local gradient and only g_k is averaged -- exactly SAM with m = per-worker
    batch. The default synchronises every pass: exactly SAM on the global batch.
    """

    def __init__(
        self, base, rho=0.05, steps=1, adaptive=False, eta=0.01, m=None, *, ddp=None, sync_ascent=True
    ):
        who = type(self).__name__
        self.base = self._checked_base(base)
        self.params = [p for group in base.param_groups for p in group["params"] if p.requires_grad]
        if not self.params:
            raise ValueError(f"{who}: the base optimizer has no parameter that requires a gradient")
        self.__dict__.update(self._settings(rho=rho, steps=steps, adaptive=adaptive, eta=eta, m=m))
        self.ddp, self.sync_ascent = self._checked_ddp(ddp, sync_ascent)
        self.step_count = 0
        self.diagnostics = {}
        self._scaler, self._unscale = None, 1.0  # set by each step
        self._points = {}  # parameter -> the buffer its ascent and probe points are written into

    # ---- arguments ----------------------------------------------------------------------------
    def _checked_base(self, base):
        who = type(self).__name__
        if isinstance(base, SAM):
            raise TypeError(
                f"{who}: base is already a {type(base).__name__}; nesting SAM-family optimizers is not "
                "defined. Wrap the plain torch optimizer (e.g. torch.optim.SGD) once."
            )
        if not isinstance(base, torch.optim.Optimizer):
            raise TypeError(
                f"{who}: base must be a torch.optim.Optimizer instance (e.g. "
                f"torch.optim.SGD(model.parameters(), lr=0.1)), got {type(base).__name__}"
            )
        return base

    def _settings(self, rho, steps, adaptive, eta, m) -> dict:
        """The hyper-parameters, validated (used by __init__ and load_state_dict)."""
        who = type(self).__name__
        return {
            "rho": checks.number(who, "rho", rho, 0.0),
            "steps": checks.count(who, "steps", steps, 1),
            "adaptive": checks.flag(who, "adaptive", adaptive),
            "eta": checks.number(who, "eta", eta, 0.0),
            "m": None if m is None else checks.count(who, "m", m, 1),
        }

    def _checked_ddp(self, ddp, sync_ascent):
        who = type(self).__name__
        sync_ascent = checks.flag(who, "sync_ascent", sync_ascent)
        if ddp is not None and not isinstance(ddp, torch.nn.parallel.DistributedDataParallel):
            raise TypeError(
                f"{who}: ddp must be the torch.nn.parallel.DistributedDataParallel model, "
                f"got {type(ddp).__name__}"
            )
        if not sync_ascent and ddp is None:
            raise ValueError(
                f"{who}: sync_ascent=False needs ddp=<the DistributedDataParallel model>, whose no_sync() "
                "keeps each worker's ascent gradient local"
            )
        if ddp is not None and self.m is not None:
            raise ValueError(
                f"{who}: m={self.m} together with ddp is not supported; under DDP, m-sharpness with "
                "m = per-worker batch is sync_ascent=False"
            )
        return ddp, sync_ascent

    @property
    def param_groups(self):
        return self.base.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    # ---- one forward+backward pass ------------------------------------------------------------
    def _pass(self, closure, part, sync: bool, who: str):
        """Clear the gradients, run the closure (on micro-batch ``part``), check that it did
        not call backward itself, backpropagate (scaled when a GradScaler is in use);
        return the detached loss and each parameter's gradient (None where not reached)."""
        for p in self.params:
            p.grad = None
        with nullcontext() if sync or self.ddp is None else self.ddp.no_sync():
            loss = check_loss(closure() if part is None else closure(part), who)
            if any(p.grad is not None for p in self.params):
                raise RuntimeError(
                    f"{who}: the closure called backward itself. Here the closure only computes and "
                    "returns the loss; the optimizer calls backward as often as SAM needs (calling it "
                    "in the closure too would add the gradient twice). Remove loss.backward() from it."
                )
            (loss if self._scaler is None else self._scaler.scale(loss)).backward()
        return loss.detach(), [p.grad for p in self.params]

    def _ascend_on(self, closure, part, who: str) -> Ascent:
        """The pass at θ, then ``ascend``; θ is restored (copied back) before returning,
        also on an error. The result holds g_k (as the scaled gradients when S ≠ 1)."""
        loss, grads = self._pass(closure, part, self.sync_ascent, who)  # at θ: updates BatchNorm
        reached = [(p, g) for p, g in zip(self.params, grads, strict=True) if g is not None]
        if not reached:
            raise RuntimeError(f"{who}: no parameter received a gradient from the closure's loss")
        a = Ascent()
        a.loss = loss
        a.params, g0 = [p for p, _ in reached], [g for _, g in reached]
        # θ's own tensors are never written during the step: the parameters point at other
        # tensors (the ascent points, in buffers kept between steps) and going back to θ is
        # handing θ's tensors back -- exact, never ϑ_k − ε (which rounds)
        a.theta = [p.data for p in a.params]
        points = [self._point_buffer(p) for p in a.params]

        def gradient_here(last):
            loss, _ = self._pass(closure, part, last or self.sync_ascent, who)
            return loss, [p.grad if p.grad is not None else torch.zeros_like(p) for p in a.params]

        try:
            for p, point in zip(a.params, points, strict=True):
                p.data = point
            with frozen_batchnorm_stats():
                a.displacement, a.grad_norms, ascent_loss, a.gk = ascend(
                    gradient_here, a.theta, points, g0, self.rho, self.steps, self.adaptive, self.eta,
                    self._unscale,
                )  # fmt: skip
            a.gk_norm = norm(a.gk) * self._unscale
            if not math.isfinite(a.gk_norm):
                raise NonFiniteGradient(f"the gradient at the ascent point is not finite (norm {a.gk_norm})")
        except NonFiniteGradient as error:
            error.loss = loss  # the loss at θ, which a skipped step still returns
            raise
        finally:
            for p, theta in zip(a.params, a.theta, strict=True):
                p.data = theta  # back to θ exactly
        a.ascent_loss = ascent_loss.item()
        a.distance = norm(a.displacement)
        a.cos_psi = dot(a.displacement, a.gk) * self._unscale / ((a.distance + EPS0) * (a.gk_norm + EPS0))
        return a

    def _point_buffer(self, p):
        """The tensor parameter ``p`` points at while away from θ, made once and reused
        (a fresh parameter-sized tensor every step costs an allocation and page faults)."""
        buffer = self._points.get(p)
        if buffer is None or buffer.shape != p.shape or buffer.dtype != p.dtype or buffer.device != p.device:
            buffer = self._points[p] = torch.empty_like(p.data)
        return buffer

    def _parts(self, batch_size, who: str):
        """The micro-batches as slices, in order ([None]: the whole batch, without m)."""
        if self.m is None:
            if batch_size is not None:
                raise ValueError(f"{who}: batch_size is only for m-sharpness (m=...), and m is None")
            return [None]
        if batch_size is None:
            raise ValueError(
                f"{who}: with m={self.m} pass batch_size=B, the number of examples the closure's batch "
                "holds, so that it can be cut into B/m micro-batches"
            )
        batch_size = checks.count(who, "batch_size", batch_size, 1)
        if batch_size % self.m:
            raise ValueError(f"{who}: m={self.m} must divide batch_size, got batch_size={batch_size}")
        return [slice(j * self.m, (j + 1) * self.m) for j in range(batch_size // self.m)]

    def _begin(self, closure, scaler, who: str):
        if closure is None or not callable(closure):
            raise TypeError(
                f"{who} needs a closure that evaluates the loss on the batch (without calling backward): "
                f"it evaluates it several times; got {closure!r}"
            )
        if scaler is not None and not isinstance(scaler, torch.amp.GradScaler):
            raise TypeError(f"{who}: scaler must be a torch.amp.GradScaler, got {type(scaler).__name__}")
        self._scaler = scaler
        self._unscale = 1.0 if scaler is None else 1.0 / scaler.get_scale()

    def _on_non_finite(self, who: str, losses, error: NonFiniteGradient):
        """A non-finite gradient, θ and BatchNorm already back as before the step. Without a
        GradScaler that is an error. With one: θ is back, BatchNorm as before the step;
        ``scaler.step`` sees the non-finite gradients still in p.grad, skips the base step
        and lets ``scaler.update()`` lower the scale, as for any other optimizer. Returns the
        loss at θ (with m: of the micro-batches evaluated up to the one that overflowed)."""
        if self._scaler is None:
            raise NonFiniteGradient(
                f"{who}: {error}; parameters and BatchNorm statistics are unchanged. Under mixed "
                "precision pass scaler=GradScaler(...) to skip such steps instead."
            ) from None
        self._scaler.step(self.base)
        losses = losses + ([error.loss] if hasattr(error, "loss") else [])
        loss = torch.stack(losses).mean()
        self.diagnostics = {
            "loss": loss.item(),
            "skipped": True,
            "reason": str(error),
            "step": self.step_count,
        }
        return loss

    # ---- the step -----------------------------------------------------------------------------
    def step(self, closure=None, *, batch_size=None, scaler=None):
        who = f"{type(self).__name__}.step"
        self._begin(closure, scaler, who)
        parts = self._parts(batch_size, who)
        ascents, total = [], {}
        with BatchNormSnapshot() as before_step:
            try:
                for part in parts:
                    a = self._ascend_on(closure, part, who)
                    for p, g in zip(a.params, a.gk, strict=True):
                        total[p] = g if p not in total else total[p].add_(g)
                    ascents.append(a)
                # the norm of what the base optimizer gets: ‖g_k‖, or ‖mean of the g̃_j‖ with m
                gradient_norm = (
                    ascents[0].gk_norm if len(parts) == 1 else norm(total.values()) * self._unscale
                )
            except NonFiniteGradient as error:
                before_step.restore()
                return self._on_non_finite(who, [a.loss for a in ascents], error)
            except BaseException:
                before_step.restore()  # nothing changed: θ is back, BatchNorm as before
                raise
        # θ is back; the base optimizer steps at θ with the mean of the g̃_j (g_k without m)
        for p in self.params:
            p.grad = total.get(p)
            if p.grad is not None and len(parts) > 1:
                p.grad.div_(len(parts))
        self._base_step()
        self._record(ascents, gradient_norm / len(parts))
        self.step_count += 1
        return torch.stack([a.loss for a in ascents]).mean() if len(ascents) > 1 else ascents[0].loss

    def _base_step(self) -> None:
        if self._scaler is None:
            self.base.step()
        else:
            self._scaler.step(self.base)  # unscales by 1/S and steps

    def _record(self, ascents, gradient_norm) -> None:
        def mean(values):
            return sum(values) / len(values)

        losses = [a.loss.item() for a in ascents]
        grad_norms = [a.grad_norms for a in ascents]
        self.diagnostics = {
            "loss": mean(losses),
            "ascent_loss": mean([a.ascent_loss for a in ascents]),
            "g0_norm": mean([g[0] for g in grad_norms]),
            "gk_norm": mean([a.gk_norm for a in ascents]),
            "grad_norms": [mean(column) for column in zip(*grad_norms, strict=True)],
            "ascent_distance": mean([a.distance for a in ascents]),
            "cos_psi": mean([a.cos_psi for a in ascents]),
            "step": self.step_count,
            "skipped": False,
            "micro_batches": len(ascents),
            "gradient_norm": gradient_norm,
        }

    # ---- checkpoints --------------------------------------------------------------------------
    _HYPER = ("rho", "steps", "adaptive", "eta", "m")
    _STATE = ("step_count",)

    def state_dict(self) -> dict:
        """Settings, counters and the base optimizer's own ``state_dict()`` (for torch.save)."""
        state = {name: getattr(self, name) for name in self._HYPER + self._STATE}
        state["base"] = self.base.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore settings, counters and the base optimizer's state. The keys and values
        are checked before anything changes, so an error (naming the key) changes nothing."""
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{who}: expected a dict, got {type(state).__name__}")
        expected = self._HYPER + self._STATE + ("base",)
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            raise KeyError(f"{who}: missing keys {missing}, unexpected keys {unexpected}")
        values = self._settings(**{name: state[name] for name in self._HYPER})
        values.update(self._counters(state))
        self.base.load_state_dict(state["base"])  # checks its groups before changing anything
        self.__dict__.update(values)

    def _counters(self, state) -> dict:
        return {"step_count": checks.count(type(self).__name__, "step_count", state["step_count"], 0)}

    def __repr__(self):
        settings = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._HYPER)
        return f"{type(self).__name__}({type(self.base).__name__}, {settings})"
