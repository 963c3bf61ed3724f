"""The optimizer interface and plain stochastic gradient descent (the base of SAM and XSAM).

Every minisam optimizer takes the same step,

    loss = opt.step(closure)

where ``closure()`` runs the forward pass on the current batch and returns the loss
Tensor *without* calling backward. The optimizer clears the gradients, calls backward
itself as often as its algorithm needs a gradient, and returns the loss at the current
(unperturbed) parameters -- so one training loop serves SGD, SAM and XSAM alike. A closure
that calls backward itself would add its gradient twice; it is refused
(``minisam.vector.loss_and_gradients``).

A step that raises changes nothing: if the closure fails half-way (or returns something that is
not the loss), the gradients, BatchNorm's running statistics and the random stream are put back as
they were, and a step refuses gradients that are not arrays of their parameter's shape before
it updates anything (NumPy would broadcast a gradient of shape (1,) over a whole weight).
"""

from __future__ import annotations

import numpy as np

from .. import backend, checks, nn, rng, vector
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


def buffers_like(params, buffers, who: str, name: str, nonnegative: bool = False) -> list:
    """A checkpoint's per-parameter arrays (``None`` for "not started yet"), checked against
    the parameters (shape, real and finite values that their dtype can hold, and >= 0 where
    ``nonnegative``: a mean of squares) and moved to their device and dtype."""
    if not isinstance(buffers, (list, tuple)) or len(buffers) != len(params):
        length = len(buffers) if isinstance(buffers, (list, tuple)) else "?"
        raise checks.ArgumentError(
            f"{who}.load_state_dict: {name} must be a list of {len(params)} entries (one per "
            f"parameter), got {type(buffers).__name__} of length {length}"
        )
    return [
        None if b is None else _state_array(f"{who}.load_state_dict: {name}[{i}]", b, p, nonnegative)
        for i, (b, p) in enumerate(zip(buffers, params, strict=True))
    ]


def _state_array(where: str, value, p, nonnegative: bool):
    """One per-parameter array of a checkpoint, checked, on ``p``'s device in ``p``'s dtype."""
    try:
        array = np.asarray(backend.to_host(value.data if isinstance(value, Tensor) else value))
    except (TypeError, ValueError):  # ragged lists and the like
        array = np.asarray(None)
    if array.dtype.kind not in "iuf":
        what = f"{type(value).__name__} of dtype {array.dtype}"
        raise checks.ArgumentError(f"{where} must be an array of real numbers, got {what}")
    if array.shape != p.shape:
        raise checks.ArgumentError(f"{where} has shape {array.shape}, its parameter has shape {p.shape}")
    with np.errstate(over="ignore"):  # an overflow is caught just below, by name
        converted = array.astype(p.dtype)
    if not np.isfinite(converted).all():
        raise checks.ArgumentError(
            f"{where} holds NaN or infinite values (or values too large for {p.dtype})"
        )
    if nonnegative and (converted < 0).any():
        raise checks.ArgumentError(f"{where} holds negative values; a running mean of squares is >= 0")
    return backend.to_device(converted)


def host_copies(buffers) -> list:
    return [None if b is None else backend.to_host(b).copy() for b in buffers]


class unchanged_on_error:
    """Context manager: if the block raises, put back what a failed step may have changed before
    it got to the update: every parameter's ``.grad``, BatchNorm's running statistics (and
    counters) and the random stream (a Dropout mask drawn in a forward pass that then failed).
    A class rather than a generator: it is entered on every step, and this is the cheaper one."""

    def __init__(self, params):
        self.params = params

    def __enter__(self):
        self.grads, self.stream = [p.grad for p in self.params], rng.saved()
        self.stats = nn.restore_batchnorm_stats_on_error()
        self.stats.__enter__()
        return self

    def __exit__(self, exc_type, *exc):
        self.stats.__exit__(exc_type, *exc)
        if exc_type is not None:
            for p, g in zip(self.params, self.grads, strict=True):
                p.grad = g
            rng.restore(self.stream)
        return False


def _on_the_graph(loss, who: str):
    """The closure's loss, refused by name if it cannot have a gradient (backward would say only
    that "this tensor" does not require one)."""
    if isinstance(loss, Tensor) and loss.size == 1 and not loss.requires_grad:
        raise RuntimeError(
            f"{who}: the loss the closure returned does not depend on the parameters (it does not "
            "require a gradient: computed from constants, or under no_grad), so there is nothing to step on"
        )
    return loss


class Optimizer:
    """What every optimizer has: the parameter list, a checked ``lr``, ``zero_grad``,
    ``step`` and a ``state_dict`` that a resumed run needs (one list, one lr: no groups)."""

    def __init__(self, params):
        who = type(self).__name__
        try:  # a single Tensor is iterable too (by rows), which is never what was meant
            self.params = None if isinstance(params, Tensor) else list(params)
        except TypeError:
            self.params = None
        if self.params is None:
            raise checks.ArgumentError(
                f"{who}: params must be an iterable of parameters such as model.parameters() or [p], "
                f"got {type(params).__name__}"
            )
        if not self.params:
            raise checks.ArgumentError(f"{who}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise checks.ArgumentError(
                    f"{who}: parameter {i} must be a Tensor with requires_grad=True, got {type(p).__name__}"
                )
            if p._parents:  # its .grad is never filled in: the step would silently do nothing
                raise checks.ArgumentError(
                    f"{who}: parameter {i} must be a leaf Tensor (an nn.Parameter, or made with "
                    "requires_grad=True), not the result of an operation"
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
        """One forward+backward pass; on an error nothing it touched stays changed."""
        who = f"{type(self).__name__}.step"
        if not callable(closure):
            raise checks.ArgumentError(
                f"{who}: closure must be a function that returns the loss, got {closure!r}"
            )
        with unchanged_on_error(self.params):
            loss, _ = vector.loss_and_gradients(lambda: _on_the_graph(closure(), who), self.params, who)
        return loss

    def _check_gradients(self) -> None:
        """Refuse, before anything changes, a gradient that is not a floating-point array of its
        parameter's shape (a list, a Tensor, integers, a shape NumPy would broadcast)."""
        for i, p in enumerate(self.params):
            g, data = p.grad, p.data
            if g is None or (type(g) is type(data) and g.shape == data.shape and g.dtype.kind == "f"):
                continue  # the common case, first: this runs on every step
            if not (isinstance(g, type(data)) and g.dtype.kind == "f" and g.shape == data.shape):
                what = f"{type(g).__name__}" + (
                    f" of dtype {g.dtype} and shape {g.shape}" if hasattr(g, "dtype") else ""
                )
                raise checks.ArgumentError(
                    f"{type(self).__name__}.step: parameter {i}'s grad must be a floating-point array of "
                    f"shape {p.shape} (the parameter's) on its device, got {what}"
                )

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
        self._check_gradients()
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
