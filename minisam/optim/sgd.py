"""The optimizer interface and plain stochastic gradient descent (the base of SAM and XSAM).

Every minisam optimizer takes the same step,

    loss = opt.step(closure)

where ``closure()`` runs the forward pass on the current batch and returns the loss
Tensor *without* calling backward. The optimizer clears the gradients, calls backward
itself as often as its algorithm needs a gradient, and returns the loss at the current
(unperturbed) parameters -- so one training loop serves SGD, SAM and XSAM alike. A closure
that calls backward itself would add its gradient twice; it is refused
(``minisam.vector.loss_and_gradients``).
"""

from __future__ import annotations

from .. import backend, checks, nn, vector
from ..tensor import Tensor, no_grad


def check_state_keys(state, expected, who: str, optional=()) -> None:
    """Fail, naming the keys, unless ``state`` is a dict holding the ``expected`` keys
    (and perhaps some of the ``optional`` ones) and nothing else."""
    if not isinstance(state, dict):
        raise checks.ArgumentError(f"{who}.load_state_dict: expected a dict, got {type(state).__name__}")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected and k not in optional]
    if missing or unexpected:
        raise KeyError(f"{who}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")


def buffers_like(params, buffers, who: str, name: str) -> list:
    """A checkpoint's per-parameter arrays (``None`` for "not started yet"), checked against
    the parameters' shapes and moved to their device and dtype."""
    if not isinstance(buffers, (list, tuple)) or len(buffers) != len(params):
        length = len(buffers) if isinstance(buffers, (list, tuple)) else "?"
        raise checks.ArgumentError(
            f"{who}.load_state_dict: {name} must be a list of {len(params)} entries (one per "
            f"parameter), got {type(buffers).__name__} of length {length}"
        )
    for i, (b, p) in enumerate(zip(buffers, params, strict=True)):
        if b is not None and tuple(getattr(b, "shape", ())) != p.shape:
            raise checks.ArgumentError(
                f"{who}.load_state_dict: {name}[{i}] has shape {getattr(b, 'shape', None)}, "
                f"parameter {i} has shape {p.shape}"
            )
    return [
        None if b is None else backend.to_device(b, p.dtype).copy()
        for b, p in zip(buffers, params, strict=True)
    ]


def host_copies(buffers) -> list:
    return [None if b is None else backend.to_host(b).copy() for b in buffers]


class Optimizer:
    """What every optimizer has: the parameter list, a checked ``lr``, ``zero_grad``,
    ``step`` and a ``state_dict`` that a resumed run needs (one list, one lr: no groups)."""

    def __init__(self, params):
        who = type(self).__name__
        self.params = list(params)
        if not self.params:
            raise checks.ArgumentError(f"{who}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise checks.ArgumentError(
                    f"{who}: parameter {i} must be a Tensor with requires_grad=True, got {type(p).__name__}"
                )
        if len({id(p) for p in self.params}) != len(self.params):
            raise checks.ArgumentError(f"{who}: a parameter appears more than once")

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:  # schedulers write here: checked like the constructor's lr
        self._lr = checks.number(type(self).__name__, "lr", value, 0.0)

    def zero_grad(self) -> None:
        """Forget the gradients (set them to None, as PyTorch does by default)."""
        for p in self.params:
            p.grad = None

    def _loss_and_gradients(self, closure) -> Tensor:
        """One forward+backward pass; on an error BatchNorm's statistics are put back."""
        with nn.restore_batchnorm_stats_on_error():
            loss, _ = vector.loss_and_gradients(closure, self.params, f"{type(self).__name__}.step")
        return loss

    def step(self, closure=None):
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, exactly PyTorch's ``torch.optim.SGD``
    (minisam/optim/ALGORITHMS.md, section SGD):

        d = g + weight_decay·θ
        buf = d                                    (first step)
        buf = momentum·buf + (1 − dampening)·d     (later steps)
        d = d + momentum·buf  if nesterov  else  buf
        θ ← θ − lr·d

    ``step(closure)`` clears the gradients, evaluates the closure, backpropagates and
    steps; ``step()`` without a closure steps on the gradients already in ``p.grad``.
    Parameters whose gradient is None are left alone (their buffer too).
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params)
        self.__dict__.update(self._settings(lr, momentum, dampening, weight_decay, nesterov))
        self.momentum_buffers = [None] * len(self.params)

    @staticmethod
    def _settings(lr, momentum, dampening, weight_decay, nesterov) -> dict:
        settings = {
            "_lr": checks.number("SGD", "lr", lr, 0.0),
            "momentum": checks.number("SGD", "momentum", momentum, 0.0),
            "dampening": checks.number("SGD", "dampening", dampening, 0.0),
            "weight_decay": checks.number("SGD", "weight_decay", weight_decay, 0.0),
            "nesterov": checks.flag("SGD", "nesterov", nesterov),
        }
        if settings["nesterov"] and (settings["momentum"] <= 0 or settings["dampening"] != 0):
            raise checks.ArgumentError(
                "SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )
        return settings

    def step(self, closure=None):
        loss = None if closure is None else self._loss_and_gradients(closure)
        with no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                d = p.grad
                if self.weight_decay != 0:
                    d = d + self.weight_decay * p.data
                if self.momentum != 0:
                    buf = self.momentum_buffers[i]
                    if buf is None:  # the first step starts the buffer at d itself
                        buf = d.copy() if d is p.grad else d
                        self.momentum_buffers[i] = buf
                    else:
                        buf *= self.momentum
                        buf += d if self.dampening == 0 else (1 - self.dampening) * d
                    d = d + self.momentum * buf if self.nesterov else buf
                p.data -= self.lr * d
        return loss

    _HYPER = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def state_dict(self) -> dict:
        state = {name: getattr(self, name) for name in self._HYPER}
        state["momentum_buffers"] = host_copies(self.momentum_buffers)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore hyper-parameters and momentum buffers; everything is checked first,
        so a bad state raises (naming what is wrong) and changes nothing."""
        check_state_keys(state, self._HYPER + ("momentum_buffers",), "SGD")
        buffers = buffers_like(self.params, state["momentum_buffers"], "SGD", "momentum_buffers")
        settings = self._settings(*(state[name] for name in self._HYPER))
        self.__dict__.update(settings)
        self.momentum_buffers = buffers
