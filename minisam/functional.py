"""Neural-network operations on Tensors, each with its backward pass beside it.

    import minisam.functional as F
    loss = F.cross_entropy(F.linear(x, w, b), labels)

Argument order, layouts and defaults follow PyTorch's ``torch.nn.functional``: images are
NCHW, a linear weight is ``(out_features, in_features)``, so weights can be exchanged
with PyTorch one to one and the results compared number for number. Convolution and
pooling live in ``minisam/convolution.py`` (im2col) and are re-exported here, so
``F.conv2d`` and ``F.max_pool2d`` work as in PyTorch.

Most ops below are one node in the graph with a *fused* backward: rather than composing
``exp``, ``sum``, ``log``... (one node and one temporary array each), it computes the
whole gradient from a closed-form expression. That is both faster and what the papers
write down. Like every op in minisam, they take the array module from their data
(``xp``), so the same code runs on NumPy and CuPy.
"""

from __future__ import annotations

from . import backend, checks, rng
from .backend import get_array_module
from .convolution import avg_pool2d, conv1d, conv2d, max_pool1d, max_pool2d
from .tensor import Tensor, _result, _torch_names, get_default_dtype
from .tensor_data import operand, tensors_only

__all__ = [
    "relu", "leaky_relu", "tanh", "sigmoid", "softmax", "log_softmax", "cross_entropy", "mse_loss",
    "linear", "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool2d", "batch_norm", "dropout",
]  # fmt: skip


def _last_axis_unless(op, axis, dim) -> int:
    """The axis a softmax runs over: ``axis`` (or PyTorch's ``dim``), by default the last."""
    axis, _ = _torch_names(op, axis, False, dim, None)
    return -1 if axis is None else axis


# ---- activations --------------------------------------------------------------------------
# relu and tanh live on the Tensor (x.relu(), with their backward in tensor.py); these are
# their functional spellings, as in torch.nn.functional.


def relu(x: Tensor) -> Tensor:
    """relu(x) = max(x, 0); d/dx = 1 where x > 0, else 0 (0 at the kink, as PyTorch)."""
    tensors_only("relu", x=x)
    return x.relu()


def tanh(x: Tensor) -> Tensor:
    """tanh(x); d/dx = 1 - tanh(x)²."""
    tensors_only("tanh", x=x)
    return x.tanh()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """leaky_relu(x) = x where x > 0, else negative_slope·x; d/dx = 1 or negative_slope
    (negative_slope at the kink, as PyTorch)."""
    tensors_only("leaky_relu", x=x)
    slope = checks.number("leaky_relu", "negative_slope", negative_slope)
    passes = x.data > 0
    xp = get_array_module(x.data)

    def backward(g):
        return (xp.where(passes, g, slope * g),)

    return _result(xp.where(passes, x.data, slope * x.data), (x,), backward, "leaky_relu")


def sigmoid(x: Tensor) -> Tensor:
    """σ(x) = 1 / (1 + e^-x); d/dx = σ(x)(1 - σ(x)).

    With e = e^-|x| (never overflows): σ(x) = 1/(1 + e) for x ≥ 0 and e/(1 + e) for x < 0,
    the same function, accurate to the last bit at both ends (σ(−40) ≈ 4.2e-18, not 0).
    Integer or boolean input gives the default floating dtype (σ(0) = 0.5, not 0)."""
    tensors_only("sigmoid", x=x)
    xp = get_array_module(x.data)
    e = xp.exp(-xp.abs(x.data))
    dtype = x.dtype if x.dtype.kind == "f" else get_default_dtype()
    out = xp.where(x.data >= 0, 1 / (1 + e), e / (1 + e)).astype(dtype, copy=False)

    def backward(g):
        return (g * out * (1 - out),)

    return _result(out, (x,), backward, "sigmoid")


def softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """softmax(x)_i = e^(x_i - m) / Σ_j e^(x_j - m), with m = max_j x_j, over ``axis``
    (the last by default; PyTorch's name ``dim=`` is accepted too).

    Subtracting the maximum changes nothing mathematically but keeps every exponent <= 0,
    so e^x cannot overflow. Backward (y = softmax(x), g = dL/dy):

        dL/dx = y ⊙ (g - Σ_j g_j y_j)
    """
    tensors_only("softmax", x=x)
    axis = _last_axis_unless("softmax", axis, dim)
    xp = get_array_module(x.data)
    exps = xp.exp(x.data - x.data.max(axis=axis, keepdims=True))
    y = exps / exps.sum(axis=axis, keepdims=True)

    def backward(g):
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)

    return _result(y, (x,), backward, "softmax")


