"""The optimizer interface and plain stochastic gradient descent (the base of SAM and XSAM).

Every minisam optimizer takes the same step,

    loss = opt.step(closure)

where ``closure()`` runs the forward pass on the current batch and returns the loss
Tensor *without* calling backward. The optimizer zeroes the gradients, calls backward
itself as often as its algorithm needs a gradient, and returns the loss at the current
(unperturbed) parameters -- so one training loop serves SGD, SAM and XSAM alike.
"""

from __future__ import annotations

import numbers

from .. import backend
from ..tensor import Tensor, no_grad


def _check_number(name, value, minimum=0.0):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= minimum:
        raise ValueError(f"{name} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def closure_loss(closure, who: str) -> Tensor:
    """Call the closure and check that it returned a scalar loss Tensor."""
    loss = closure()
    if not isinstance(loss, Tensor) or loss.size != 1:
        what = f"shape {loss.shape}" if isinstance(loss, Tensor) else type(loss).__name__
        raise TypeError(
            f"{who}: the closure must return the scalar loss Tensor (without calling backward), got {what}"
        )
    return loss


def restore_keys(state: dict, expected, who: str) -> None:
    """Fail, naming the key, unless ``state`` holds exactly the ``expected`` keys."""
    if not isinstance(state, dict):
        raise TypeError(f"{who}.load_state_dict: expected a dict, got {type(state).__name__}")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise KeyError(f"{who}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")


class Optimizer:
    """What every optimizer has: the parameter list, ``zero_grad``, ``step``, and a
    ``state_dict`` that a resumed run needs (no parameter groups: one list, one lr)."""

    def __init__(self, params):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} must be a Tensor with "
                    f"requires_grad=True, got {type(p).__name__}"
                )
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{type(self).__name__}: a parameter appears more than once")

    def zero_grad(self) -> None:
        """Forget the gradients (set them to None, as PyTorch does by default)."""
        for p in self.params:
            p.grad = None

    def _loss_and_gradient(self, closure, who: str) -> Tensor:
        """Zero the gradients, run the closure, backpropagate; return the loss (detached,
        so the graph of this pass is freed before the next one is built)."""
        self.zero_grad()
        loss = closure_loss(closure, who)
        loss.backward()
        return loss.detach()

    def step(self, closure=None):
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, exactly PyTorch's ``torch.optim.SGD``:

        d = g + weight_decay·θ
        buf = d                                    (first step)
        buf = momentum·buf + (1 − dampening)·d     (later steps)
        d = d + momentum·buf  if nesterov  else  buf
        θ ← θ − lr·d

    ``step(closure)`` zeroes the gradients, evaluates the closure, backpropagates and
    steps; ``step()`` without a closure steps on the gradients already in ``p.grad``.
    Parameters whose gradient is None are left alone (their buffer too).
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params)
        self.lr = _check_number("SGD: lr", lr)
        self.momentum = _check_number("SGD: momentum", momentum)
        self.dampening = _check_number("SGD: dampening", dampening)
        self.weight_decay = _check_number("SGD: weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                "SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )
        self.momentum_buffers = [None] * len(self.params)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            loss = self._loss_and_gradient(closure, "SGD.step")
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
        state["momentum_buffers"] = [
            None if b is None else backend.to_host(b).copy() for b in self.momentum_buffers
        ]
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore hyper-parameters and momentum buffers; everything is checked first,
        so a bad state raises (naming what is wrong) and changes nothing."""
        restore_keys(state, self._HYPER + ("momentum_buffers",), "SGD")
        buffers = state["momentum_buffers"]
        if not isinstance(buffers, (list, tuple)) or len(buffers) != len(self.params):
            raise ValueError(
                f"SGD.load_state_dict: momentum_buffers must be a list of {len(self.params)} "
                f"entries (one per parameter), got {type(buffers).__name__} of length "
                f"{len(buffers) if isinstance(buffers, (list, tuple)) else '?'}"
            )
        for i, (b, p) in enumerate(zip(buffers, self.params, strict=True)):
            if b is not None and tuple(getattr(b, "shape", ())) != p.shape:
                raise ValueError(
                    f"SGD.load_state_dict: momentum_buffers[{i}] has shape "
                    f"{getattr(b, 'shape', None)}, parameter {i} has shape {p.shape}"
                )
        hyper = {name: _check_number(f"SGD: {name}", state[name]) for name in self._HYPER[:-1]}
        self.momentum_buffers = [
            None if b is None else backend.to_device(b, p.dtype).copy()
            for b, p in zip(buffers, self.params, strict=True)
        ]
        for name, value in hyper.items():
            setattr(self, name, value)
        self.nesterov = bool(state["nesterov"])
