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

from . import backend, checks, rng
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


# ---- the ReLU switch the curvature measurement uses ------------------------------------
_relu_pattern = None  # the frozen_relu_pattern in force, or None


class frozen_relu_pattern:
    """Context manager: ReLU layers record which units they let through in the first pass;
    after ``pattern.replay()`` every later pass reuses that on/off pattern.

    A ReLU network is only piecewise smooth. If a finite-difference step ±εv moves some
    unit's pre-activation across zero, the gradient jumps by a finite amount, and the
    jump divided by 2ε swamps the curvature -- power iteration even seeks such kinks
    out (a trained MNIST-1D MLP gave λ_max = −297 where the smooth piece has 3.4).
    Holding the pattern fixed measures the curvature of the smooth piece θ lies on: the
    Hessian autograd would give (ReLU'' = 0). ``sharpness.hessian_vector_product`` uses
    it. Only ``nn.ReLU`` layers take part (not ``F.relu``); max-pooling's choice is not held.
    """

    def __init__(self):
        self.masks, self.position, self.recording = [], 0, True

    def __enter__(self):
        global _relu_pattern
        self._previous, _relu_pattern = _relu_pattern, self
        return self

    def __exit__(self, *exc):
        global _relu_pattern
        _relu_pattern = self._previous

    def replay(self) -> None:
        """From the next pass on, hand out the recorded masks again, in order."""
        self.position, self.recording = 0, False

    def mask(self, x):
        """The on/off mask for this ReLU call: x > 0 while recording, the recorded one after."""
        if self.recording:
            self.masks.append(x.data > 0)
            return self.masks[-1]
        if self.position >= len(self.masks) or self.masks[self.position].shape != x.shape:
            raise RuntimeError("frozen_relu_pattern: this pass has other ReLU layers than the first")
        self.position += 1
        return self.masks[self.position - 1]


# ---- undoing a failed optimizer step -----------------------------------------------
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
    try:
        host = rng.generator().uniform(-bound, bound, size=shape).astype(get_default_dtype())
    except (MemoryError, ValueError) as err:  # NumPy's "array is too big" does not say which
        raise MemoryError(f"cannot allocate a parameter of shape {shape}: {err}") from None
    return Parameter(backend.to_device(host))


class _Journal:
    """What the layers of one forward pass changed in place, so that a pass which raises
    half-way (a later layer refusing the input) can be undone and leave no trace:
    BatchNorm's running statistics and counter, and the random stream Dropout draws from."""

    def __init__(self):
        self.arrays, self.rng_state = [], None

    def keep(self, *arrays):
        self.arrays.extend((a, a.copy()) for a in arrays)

    def keep_rng(self):
        if self.rng_state is None:
            self.rng_state = rng.generator().bit_generator.state

    def undo(self):
        for array, saved in reversed(self.arrays):
            array[...] = saved
        if self.rng_state is not None:
            rng.generator().bit_generator.state = self.rng_state


_journal: _Journal | None = None  # open while the outermost module call runs


def _raw_input(value) -> str | None:
    """What ``value`` is, in words, if it is raw data (an array or a list) rather than a Tensor."""
    if isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy"):
        return f"a {type(value).__module__.split('.')[0]}.ndarray of shape {value.shape}"
    if isinstance(value, (list, tuple)) and not any(isinstance(v, Tensor) for v in value):
        return f"a {type(value).__name__}"
    if isinstance(value, np.generic):
        return f"a NumPy scalar ({type(value).__name__})"
    return None


class Module:
    """Base class of layers and models. Subclasses assign Parameters, Modules and (via
    ``register_buffer``) buffers in ``__init__`` and define ``forward``."""

    # Built-in layers take exactly one Tensor; __call__ refuses anything else for them.
    _takes_one_tensor = False

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
        backend array, e.g. BatchNorm's running mean), updated in place, so an array it must be."""
        who = f"{type(self).__name__}.register_buffer"
        if not isinstance(name, str) or not name or "." in name:
            raise checks.ArgumentError(f"{who}: name must be a non-empty string without '.', got {name!r}")
        if not (isinstance(array, np.ndarray) or type(array).__module__.startswith("cupy")):
            raise checks.ArgumentError(
                f"{who}: the buffer {name!r} must be a NumPy or CuPy array, got {type(array).__name__}"
            )
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        # Raw arrays are refused here, at the door, rather than deep inside an op as an
        # AttributeError about ``.data``: the fix (wrap it in a Tensor) is the user's to make.
        for position, value in enumerate(args):
            if isinstance(value, Tensor):
                continue
            raw = _raw_input(value)
            if raw is None and self._takes_one_tensor:
                raw = f"a {type(value).__name__}"
            if raw is not None:
                which = "input" if len(args) == 1 else f"input {position}"
                raise TypeError(
                    f"{self._short_name()}: {which} must be an ms.Tensor, got {raw}; "
                    "wrap it: model(ms.Tensor(x))"
                )
        if self._takes_one_tensor and (len(args) != 1 or kwargs):
            raise TypeError(
                f"{self._short_name()}: takes one input Tensor, got {len(args)} "
                f"positional and {len(kwargs)} keyword arguments"
            )
        global _journal
        if _journal is not None:  # called from inside another module: the outermost call keeps it
            return self.forward(*args, **kwargs)
        _journal = journal = _Journal()
        try:
            return self.forward(*args, **kwargs)
        except BaseException:
            journal.undo()  # a refused pass changes nothing
            raise
        finally:
            _journal = None

    def _short_name(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

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
        mode = checks.flag(f"{type(self).__name__}.train", "mode", mode)
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # ---- saving and loading ------------------------------------------------------------
    def _state_entries(self):
        """(dotted name, owning module, local name, array) in PyTorch's state_dict order:
        each module's parameters, then its buffers, then its children."""
        for prefix, module in self.named_modules():
            for table in (module._parameters, module._buffers):
                for name, value in table.items():
                    array = value.data if isinstance(value, Tensor) else value
                    yield (f"{prefix}.{name}" if prefix else name), module, name, array

    def state_dict(self) -> dict:
        """Every parameter and buffer as a host NumPy copy, keyed by dotted name."""
        return {name: np.array(backend.to_host(a), copy=True) for name, _, _, a in self._state_entries()}

    def load_state_dict(self, state: dict) -> None:
        """Copy ``state`` into the parameters and buffers, in place.

        Strict and atomic: every key must be present, no key may be extra, every value
        must have the shape of its target and hold real numbers its dtype can take: no
        2.7 → 2 for a counter, no complex → real, no NaN or infinity, nothing that
        overflows (float64 values are rounded to a float32 model, as PyTorch does). Each
        layer's own rules hold too (a running variance is never negative). All of it is
        checked before anything is changed, and the error names the offending key.
        """
        if not isinstance(state, dict):
            raise checks.ArgumentError(
                f"load_state_dict: state must be a dict of arrays (from state_dict()), "
                f"got {type(state).__name__}"
            )
        entries = list(self._state_entries())
        names = {name for name, *_ in entries}
        missing = [name for name, *_ in entries if name not in state]
        unexpected = [k for k in state if k not in names]
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        converted = {}
        for name, module, local, target in entries:
            value = _lossless(name, state[name], target)
            problem = module._state_problem(local, value)
            if problem:
                raise checks.ArgumentError(f"load_state_dict: {name!r} {problem}")
            converted[name] = backend.to_device(value)
        for name, _, _, target in entries:  # everything checked: now change
            target[...] = converted[name]

    def _state_problem(self, name: str, value: np.ndarray) -> str | None:
        """A layer's own rule for a state entry (e.g. variances are >= 0): what is wrong, or None."""
        return None

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"

    def extra_repr(self) -> str:
        return ""


def _lossless(name, value, target) -> np.ndarray:
    """``value`` as a host array of ``target``'s shape and dtype, or an checks.ArgumentError naming
    ``name``: a checkpoint that cannot be read exactly must not be read at all."""
    want = np.dtype(target.dtype)
    where = f"load_state_dict: {name!r}"
    if isinstance(value, Tensor):
        value = value.data
    try:
        array = np.asarray(backend.to_host(value))
    except Exception as err:  # anything NumPy cannot even hold as an array
        raise checks.ArgumentError(f"{where} is not an array ({type(value).__name__}: {err})") from None
    if array.dtype.kind not in "iuf":
        raise checks.ArgumentError(
            f"{where} must hold real numbers for the model's {want} {_noun(want)}, got "
            f"{_describe(value, array)}"
        )
    if array.shape != tuple(target.shape):
        raise checks.ArgumentError(
            f"{where} has shape {array.shape} in the state, "
            f"but the model's {name!r} has shape {tuple(target.shape)}"
        )
    if want.kind == "f":
        if not np.isfinite(array).all():
            raise checks.ArgumentError(f"{where} holds NaN or infinite values; model values must be finite")
        with np.errstate(over="ignore"):  # an overflow is caught just below, by name
            converted = array.astype(want)
        if not np.isfinite(converted).all():
            raise checks.ArgumentError(f"{where} holds values too large for {want} (they would become inf)")
        return converted
    if array.dtype.kind == "f":  # an integer target (a counter)
        example = f" such as {array.flat[0]!r}" if array.size else ""
        raise checks.ArgumentError(
            f"{where} must hold integers for the model's {want} counter, got {array.dtype}{example}"
        )
    limits = np.iinfo(want)
    if array.size and (array.min() < limits.min or array.max() > limits.max):
        raise checks.ArgumentError(f"{where} holds integers outside the range of {want}")
    return array.astype(want)


def _noun(dtype) -> str:
    return "values" if dtype.kind == "f" else "counter"


def _describe(value, array) -> str:
    if array.dtype.kind == "O":
        return f"Python objects ({type(value).__name__} of dtype object)"
    return f"dtype {array.dtype}"


# ---- layers ----------------------------------------------------------------------------
def _ints(who, name, value, dims, minimum):
    """An int, or ``dims`` ints, each >= ``minimum``, as a tuple of length ``dims``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
    if len(items) != dims:
        raise checks.ArgumentError(f"{who}: {name} must be an integer or {dims} integers, got {value!r}")
    return tuple(checks.count(who, name, v, minimum) for v in items)


class Linear(Module):
    """y = x Wᵀ + b, with W of shape (out_features, in_features)."""

    _takes_one_tensor = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = checks.count("Linear", "in_features", in_features, 1)
        self.out_features = checks.count("Linear", "out_features", out_features, 1)
        bias = checks.flag("Linear", "bias", bias)
        bound = 1 / math.sqrt(self.in_features)
        self.weight = _uniform((self.out_features, self.in_features), bound)
        self.bias = _uniform((self.out_features,), bound) if bias else None

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


class _ConvNd(Module):
    dims = 0
    _takes_one_tensor = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        who = type(self).__name__
        self.in_channels = checks.count(who, "in_channels", in_channels, 1)
        self.out_channels = checks.count(who, "out_channels", out_channels, 1)
        self.kernel_size = _ints(who, "kernel_size", kernel_size, self.dims, 1)
        stride = _ints(who, "stride", stride, self.dims, 1)
        padding = _ints(who, "padding", padding, self.dims, 0)
        bias = checks.flag(who, "bias", bias)
        # F.conv1d takes plain ints, F.conv2d ints or pairs
        self.stride, self.padding = (stride[0], padding[0]) if self.dims == 1 else (stride, padding)
        fan_in = self.in_channels * math.prod(self.kernel_size)
        bound = 1 / math.sqrt(fan_in)
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
    """Max pooling over (N, C, H, W); ``stride`` defaults to ``kernel_size``."""

    _takes_one_tensor = True

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _ints("MaxPool2d", "kernel_size", kernel_size, 2, 1)
        self.stride = None if stride is None else _ints("MaxPool2d", "stride", stride, 2, 1)

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
    _takes_one_tensor = True

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        who = type(self).__name__
        self.num_features = checks.count(who, "num_features", num_features, 1)
        self.eps = checks.number(who, "eps", eps, 0.0, above=True)
        self.momentum = checks.number(who, "momentum", momentum, 0.0, 1.0)
        affine = checks.flag(who, "affine", affine)
        xp, dtype = backend.xp, get_default_dtype()
        self.weight = Parameter(xp.ones(self.num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(xp.zeros(self.num_features, dtype=dtype)) if affine else None
        self.register_buffer("running_mean", xp.zeros(self.num_features, dtype=dtype))
        self.register_buffer("running_var", xp.ones(self.num_features, dtype=dtype))
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
            if _journal is not None:  # lets a failed forward pass put them back
                _journal.keep(self.running_mean, self.running_var, self.num_batches_tracked)
        out = F.batch_norm(
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
        if update:  # counted only once the batch was accepted; in place: the buffer stays the same array
            self.num_batches_tracked += 1
        return out

    def _state_problem(self, name, value):
        if name == "running_var" and value.size and value.min() < 0:
            return f"holds a negative variance ({value.min()!r}); a running variance is >= 0"
        if name == "num_batches_tracked" and value.size and value.min() < 0:
            return f"holds a negative count ({value.min()!r}); it counts batches, so it is >= 0"
        return None

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

    _takes_one_tensor = True

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = checks.probability("Dropout", "p", p)

    def forward(self, x):
        if self.training and self.p > 0 and _journal is not None:
            _journal.keep_rng()
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(Module):
    """relu(x) = max(x, 0)."""

    _takes_one_tensor = True

    def forward(self, x):
        if _relu_pattern is not None:  # inside frozen_relu_pattern(): a fixed on/off mask
            return x * _relu_pattern.mask(x)
        return F.relu(x)


class LeakyReLU(Module):
    """leaky_relu(x) = x for x > 0, negative_slope·x otherwise (PyTorch's default slope 0.01)."""

    _takes_one_tensor = True

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = checks.number("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """tanh(x)."""

    _takes_one_tensor = True

    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e^−x)."""

    _takes_one_tensor = True

    def forward(self, x):
        return F.sigmoid(x)


class Flatten(Module):
    """Merge dimensions start_dim … end_dim (by default all but the batch dimension)."""

    _takes_one_tensor = True

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = checks.count("Flatten", "start_dim", start_dim, None)
        self.end_dim = checks.count("Flatten", "end_dim", end_dim, None)

    def forward(self, x):
        # dimensions count from the end when negative, as in Python indexing; out of
        # range is an error, never a silent wrap-around
        start, end = self.start_dim, self.end_dim
        start += x.ndim if start < 0 else 0
        end += x.ndim if end < 0 else 0
        if not 0 <= start <= end < x.ndim:
            raise ValueError(
                f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}): needs "
                f"start_dim <= end_dim, both within the {x.ndim} dimensions of the input "
                f"(shape {x.shape})"
            )
        shape = x.shape[:start] + (math.prod(x.shape[start : end + 1]),) + x.shape[end + 1 :]
        return x.reshape(shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Sequential(Module):
    """Modules applied one after another; they are named "0", "1", ... as in PyTorch."""

    _takes_one_tensor = True

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise checks.ArgumentError(f"Sequential: item {i} is a {type(m).__name__}, not a Module")
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
