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

from .. import checks
from .sgd import check_state_keys


class LRScheduler:
    """Holds the optimizer, its initial lr and the step count ``last_epoch``."""

    _HYPER: tuple = ()

    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr"):
            raise checks.ArgumentError(
                f"{type(self).__name__}: the optimizer must have an lr attribute, "
                f"got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_lr = checks.number(type(self).__name__, "the optimizer's lr", optimizer.lr, 0.0)
        self.last_epoch = 0
        self.optimizer.lr = self.get_lr()

    def get_lr(self) -> float:
        raise NotImplementedError(
            f"{type(self).__name__} must define get_lr(); use StepLR or CosineAnnealingLR, "
            "or a subclass of LRScheduler that defines it"
        )

    def step(self) -> None:
        """One step of the schedule; if the new lr is refused (a gamma > 1 can overflow it to
        inf), the error says so and the step count stays where it was."""
        self.last_epoch += 1
        try:
            self.optimizer.lr = self.get_lr()
        except BaseException:
            self.last_epoch -= 1
            raise

    def get_last_lr(self) -> float:
        return self.optimizer.lr

    def state_dict(self) -> dict:
        state = {"base_lr": self.base_lr, "last_epoch": self.last_epoch}
        state.update({name: getattr(self, name) for name in self._HYPER})
        return state

    def _settings(self, **settings) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        """Restore the step count and settings (the optimizer's own state holds its lr);
        everything is checked before anything changes."""
        who = type(self).__name__
        check_state_keys(state, ("base_lr", "last_epoch") + self._HYPER, who)
        values = self._settings(**{name: state[name] for name in self._HYPER})
        values["base_lr"] = checks.number(who, "base_lr", state["base_lr"], 0.0)
        values["last_epoch"] = checks.count(who, "last_epoch", state["last_epoch"], 0)
        self.__dict__.update(values)


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` steps: lr₀·gamma^⌊t/step_size⌋."""

    _HYPER = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.__dict__.update(self._settings(step_size=step_size, gamma=gamma))
        super().__init__(optimizer)

    def _settings(self, step_size, gamma) -> dict:
        return {
            "step_size": checks.count("StepLR", "step_size", step_size, 1),
            "gamma": checks.number("StepLR", "gamma", gamma, 0.0, above=True),
        }

    def get_lr(self) -> float:
        try:
            factor = self.gamma ** (self.last_epoch // self.step_size)
        except OverflowError:  # a gamma > 1 grows without bound; the optimizer refuses an infinite lr
            factor = math.inf
        return self.base_lr * factor


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from lr₀ down to ``eta_min`` over ``T_max`` steps (Loshchilov &
    Hutter, SGDR, ICLR 2017, without restarts): eta_min + (lr₀ − eta_min)(1 + cos(πt/T_max))/2."""

    _HYPER = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.__dict__.update(self._settings(T_max=T_max, eta_min=eta_min))
        super().__init__(optimizer)

    def _settings(self, T_max, eta_min) -> dict:
        return {
            "T_max": checks.count("CosineAnnealingLR", "T_max", T_max, 1),
            "eta_min": checks.number("CosineAnnealingLR", "eta_min", eta_min, 0.0),
        }

    def get_lr(self) -> float:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine
