"""Modules: layers that own their parameters, composed into models.

A ``Module`` registers every ``Parameter``, sub-module and buffer assigned to it, in the
order of assignment, so ``parameters()`` and ``state_dict()`` list them exactly as
PyTorch does ("0.weight", "0.bias", "1.running_mean", ...), weight before bias. Weights
therefore exchange with an equivalent PyTorch model one to one.

    from minisam import nn
    model = nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 10))
    logits = model(ms.Tensor(x))

Initialisation follows PyTorch's defaults: the weight and bias of ``Linear`` and
``ConvNd`` are uniform in ±1/√fan_in (what ``kaiming_uniform_(a=√5)`` amounts to), drawn
from minisam's one host generator and then moved to the backend, so a seed gives the
same model on NumPy and CuPy.

BatchNorm and the SAM family: a SAM step evaluates the same batch several times, at θ
and at perturbed points. Only the first pass, at θ, may update the running statistics
(minisam/optim/ALGORITHMS.md, section "BatchNorm during SAM-family steps"). The
optimizers wrap every later pass in ``frozen_batchnorm_stats()``; inside it BatchNorm
layers still normalise with the batch's own statistics (train mode) but leave
``running_mean``, ``running_var`` and ``num_batches_tracked`` alone. And a step that
fails must change nothing: the optimizers run each step inside
``restore_batchnorm_stats_on_error()``, which puts back the running statistics of every
layer that the step had already updated when the error came.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from . import backend, rng
from . import functional as F
from .tensor import Tensor, get_default_dtype

# ---- the BatchNorm switch the SAM family uses ------------------------------------------
_batchnorm_stats_frozen = False


class frozen_batchnorm_stats:
    """Context manager: BatchNorm layers do not update their running statistics inside
    it (they still use batch statistics in train mode). Used by SAM and XSAM around the
    ascent, perturbed and probe passes; nests, and restores the previous setting."""

    def __enter__(self):
        global _batchnorm_stats_frozen
        self._previous, _batchnorm_stats_frozen = _batchnorm_stats_frozen, True
        return self

    def __exit__(self, *exc):
        global _batchnorm_stats_frozen
        _batchnorm_stats_frozen = self._previous


def batchnorm_stats_frozen() -> bool:
    return _batchnorm_stats_frozen


_open_rollbacks = []  # the saved statistics of each open restore_batchnorm_stats_on_error block


class restore_batchnorm_stats_on_error:
    """Context manager: if the block raises, every BatchNorm layer that updated its running
    statistics inside the block gets them back exactly as they were when it first did (in
    place, so the arrays stay the same objects). Without an error nothing is undone. Nests."""

    def __enter__(self):
        self.saved = {}  # id(layer) -> (layer, running_mean, running_var, num_batches_tracked)
        _open_rollbacks.append(self.saved)
        return self

    def __exit__(self, exc_type, *exc):
        _open_rollbacks.pop()  # blocks nest, so the last one opened is this one
        if exc_type is not None:
            for layer, *before in self.saved.values():
                for now, then in zip(_batchnorm_stats(layer), before, strict=True):
                    now[...] = then
        return False


def _batchnorm_stats(layer) -> tuple:
    return layer.running_mean, layer.running_var, layer.num_batches_tracked


def _before_batchnorm_update(layer) -> None:
    """Called by a BatchNorm layer just before it updates its running statistics."""
    for saved in _open_rollbacks:
        if id(layer) not in saved:
            saved[id(layer)] = (layer, *(a.copy() for a in _batchnorm_stats(layer)))


# ---- Parameter and Module --------------------------------------------------------------
class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable parameter (requires_grad=True)."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor") :]


def _uniform(shape, bound):
    """U(−bound, bound) drawn on the host from minisam's generator, moved to the backend."""
    host = rng.generator().uniform(-bound, bound, size=shape).astype(get_default_dtype())
    return Parameter(backend.to_device(host))


class Module:
    """Base class of layers and models. Subclasses assign Parameters, Modules and (via
    ``register_buffer``) buffers in ``__init__`` and define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            self._buffers[name] = value
            return
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self.__dict__.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):  # only reached when normal lookup fails
        for registry in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(registry)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def register_buffer(self, name: str, array) -> None:
        """A piece of state that is saved in ``state_dict`` but not trained (a raw
        backend array, e.g. BatchNorm's running mean)."""
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- walking the tree --------------------------------------------------------------
    def named_modules(self, prefix=""):
        """(name, module) for this module and every descendant, parents first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self):
        """(dotted name, Parameter) in registration order, weight before bias."""
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name, b in module._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), b

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def train(self, mode: bool = True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # ---- saving and loading ------------------------------------------------------------
    def _state_items(self):
        """(name, array) in PyTorch's state_dict order: each module's parameters, then
        its buffers, then its children."""
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), p.data
            for name, b in module._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), b

    def state_dict(self) -> dict:
        """Every parameter and buffer as a host NumPy copy, keyed by dotted name."""
        return {name: np.array(backend.to_host(a), copy=True) for name, a in self._state_items()}

    def load_state_dict(self, state: dict) -> None:
        """Copy ``state`` into the parameters and buffers, in place.

        Strict and atomic: every key must be present, no key may be extra, and every
        shape must match; all of it is checked before anything is changed, and the error
        names the offending key."""
        if not isinstance(state, dict):
            raise TypeError(f"load_state_dict: expected a dict, got {type(state).__name__}")
        targets = dict(self._state_items())
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        converted = {}
        for name, target in targets.items():
            value = state[name]
            shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
            if shape != target.shape:
                raise ValueError(
                    f"load_state_dict: {name!r} has shape {shape} in the state, "
                    f"but the model's {name!r} has shape {target.shape}"
                )
            try:
                converted[name] = backend.to_device(value, target.dtype)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"load_state_dict: {name!r} cannot be read as {target.dtype}: {err}"
                ) from None
        for name, target in targets.items():  # everything checked: now change
            target[...] = converted[name]

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"

    def extra_repr(self) -> str:
        return ""


# ---- layers ----------------------------------------------------------------------------
class Linear(Module):
    """y = x Wᵀ + b, with W of shape (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = _uniform((out_features, in_features), bound)
        self.bias = _uniform((out_features,), bound) if bias else None

    def forward(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}): expected inputs with "
                f"{self.in_features} features in the last dimension, got shape {x.shape} "
                f"({x.shape[-1] if x.ndim else 0} features)"
            )
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


def _pair(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * n


class _ConvNd(Module):
    dims = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, self.dims)
        self.stride, self.padding = stride, padding
        fan_in = self.in_channels * math.prod(self.kernel_size)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.weight = _uniform((self.out_channels, self.in_channels, *self.kernel_size), bound)
        self.bias = _uniform((self.out_channels,), bound) if bias else None

    def _check(self, x):
        if x.ndim != self.dims + 2 or x.shape[1] != self.in_channels:
            layout = "(N, C, L)" if self.dims == 1 else "(N, C, H, W)"
            raise ValueError(
                f"{type(self).__name__}({self.in_channels}, {self.out_channels}): expected "
                f"input {layout} with C = {self.in_channels}, got shape {x.shape}"
            )

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L); weight (out_channels, in_channels, k)."""

    dims = 1

    def forward(self, x):
        self._check(x)
        return F.conv1d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W); weight (out_channels, in_channels, kh, kw)."""

    dims = 2

    def forward(self, x):
        self._check(x)
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class _BatchNorm(Module):
    """Batch normalisation with PyTorch's semantics: in train mode normalise with the
    batch's mean and (biased) variance and update the running estimates,

        running_mean ← (1 − momentum)·running_mean + momentum·mean
        running_var  ← (1 − momentum)·running_var  + momentum·var·n/(n − 1)   (unbiased)

    in eval mode normalise with the running estimates. Inside
    ``frozen_batchnorm_stats()`` train mode leaves the running estimates alone."""

    expected_ndim: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        xp, dtype = backend.xp, get_default_dtype()
        self.weight = Parameter(xp.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(xp.zeros(num_features, dtype=dtype)) if affine else None
        self.register_buffer("running_mean", xp.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", xp.ones(num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", xp.zeros((), dtype=np.int64))

    def forward(self, x):
        if x.ndim not in self.expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}): expected input with "
                f"{' or '.join(map(str, self.expected_ndim))} dimensions and "
                f"{self.num_features} channels in dimension 1, got shape {x.shape}"
            )
        update = self.training and not _batchnorm_stats_frozen
        if update:
            _before_batchnorm_update(self)  # lets a failed optimizer step put the statistics back
            self.num_batches_tracked += 1  # in place: the buffer stays the same array
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
            update_stats=update,
        )

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L)."""

    expected_ndim = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W), per channel."""

    expected_ndim = (4,)


class Dropout(Module):
    """Zero each element with probability p in train mode and scale the rest by 1/(1 − p)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Flatten(Module):
    """Merge dimensions start_dim … end_dim (by default all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        shape = x.shape[:start] + (math.prod(x.shape[start : end + 1]),) + x.shape[end + 1 :]
        return x.reshape(shape)


class Sequential(Module):
    """Modules applied one after another; they are named "0", "1", ... as in PyTorch."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {i} is a {type(m).__name__}, not a Module")
            self._modules[str(i)] = m

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
