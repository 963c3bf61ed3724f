"""Neural-network operations on Tensors, each with its backward pass beside it.

    import minisam.functional as F
    loss = F.cross_entropy(F.linear(x, w, b), labels)

Argument order, layouts and defaults follow PyTorch's ``torch.nn.functional``: images are
NCHW, a convolution weight is ``(out_channels, in_channels, kh, kw)``, a linear weight is
``(out_features, in_features)``. That way weights can be exchanged with PyTorch one to one
and the results compared number for number.

Most ops below are one node in the graph with a *fused* backward: rather than composing
``exp``, ``sum``, ``log``... (one node and one temporary array each), it computes the
whole gradient from a closed-form expression. That is both faster and what the papers
write down. The order of the file: activations, losses, linear and convolution, pooling,
normalisation, dropout.

Like every op in minisam, these take the array module from their data (``xp``), so the
same code runs on NumPy and CuPy. Convolution and pooling therefore avoid NumPy-only
tools (``np.add.at``, ``as_strided``): they loop over the few kernel offsets and move
whole strided slices at a time.
"""

from __future__ import annotations

import numpy as np

from . import backend, rng
from .backend import get_array_module
from .tensor import Tensor, _result

# ---- activations --------------------------------------------------------------------------
# relu, tanh and sigmoid live on the Tensor (x.relu(), with their backward in tensor.py);
# these are their functional spellings, as in torch.nn.functional.


def relu(x: Tensor) -> Tensor:
    """relu(x) = max(x, 0); d/dx = 1 where x > 0, else 0 (0 at the kink, as PyTorch)."""
    return x.relu()


def tanh(x: Tensor) -> Tensor:
    """tanh(x); d/dx = 1 - tanh(x)²."""
    return x.tanh()


def sigmoid(x: Tensor) -> Tensor:
    """σ(x) = 1 / (1 + e^-x); d/dx = σ(x)(1 - σ(x))."""
    return x.sigmoid()


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """softmax(x)_i = e^(x_i - m) / Σ_j e^(x_j - m), with m = max_j x_j.

    Subtracting the maximum changes nothing mathematically but keeps every exponent <= 0,
    so e^x cannot overflow. Backward (y = softmax(x), g = dL/dy):

        dL/dx = y ⊙ (g - Σ_j g_j y_j)
    """
    xp = get_array_module(x.data)
    exps = xp.exp(x.data - x.data.max(axis=axis, keepdims=True))
    y = exps / exps.sum(axis=axis, keepdims=True)

    def backward(g):
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)

    return _result(y, (x,), backward, "softmax")


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log_softmax(x)_i = x_i - m - log Σ_j e^(x_j - m), with m = max_j x_j.

    The log-sum-exp is taken after subtracting the maximum, so it stays finite for logits
    of any size (log(softmax(x)) would give log(0) = -inf). Backward (g = dL/dy):

        dL/dx = g - softmax(x) · Σ_j g_j
    """
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
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape (N, C), got shape {logits.shape}")
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
    hidden many bugs).
    """
    if not isinstance(target, Tensor):
        target = Tensor(target, dtype=pred.dtype)  # a constant, in pred's dtype
    if target.shape != pred.shape:
        raise ValueError(f"mse_loss: pred has shape {pred.shape} but target has shape {target.shape}")
    diff = pred.data - target.data
    loss = (diff * diff).mean()

    def backward(g):
        grad = diff * (2 * g / diff.size)
        return grad, -grad

    return _result(loss, (pred, target), backward, "mse_loss")


# ---- linear and convolution ---------------------------------------------------------------


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b, with W of shape (out_features, in_features), x of shape (..., in).

    Backward, with g = dL/dy and all leading axes of x flattened into rows:

        dL/dx = g W        dL/dW = gᵀ x        dL/db = Σ_rows g
    """
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


def _pair(value, what: str) -> tuple[int, int]:
    """An int or a pair of ints (stride, padding, kernel size) as a pair."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items
    ):
        raise TypeError(f"{what} must be an int or a pair of ints, got {value!r}")
    return int(items[0]), int(items[1])


def _window(array, i, j, stride, out_hw):
    """The strided slice of an NCHW ``array`` that kernel offset (i, j) touches: element
    [..., y, x] of it is array[..., i + y·sh, j + x·sw] for y < Ho, x < Wo."""
    (sh, sw), (out_h, out_w) = stride, out_hw
    return array[:, :, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw]


# Memory layout of the convolution. An (N, C, H, W) batch is stored in memory in the order
# (C, H, W, N) -- batch innermost -- while it still looks like NCHW from outside (it is a
# transposed view). Then every convolution is ONE large matmul, (O, C·kh·kw) @ (C·kh·kw,
# Ho·Wo·N), whose output is already in this layout, and im2col/col2im copy rows of N
# contiguous numbers. On the small CNN (batch 64, 1->16->32 channels, one BLAS thread) a
# training step measured 1.25x faster than plain NCHW with per-sample matmuls. Element-wise
# ops (ReLU, batch norm, pooling) keep their input's layout, so one conv's output is read
# cheaply by the next conv.


def _im2col(x, kernel, stride, padding, out_hw):
    """Unfold the (N, C, H, W) array ``x`` into columns of shape (C·kh·kw, Ho·Wo·N):
    column (y, x, n) holds the input patch that output pixel (y, x) of sample n sees."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (kh, kw), (ph, pw), (out_h, out_w) = kernel, padding, out_hw
    if ph or pw:  # zero-pad, allocating the padded copy in the working layout
        padded = xp.zeros((C, H + 2 * ph, W + 2 * pw, N), dtype=x.dtype).transpose(3, 0, 1, 2)
        padded[:, :, ph : ph + H, pw : pw + W] = x
    else:
        padded = x
    cols = xp.empty((C, kh, kw, out_h, out_w, N), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = _window(padded, i, j, stride, out_hw).transpose(1, 2, 3, 0)
    return cols.reshape(C * kh * kw, out_h * out_w * N)


def _col2im(cols, x_shape, kernel, stride, padding, out_hw):
    """The adjoint of _im2col: add every column entry back onto the input pixel it was
    copied from. Patches overlap, so one pixel collects from up to kh·kw offsets."""
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    (kh, kw), (ph, pw), (out_h, out_w) = kernel, padding, out_hw
    cols = cols.reshape(C, kh, kw, out_h, out_w, N)
    padded = xp.zeros((C, H + 2 * ph, W + 2 * pw, N), dtype=cols.dtype)
    padded_nchw = padded.transpose(3, 0, 1, 2)
    for i in range(kh):
        for j in range(kw):
            # one statement per offset, and within one offset no pixel repeats, so plain
            # += on a strided slice sums correctly (no np.add.at needed)
            _window(padded_nchw, i, j, stride, out_hw)[...] += cols[:, i, j].transpose(3, 0, 1, 2)
    return padded_nchw[:, :, ph : ph + H, pw : pw + W]


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation (what deep learning calls convolution), NCHW, as PyTorch:

        y[n, o, p, q] = b[o] + Σ_{c,i,j} W[o, c, i, j] · x_pad[n, c, p·sh + i, q·sw + j]

    x: (N, C, H, W); weight: (O, C, kh, kw); output (N, O, Ho, Wo) with
    Ho = (H + 2·ph - kh) // sh + 1. ``stride`` and ``padding`` are ints or (h, w) pairs.

    With im2col the sum becomes one matrix product, Y = W_mat @ cols, and its backward is
    the matmul rule: dL/dW_mat = G @ colsᵀ, dL/dcols = W_matᵀ @ G, and dL/dx is dL/dcols
    folded back onto the image by col2im (the adjoint of im2col).
    """
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(
            f"conv2d: expected input (N, C, H, W) and weight (O, C, kh, kw), "
            f"got shapes {x.shape} and {weight.shape}"
        )
    N, C, H, W = x.shape
    out_channels, in_channels, kh, kw = weight.shape
    if C != in_channels:
        raise ValueError(
            f"conv2d: input has {C} channels but the weight expects {in_channels} "
            f"(input shape {x.shape}, weight shape {weight.shape})"
        )
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"conv2d: bias must have shape ({out_channels},), got {bias.shape}")
    stride, padding = _pair(stride, "conv2d: stride"), _pair(padding, "conv2d: padding")
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"conv2d: need stride >= 1 and padding >= 0, got {stride}, {padding}")
    out_h = (H + 2 * padding[0] - kh) // stride[0] + 1
    out_w = (W + 2 * padding[1] - kw) // stride[1] + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"conv2d: kernel {(kh, kw)} is larger than the padded input "
            f"{(H + 2 * padding[0], W + 2 * padding[1])}"
        )
    geometry = ((kh, kw), stride, padding, (out_h, out_w))

    cols = _im2col(x.data, *geometry)
    w_mat = weight.data.reshape(out_channels, -1)
    y = w_mat @ cols  # (O, Ho·Wo·N): the output, batch innermost
    if bias is not None:
        y += bias.data[:, None]
    out = y.reshape(out_channels, out_h, out_w, N).transpose(3, 0, 1, 2)

    def backward(g):
        # g arrives in the working layout when it comes from ReLU/pooling/another conv, and
        # then this transpose + reshape is free; otherwise reshape makes one copy.
        g_mat = g.transpose(1, 2, 3, 0).reshape(out_channels, -1)
        gx = _col2im(w_mat.T @ g_mat, x.shape, *geometry) if x.requires_grad else None
        gw = (g_mat @ cols.T).reshape(weight.shape) if weight.requires_grad else None
        if bias is None:
            return gx, gw
        return gx, gw, (g_mat.sum(axis=1) if bias.requires_grad else None)

    parents = (x, weight) if bias is None else (x, weight, bias)
    return _result(out, parents, backward, "conv2d")


def _single(value, what: str) -> int:
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got {value!r}")
    return int(value)


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """1-D cross-correlation, as PyTorch: x (N, C, L), weight (O, C, k) -> (N, O, L_out),

        y[n, o, p] = b[o] + Σ_{c,i} W[o, c, i] · x_pad[n, c, p·s + i]

    It is a 2-D convolution of an image one pixel high, and is computed as exactly that.
    """
    if x.ndim != 3 or weight.ndim != 3:
        raise ValueError(
            f"conv1d: expected input (N, C, L) and weight (O, C, k), got shapes {x.shape} and {weight.shape}"
        )
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"conv1d: input has {x.shape[1]} channels but the weight expects {weight.shape[1]} "
            f"(input shape {x.shape}, weight shape {weight.shape})"
        )
    stride, padding = _single(stride, "conv1d: stride"), _single(padding, "conv1d: padding")
    if x.shape[2] + 2 * padding < weight.shape[2]:
        raise ValueError(
            f"conv1d: kernel size {weight.shape[2]} is larger than the padded input length "
            f"{x.shape[2] + 2 * padding}"
        )
    image = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
    kernel = weight.reshape(weight.shape[0], weight.shape[1], 1, weight.shape[2])
    out = conv2d(image, kernel, bias, stride=(1, stride), padding=(0, padding))
    return out.reshape(out.shape[0], out.shape[1], out.shape[3])


# ---- pooling ------------------------------------------------------------------------------


def _pool_geometry(op, x, kernel_size, stride):
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input (N, C, H, W), got shape {x.shape}")
    kernel = _pair(kernel_size, f"{op}: kernel_size")
    stride = kernel if stride is None else _pair(stride, f"{op}: stride")
    if min(kernel) < 1 or min(stride) < 1:
        raise ValueError(f"{op}: kernel_size and stride must be >= 1, got {kernel}, {stride}")
    H, W = x.shape[2:]
    if kernel[0] > H or kernel[1] > W:
        raise ValueError(f"{op}: kernel {kernel} is larger than the input {(H, W)}")
    out_hw = ((H - kernel[0]) // stride[0] + 1, (W - kernel[1]) // stride[1] + 1)
    offsets = [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]
    return offsets, stride, out_hw


def _like(reference, g):
    """``g`` with the memory layout of ``reference`` (a copy only if the layouts differ).

    Element-wise ops between arrays of different layouts are several times slower; the
    gradient reaching a pooling layer (e.g. from a flatten) is usually plain C order while
    the activations are in the convolution's layout."""
    if g.strides == reference.strides:
        return g
    aligned = get_array_module(g).empty_like(reference)
    aligned[...] = g
    return aligned


def max_pool2d(x: Tensor, kernel_size, stride=None) -> Tensor:
    """Max pooling, NCHW: y[n, c, p, q] = max_{i,j} x[n, c, p·sh + i, q·sw + j].

    ``stride`` defaults to ``kernel_size``. The maximum is built up by element-wise
    ``maximum`` over the kh·kw strided slices, one per kernel offset: for the common 2x2
    window that is three ``maximum`` calls over quarter-size arrays, some 20x faster in
    NumPy than a reduction over two size-2 axes. The gradient of each output goes to the
    first position in its window (row-major) that holds the maximum, as in PyTorch.
    """
    offsets, stride, out_hw = _pool_geometry("max_pool2d", x, kernel_size, stride)
    xp = get_array_module(x.data)
    out = None
    for i, j in offsets:
        window = _window(x.data, i, j, stride, out_hw)
        out = window.copy(order="K") if out is None else xp.maximum(out, window, out=out)

    def backward(g):
        g = _like(out, g)
        grad = xp.zeros_like(x.data)
        unclaimed = xp.ones_like(out, dtype=bool)  # outputs whose gradient is not yet placed
        for i, j in offsets:
            winner = (_window(x.data, i, j, stride, out_hw) == out) & unclaimed
            _window(grad, i, j, stride, out_hw)[...] += g * winner
            unclaimed ^= winner  # winner ⊆ unclaimed, so xor removes exactly the winners
        return (grad,)

    return _result(out, (x,), backward, "max_pool2d")


def max_pool1d(x: Tensor, kernel_size, stride=None) -> Tensor:
    """Max pooling over the last axis of (N, C, L): max_pool2d with a window one row high."""
    if x.ndim != 3:
        raise ValueError(f"max_pool1d: expected input (N, C, L), got shape {x.shape}")
    kernel = _single(kernel_size, "max_pool1d: kernel_size")
    stride = kernel if stride is None else _single(stride, "max_pool1d: stride")
    out = max_pool2d(x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]), (1, kernel), (1, stride))
    return out.reshape(out.shape[0], out.shape[1], out.shape[3])


def avg_pool2d(x: Tensor, kernel_size, stride=None) -> Tensor:
    """Average pooling, NCHW: y[n, c, p, q] = (1/(kh·kw)) Σ_{i,j} x[n, c, p·sh + i, q·sw + j].

    Backward: each output spreads g/(kh·kw) evenly over its window."""
    offsets, stride, out_hw = _pool_geometry("avg_pool2d", x, kernel_size, stride)
    xp = get_array_module(x.data)
    share = 1.0 / len(offsets)
    out = None
    for i, j in offsets:
        window = _window(x.data, i, j, stride, out_hw)
        out = window.copy(order="K") if out is None else xp.add(out, window, out=out)
    out *= share

    def backward(g):
        g_share = _like(out, g) * share
        grad = xp.zeros_like(x.data)
        for i, j in offsets:
            _window(grad, i, j, stride, out_hw)[...] += g_share
        return (grad,)

    return _result(out, (x,), backward, "avg_pool2d")


# ---- normalisation ------------------------------------------------------------------------


def _channel_vector(name, value, channels):
    """A per-channel array (running stats) as a raw array of shape (C,), or None."""
    if value is None:
        return None
    array = value.data if isinstance(value, Tensor) else value
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
    (``training=False``) μ and σ² are the running statistics.

    Backward in training, where μ and σ² depend on x too (g = dL/dy, means per channel):

        dL/dx = (γ / sqrt(σ² + eps)) · (g - mean(g) - x̂ · mean(g x̂))
    """
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
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    if not training or p == 0:
        return x
    xp = get_array_module(x.data)
    keep = rng.generator().random(x.shape) >= p  # on the host; a bool array, cheap to move
    scale = xp.asarray(0.0 if p == 1 else 1.0 / (1.0 - p), dtype=x.dtype)
    mask = xp.asarray(keep) * scale  # x's device and dtype, whatever the current backend

    def backward(g):
        return (g * mask,)

    return _result(x.data * mask, (x,), backward, "dropout")