def log_softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """log_softmax(x)_i = x_i - m - log Σ_j e^(x_j - m), with m = max_j x_j, over ``axis``
    (the last by default; PyTorch's name ``dim=`` is accepted too).

    The log-sum-exp is taken after subtracting the maximum, so it stays finite for logits
    of any size (log(softmax(x)) would give log(0) = -inf). Backward (g = dL/dy):

        dL/dx = g - softmax(x) · Σ_j g_j
    """
    tensors_only("log_softmax", x=x)
    axis = _last_axis_unless("log_softmax", axis, dim)
    xp = get_array_module(x.data)
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g):
        return (g - xp.exp(y) * g.sum(axis=axis, keepdims=True),)

    return _result(y, (x,), backward, "log_softmax")


# ---- losses -------------------------------------------------------------------------------


def _class_labels(targets, logits: Tensor):
    """Validate integer class labels for ``logits`` of shape (N, C); return them on its device.

    The checks run on a host copy: CuPy would silently wrap an out-of-range index around
    instead of failing, and the loss would be quietly wrong.
    """
    labels = targets.data if isinstance(targets, Tensor) else targets
    host = backend.to_host(labels)
    batch, classes = logits.shape
    if host.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: targets must be integer class labels in 0..{classes - 1}, "
            f"got dtype {host.dtype} (convert with .astype(np.int64) if they are whole numbers)"
        )
    if host.ndim != 1:
        raise ValueError(f"cross_entropy: targets must have shape (N,), got shape {host.shape}")
    if host.shape[0] != batch:
        raise ValueError(
            f"cross_entropy: batch sizes differ: logits have {batch} rows, "
            f"targets have {host.shape[0]} labels"
        )
    bad = host[(host < 0) | (host >= classes)]
    if bad.size:
        raise ValueError(
            f"cross_entropy: label {bad[0]} is out of range for {classes} classes "
            f"(labels must be in 0..{classes - 1})"
        )
    return get_array_module(logits.data).asarray(labels)


def cross_entropy(logits: Tensor, targets) -> Tensor:
    """Mean negative log-likelihood of integer class labels under softmax(logits).

        L = -(1/N) Σ_n log softmax(z_n)_{t_n}
          = (1/N) Σ_n [ log Σ_c e^(z_nc - m_n) - (z_{n,t_n} - m_n) ]

    ``logits`` has shape (N, C); ``targets`` (an integer array or Tensor of shape (N,))
    holds class indices. Fused with log-softmax, the gradient is simply

        dL/dz_n = (softmax(z_n) - onehot(t_n)) / N
    """
    tensors_only("cross_entropy", logits=logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape (N, C), got shape {logits.shape}")
    if logits.shape[0] == 0:
        raise ValueError(
            f"cross_entropy: the batch is empty (logits of shape {logits.shape}); "
            "the mean loss over no examples is not a number"
        )
    labels = _class_labels(targets, logits)
    xp = get_array_module(logits.data)
    batch = logits.shape[0]
    rows = xp.arange(batch)

    shifted = logits.data - logits.data.max(axis=1, keepdims=True)
    exps = xp.exp(shifted)
    sum_exps = exps.sum(axis=1, keepdims=True)
    log_likelihood = shifted[rows, labels] - xp.log(sum_exps[:, 0])
    loss = -log_likelihood.mean()

    def backward(g):
        grad = exps / sum_exps  # softmax probabilities
        grad[rows, labels] -= 1  # each row of rows is distinct, so plain indexing is safe
        grad *= g / batch
        return (grad,)

    return _result(loss, (logits,), backward, "cross_entropy")


def mse_loss(pred: Tensor, target) -> Tensor:
    """Mean squared error, L = (1/n) Σ (pred - target)²; dL/dpred = 2 (pred - target) / n.

    ``target`` may be a Tensor (it then receives the opposite gradient) or an array; it
    must have the shape of ``pred`` (PyTorch only warns about broadcasting here, which has
    hidden many bugs), and they may not be empty (the mean of no values is not a number).
    """
    tensors_only("mse_loss", pred=pred)
    if not isinstance(target, Tensor):  # a constant, in pred's dtype
        target = Tensor._leaf(operand("mse_loss", "target", pred.data, target))
    if target.shape != pred.shape:
        raise ValueError(f"mse_loss: pred has shape {pred.shape} but target has shape {target.shape}")
    if pred.size == 0:
        raise ValueError(
            f"mse_loss: pred and target are empty (shape {pred.shape}); their mean is not a number"
        )
    diff = pred.data - target.data
    loss = (diff * diff).mean()

    def backward(g):
        grad = diff * (2 * g / diff.size)
        return grad, -grad

    return _result(loss, (pred, target), backward, "mse_loss")


# ---- linear -------------------------------------------------------------------------------


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b, with W of shape (out_features, in_features), x of shape (..., in).

    Backward, with g = dL/dy and all leading axes of x flattened into rows:

        dL/dx = g W        dL/dW = gᵀ x        dL/db = Σ_rows g

    Integer or boolean input (raw pixel values, one-hot features) is computed in the
    weight's dtype, so a float32 layer gives float32 output whatever it is fed.
    """
    tensors_only("linear", x=x, weight=weight, bias=bias)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must have shape (out, in), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match weight of shape {weight.shape}: "
            f"the input's last dimension must be in_features = {weight.shape[1]}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"linear: bias must have shape ({weight.shape[0]},) for weight of shape "
            f"{weight.shape}, got {bias.shape}"
        )
    if x.dtype.kind != "f":
        x = Tensor(x.data, dtype=weight.dtype)
    # W.T is a transposed view, not a copy: BLAS reads it directly with a 'transpose' flag.
    out = x.data @ weight.data.T
    if bias is not None:
        out += bias.data  # in place: no second output-sized array

    def backward(g):
        g_rows = g.reshape(-1, g.shape[-1])
        gx = g @ weight.data if x.requires_grad else None
        gw = g_rows.T @ x.data.reshape(-1, x.shape[-1]) if weight.requires_grad else None
        if bias is None:
            return gx, gw
        return gx, gw, (g_rows.sum(axis=0) if bias.requires_grad else None)

    parents = (x, weight) if bias is None else (x, weight, bias)
    return _result(out, parents, backward, "linear")


# ---- normalisation ------------------------------------------------------------------------


def _channel_vector(name, value, channels):
    """A per-channel array (running stats) as a raw array of shape (C,), or None. It is updated in
    place, so it must already be a floating-point array (a list or an integer array could not be)."""
    if value is None:
        return None
    array = value.data if isinstance(value, Tensor) else value
    if getattr(getattr(array, "dtype", None), "kind", None) != "f" or not hasattr(array, "shape"):
        raise checks.ArgumentError(
            f"batch_norm: {name} must be a floating-point array of shape ({channels},) or None, got "
            f"{type(array).__name__}" + (f" of dtype {array.dtype}" if hasattr(array, "dtype") else "")
        )
    if array.shape != (channels,):
        raise ValueError(f"batch_norm: {name} must have shape ({channels},), got {array.shape}")
    return array


def batch_norm(
    x: Tensor,
    running_mean,
    running_var,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
    update_stats: bool = True,
) -> Tensor:
    """Batch normalisation over every axis but the channel axis 1 (Ioffe & Szegedy, 2015):

        x̂ = (x - μ) / sqrt(σ² + eps),      y = γ x̂ + β

    for x of shape (N, C), (N, C, L) or (N, C, H, W). In training, μ and σ² are the mean
    and *biased* variance of the batch, per channel, and the running statistics (raw
    arrays of shape (C,), or None) are updated in place as PyTorch does, with the
    *unbiased* variance (m values per channel):

        running_mean ← (1 - momentum) running_mean + momentum μ
        running_var  ← (1 - momentum) running_var  + momentum σ² m/(m - 1)

    ``update_stats=False`` normalises by the batch but leaves the running statistics
    alone: SAM's ascent and probe passes must not count as extra batches. In eval mode
    (``training=False``) μ and σ² are the running statistics. Integer or boolean input is
    normalised in the running statistics' dtype (else the weight's, else the default).

    Backward in training, where μ and σ² depend on x too (g = dL/dy, means per channel):

        dL/dx = (γ / sqrt(σ² + eps)) · (g - mean(g) - x̂ · mean(g x̂))
    """
    tensors_only("batch_norm", x=x, weight=weight, bias=bias)
    momentum = checks.number("batch_norm", "momentum", momentum, 0.0, 1.0)
    eps = checks.number("batch_norm", "eps", eps, 0.0, above=True)
    training = checks.flag("batch_norm", "training", training)
    update_stats = checks.flag("batch_norm", "update_stats", update_stats)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"batch_norm: expected input (N, C), (N, C, L) or (N, C, H, W), got {x.shape}")
    channels = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))  # every axis but the channel axis
    per_channel = (1, channels) + (1,) * (x.ndim - 2)  # a (C,) vector, broadcastable against x
    count = x.data.size // channels  # values per channel
    running_mean = _channel_vector("running_mean", running_mean, channels)
    running_var = _channel_vector("running_var", running_var, channels)
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and param.shape != (channels,):
            raise ValueError(f"batch_norm: {name} must have shape ({channels},), got {param.shape}")
    if x.dtype.kind != "f":  # integer pixels: normalised as floats, never the statistics as integers
        like = running_mean if running_mean is not None else weight
        x = Tensor(x.data, dtype=get_default_dtype() if like is None else like.dtype)
    xp = get_array_module(x.data)

    if training:
        if count < 2:
            raise ValueError(
                f"batch_norm: training needs more than one value per channel to estimate a "
                f"variance, got input shape {x.shape}"
            )
        mean = x.data.mean(axis=axes, keepdims=True)
        centered = x.data - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        if update_stats and running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean.reshape(channels)
        if update_stats and running_var is not None:
            running_var *= 1 - momentum
            running_var += (momentum * count / (count - 1)) * var.reshape(channels)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: eval mode (training=False) needs running_mean and running_var")
        # the running stats may be kept in another precision; normalise in x's own dtype
        centered = x.data - running_mean.astype(x.dtype, copy=False).reshape(per_channel)
        var = running_var.astype(x.dtype, copy=False).reshape(per_channel)
    inv_std = 1 / xp.sqrt(var + eps)
    normalized = centered * inv_std
    out = normalized
    if weight is not None:
        out = out * weight.data.reshape(per_channel)
    if bias is not None:
        out = out + bias.data.reshape(per_channel)

    def backward(g):
        grads = [None]
        if x.requires_grad:
            g_hat = g if weight is None else g * weight.data.reshape(per_channel)
            if training:
                mean_g = g_hat.mean(axis=axes, keepdims=True)
                mean_g_hat = (g_hat * normalized).mean(axis=axes, keepdims=True)
                grads[0] = inv_std * (g_hat - mean_g - normalized * mean_g_hat)
            else:  # μ and σ² are constants here
                grads[0] = g_hat * inv_std
        if weight is not None:
            grads.append((g * normalized).sum(axis=axes) if weight.requires_grad else None)
        if bias is not None:
            grads.append(g.sum(axis=axes) if bias.requires_grad else None)
        return tuple(grads)

    parents = (x,) + tuple(p for p in (weight, bias) if p is not None)
    return _result(out, parents, backward, "batch_norm")


# ---- dropout ------------------------------------------------------------------------------


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: y = x ⊙ m / (1 - p), with m_i ~ Bernoulli(1 - p); dL/dx = g ⊙ m / (1 - p).

    Scaling the kept units by 1/(1 - p) keeps E[y] = x, so evaluation (``training=False``,
    or p = 0) is simply the identity. The mask is drawn on the host from minisam's
    generator and then moved to x's device, so a seed gives the same mask on CPU and GPU.
    Integer or boolean input is dropped in the default floating dtype (1/(1 − p) is no integer).
    """
    tensors_only("dropout", x=x)
    p = checks.probability("dropout", "p", p, allow_one=True)
    if not checks.flag("dropout", "training", training) or p == 0:
        return x
    if x.dtype.kind != "f":
        x = Tensor(x.data, dtype=get_default_dtype())
    xp = get_array_module(x.data)
    keep = rng.generator().random(x.shape) >= p  # on the host; a bool array, cheap to move
    scale = xp.asarray(0.0 if p == 1 else 1.0 / (1.0 - p), dtype=x.dtype)
    mask = xp.asarray(keep) * scale  # x's device and dtype, whatever the current backend

    def backward(g):
        return (g * mask,)

    return _result(x.data * mask, (x,), backward, "dropout")
