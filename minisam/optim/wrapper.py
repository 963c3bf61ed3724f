"""What SAM and XSAM share: they wrap a base optimizer and hand it a gradient at θ.

A SAM-family optimizer computes a gradient (at an ascent point, or along XSAM's arc), puts
it where the parameters' gradients go, and lets the base optimizer (SGD, Adam, AdamW, …)
take its ordinary step at θ. So the wrapper owns no learning rate of its own: ``lr``
reads and writes the base's, which is how schedulers drive it. Also here: pointing the
parameters at another point for one pass and handing θ's own arrays back afterwards,
and the checkpoint plumbing (settings, step counter, the base's own state).
"""

from __future__ import annotations

from contextlib import contextmanager

from .. import checks, vector
from .sgd import Optimizer, check_state_keys


@contextmanager
def moved_to(params, point):
    """The parameters hold ``point`` (e.g. an ascent point ϑ, a probe θ + ρ_max·v(α)) inside
    the block; afterwards, error or not, they hold θ's own arrays again -- exactly, since
    nothing wrote into them."""
    theta = vector.data_of(params)
    vector.set_data(params, point)
    try:
        yield
    finally:
        vector.set_data(params, theta)


class SharpnessAware(Optimizer):
    """Base of SAM and XSAM: ``base``, ``lr`` (the base's), ``step_count``, ``diagnostics``,
    and state dicts made of the settings named in ``_HYPER``, ``step_count`` and the base's."""

    _HYPER: tuple = ()
    _OPTIONAL: tuple = ()  # settings that older checkpoints may not have

    def __init__(self, base):
        who = type(self).__name__
        if isinstance(base, SharpnessAware):
            raise checks.ArgumentError(
                f"{who}: base must be a plain optimizer (SGD, Adam, AdamW, ...), got a "
                f"{type(base).__name__}: one SAM-family optimizer inside another is not defined"
            )
        if not isinstance(base, Optimizer):
            raise checks.ArgumentError(
                f"{who}: base must be an optimizer such as optim.SGD(params, lr=0.1), "
                f"got {type(base).__name__}"
            )
        self.base, self.params = base, base.params
        self.step_count = 0
        self.diagnostics = {}

    @property
    def lr(self) -> float:
        return self.base.lr

    @lr.setter
    def lr(self, value) -> None:
        self.base.lr = value

    def zero_grad(self) -> None:
        self.base.zero_grad()

    def _check_closure(self, closure) -> None:
        if not callable(closure):
            raise checks.ArgumentError(
                f"{type(self).__name__}.step needs a closure that evaluates the loss on the batch "
                f"(without calling backward): it evaluates it several times; got {closure!r}"
            )

    def _descend(self, gradients) -> None:
        """The last moment of every SAM-family step: with the parameters at θ, hand them
        ``gradients`` (None for a parameter that takes no part) and let the base step."""
        for p, g in zip(self.params, gradients, strict=True):
            p.grad = g
        self.base.step()

    def _settings(self, **settings) -> dict:
        raise NotImplementedError

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {name: getattr(self, name) for name in self._HYPER}
        state["step_count"] = self.step_count
        state["base"] = self.base.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore settings, the step counter and the base optimizer's state. Everything is
        checked before anything changes, so an error (naming the key) changes nothing."""
        who = type(self).__name__
        required = tuple(k for k in self._HYPER if k not in self._OPTIONAL) + ("step_count", "base")
        check_state_keys(state, required, who, optional=self._OPTIONAL)
        values = self._settings(**{name: state[name] for name in self._HYPER if name in state})
        values["step_count"] = checks.count(who, "step_count", state["step_count"], 0)
        self.base.load_state_dict(state["base"])  # checks everything itself before changing
        self.__dict__.update(values)
