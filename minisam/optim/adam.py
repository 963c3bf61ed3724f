"""Adam and AdamW, with PyTorch's rules exactly, so that SAM and XSAM can wrap them too.

Adam (Kingma & Ba, ICLR 2015) keeps, per parameter, running means of the gradient and of
its square, corrects both for starting at zero, and steps by their ratio. AdamW
(Loshchilov & Hutter, ICLR 2019) takes weight decay out of the gradient and applies it
to the weights directly. With t the parameter's own step count
(minisam/optim/ALGORITHMS.md, section "Adam and AdamW"):

    Adam:   g ← g + weight_decay·θ
    AdamW:  θ ← θ − lr·weight_decay·θ
    m ← β₁·m + (1 − β₁)·g            v ← β₂·v + (1 − β₂)·g²
    v̂ = max(v̂, v) with amsgrad, else v
    θ ← θ − (lr/(1 − β₁ᵗ)) · m / (√v̂/√(1 − β₂ᵗ) + eps)

eps sits outside the square root, after the bias correction, as in ``torch.optim.Adam``.
"""

from __future__ import annotations

import math

from .. import checks
from ..backend import get_array_module
from ..tensor import no_grad
from .sgd import Optimizer, buffers_like, check_state_keys, host_copies


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False)``:
    ``torch.optim.Adam``'s update. Parameters without a gradient are left alone, their
    moments and step count too."""

    decoupled_weight_decay = False  # AdamW: True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        super().__init__(params)
        self.__dict__.update(self._settings(lr, betas, eps, weight_decay, amsgrad))
        n = len(self.params)
        self.steps = [0] * n
        self.exp_avg, self.exp_avg_sq, self.max_exp_avg_sq = [None] * n, [None] * n, [None] * n

    def _settings(self, lr, betas, eps, weight_decay, amsgrad) -> dict:
        who = type(self).__name__
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise checks.ArgumentError(f"{who}: betas must be a pair (beta1, beta2), got {betas!r}")
        return {
            "_lr": checks.number(who, "lr", lr, 0.0),
            "betas": tuple(checks.probability(who, f"betas[{i}]", b) for i, b in enumerate(betas)),
            "eps": checks.number(who, "eps", eps, 0.0, above=True),  # 0 would give 0/0 for a zero gradient
            "weight_decay": checks.number(who, "weight_decay", weight_decay, 0.0),
            "amsgrad": checks.flag(who, "amsgrad", amsgrad),
        }

    def step(self, closure=None):
        loss = None if closure is None else self._loss_and_gradients(closure)
        self._check_gradients()
        with no_grad():
            for i, p in enumerate(self.params):
                if p.grad is not None:
                    self._update(i, p)
        return loss

    def _update(self, i, p) -> None:
        beta1, beta2 = self.betas
        g, xp = p.grad, get_array_module(p.data)
        if self.exp_avg[i] is None:  # both moments start at zero
            self.exp_avg[i], self.exp_avg_sq[i] = xp.zeros_like(p.data), xp.zeros_like(p.data)
        if self.amsgrad and self.max_exp_avg_sq[i] is None:
            self.max_exp_avg_sq[i] = xp.zeros_like(p.data)
        self.steps[i] += 1
        if self.decoupled_weight_decay:
            p.data *= 1 - self.lr * self.weight_decay  # AdamW: decay the weights themselves
        elif self.weight_decay != 0:
            g = g + self.weight_decay * p.data  # Adam: an L2 penalty added to the gradient
        m, v = self.exp_avg[i], self.exp_avg_sq[i]
        m += (1 - beta1) * (g - m)  # m ← β₁·m + (1 − β₁)·g, written as PyTorch's lerp
        v *= beta2
        v += (1 - beta2) * (g * g)
        if self.amsgrad:
            v = xp.maximum(self.max_exp_avg_sq[i], v, out=self.max_exp_avg_sq[i])
        t = self.steps[i]
        step_size = self.lr / (1 - beta1**t)
        denominator = xp.sqrt(v) / math.sqrt(1 - beta2**t) + self.eps  # eps outside the sqrt
        p.data -= step_size * (m / denominator)

    _HYPER = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def state_dict(self) -> dict:
        state = {name: getattr(self, name) for name in self._HYPER}
        state["steps"] = list(self.steps)
        state.update({name: host_copies(getattr(self, name)) for name in self._STATE})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore settings, step counts and moments; all checked before anything changes."""
        who = type(self).__name__
        check_state_keys(state, self._HYPER + ("steps",) + self._STATE, who)
        settings = self._settings(*(state[name] for name in self._HYPER))
        steps = state["steps"]
        if not isinstance(steps, (list, tuple)) or len(steps) != len(self.params):
            raise checks.ArgumentError(f"{who}.load_state_dict: steps must hold one count per parameter")
        steps = [checks.count(who, f"steps[{i}]", s) for i, s in enumerate(steps)]
        moments = {
            name: buffers_like(self.params, state[name], who, name, nonnegative=name != "exp_avg")
            for name in self._STATE
        }
        self.__dict__.update(settings)
        self.steps = steps
        self.__dict__.update(moments)


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)``:
    ``torch.optim.AdamW``'s update, Adam with decoupled weight decay θ ← θ − lr·wd·θ."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
