"""Learning-rate schedules, in PyTorch's closed forms.

A scheduler changes ``optimizer.lr`` once per ``scheduler.step()`` (call it once per
epoch, after the optimizer steps). SAM and XSAM pass ``lr`` through to their base
optimizer, so the same schedulers drive them:

    opt = optim.SAM(optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    sched = optim.CosineAnnealingLR(opt, T_max=epochs)

With ``t`` the number of ``step()`` calls so far and ``lr₀`` the optimizer's lr when the
scheduler was made:

    StepLR:             lr = lr₀ · gamma^⌊t / step_size⌋
    CosineAnnealingLR:  lr = eta_min + (lr₀ − eta_min)·(1 + cos(π·t / T_max)) / 2
"""

from __future__ import annotations

import math
import numbers

from .sgd import restore_keys


class LRScheduler:
    """Holds the optimizer, its initial lr and the step count ``last_epoch``."""

    _HYPER: tuple = ()

    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr"):
            raise TypeError(
                f"{type(self).__name__}: the optimizer must have an lr attribute, "
                f"got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0
        self.optimizer.lr = self.get_lr()

    def get_lr(self) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()

    def get_last_lr(self) -> float:
        return self.optimizer.lr

    def state_dict(self) -> dict:
        state = {"base_lr": self.base_lr, "last_epoch": self.last_epoch}
        state.update({name: getattr(self, name) for name in self._HYPER})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore the step count and settings (the optimizer's own state holds its lr)."""
        who = type(self).__name__
        restore_keys(state, ("base_lr", "last_epoch") + self._HYPER, who)
        last_epoch = state["last_epoch"]
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral):
            raise TypeError(f"{who}.load_state_dict: last_epoch must be an int, got {last_epoch!r}")
        for name, value in state.items():
            setattr(self, name, value)


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` steps: lr₀·gamma^⌊t/step_size⌋."""

    _HYPER = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        if not isinstance(gamma, numbers.Real) or not gamma > 0:
            raise ValueError(f"StepLR: gamma must be a positive number, got {gamma!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from lr₀ down to ``eta_min`` over ``T_max`` steps (Loshchilov &
    Hutter, SGDR, ICLR 2017, without restarts): eta_min + (lr₀ − eta_min)(1 + cos(πt/T_max))/2."""

    _HYPER = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if isinstance(T_max, bool) or not isinstance(T_max, numbers.Integral) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max!r}")
        if not isinstance(eta_min, numbers.Real) or not eta_min >= 0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be a number >= 0, got {eta_min!r}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine
