"""Convolution and pooling on NCHW Tensors, by im2col: a convolution becomes one matmul.

    import minisam.functional as F          # conv1d, conv2d and the pools are re-exported there
    y = F.conv2d(x, weight, bias, stride=1, padding=1)

Layouts and argument meanings are PyTorch's: input (N, C, H, W), weight
(out_channels, in_channels, kh, kw), ``stride``/``padding`` an int or an (h, w) pair.

im2col copies every input patch a kernel sees into one column, so the sum over channels
and kernel offsets is a single matrix product; its backward is the matmul rule, and the
input gradient is folded back onto the image by col2im, im2col's adjoint. Both loop over
the kh·kw kernel offsets and move whole strided slices at a time (chainer's way), so the
same code runs on NumPy and CuPy without NumPy-only tools (``np.add.at``, ``as_strided``).
Pooling reuses the same strided slices: a 2x2 max-pool is three element-wise maximums.
"""

from __future__ import annotations

import numpy as np

from .backend import get_array_module
from .tensor import Tensor, _result, get_default_dtype
from .tensor_data import tensors_only


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


# ---- the memory layout: batch innermost -------------------------------------------------
# A speed trick, kept because it measured 1.25x faster per training step on the small CNN
# (batch 64, 1->16->32 channels, one BLAS thread) than plain NCHW with per-sample matmuls.
# Arrays keep looking NCHW from outside, but an activation is *stored* in the order
# (C, H, W, N): batch innermost. Then a whole convolution is ONE large matmul,
# (O, C·kh·kw) @ (C·kh·kw, Ho·Wo·N), whose output is already stored that way, and im2col
# and col2im copy rows of N contiguous numbers. The two helpers below are the only places
# that know about it: ``_batch_last`` views an NCHW array as (C, H, W, N) -- free for an
# array stored this way -- and ``_batch_first`` views a (C, H, W, N) array as NCHW.
# Element-wise ops (ReLU, batch norm) keep their input's layout, so one conv's output
# reaches the next conv still batch-innermost; pooling copies an incoming gradient into
# its activation's layout first (``_like``), since mixing layouts is several times slower.
def _batch_last(x):
    """The (C, H, W, N) view of an NCHW array."""
    return x.transpose(1, 2, 3, 0)


def _batch_first(x):
    """The NCHW view of a (C, H, W, N) array."""
    return x.transpose(3, 0, 1, 2)


def _im2col(x, kernel, stride, padding, out_hw):
    """Unfold the (N, C, H, W) array ``x`` into columns of shape (C·kh·kw, Ho·Wo·N):
    column (y, x, n) holds the input patch that output pixel (y, x) of sample n sees."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (kh, kw), (ph, pw), (out_h, out_w) = kernel, padding, out_hw
    if ph or pw:  # zero-pad, allocating the padded copy in the working layout
        padded = _batch_first(xp.zeros((C, H + 2 * ph, W + 2 * pw, N), dtype=x.dtype))
        padded[:, :, ph : ph + H, pw : pw + W] = x
    else:
        padded = x
    cols = xp.empty((C, kh, kw, out_h, out_w, N), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = _batch_last(_window(padded, i, j, stride, out_hw))
    return cols.reshape(C * kh * kw, out_h * out_w * N)


def _col2im(cols, x_shape, kernel, stride, padding, out_hw):
    """The adjoint of _im2col: add every column entry back onto the input pixel it was
    copied from. Patches overlap, so one pixel collects from up to kh·kw offsets."""
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    (kh, kw), (ph, pw), (out_h, out_w) = kernel, padding, out_hw
    cols = cols.reshape(C, kh, kw, out_h, out_w, N)
    padded_nchw = _batch_first(xp.zeros((C, H + 2 * ph, W + 2 * pw, N), dtype=cols.dtype))
    for i in range(kh):
        for j in range(kw):
            # one statement per offset, and within one offset no pixel repeats, so plain
            # += on a strided slice sums correctly (no np.add.at needed)
            _window(padded_nchw, i, j, stride, out_hw)[...] += _batch_first(cols[:, i, j])
    return padded_nchw[:, :, ph : ph + H, pw : pw + W]


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation (what deep learning calls convolution), NCHW, as PyTorch:

        y[n, o, p, q] = b[o] + Σ_{c,i,j} W[o, c, i, j] · x_pad[n, c, p·sh + i, q·sw + j]

    x: (N, C, H, W); weight: (O, C, kh, kw); output (N, O, Ho, Wo) with
    Ho = (H + 2·ph - kh) // sh + 1. ``stride`` and ``padding`` are ints or (h, w) pairs. There is
    no ``dilation``: a PyTorch call that passes one is refused by Python, by name.

    With im2col the sum becomes one matrix product, Y = W_mat @ cols, and its backward is
    the matmul rule: dL/dW_mat = G @ colsᵀ, dL/dcols = W_matᵀ @ G, and dL/dx is dL/dcols
    folded back onto the image by col2im (the adjoint of im2col).
    """
    tensors_only("conv2d", x=x, weight=weight, bias=bias)
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
    if x.dtype.kind != "f":  # integer pixels are computed in the weight's dtype, as in linear
        x = Tensor(x.data, dtype=weight.dtype)
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
    out = _batch_first(y.reshape(out_channels, out_h, out_w, N))

    def backward(g):
        # g arrives in the working layout when it comes from ReLU/pooling/another conv, and
        # then this transpose + reshape is free; otherwise reshape makes one copy.
        g_mat = _batch_last(g).reshape(out_channels, -1)
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
    tensors_only("conv1d", x=x, weight=weight, bias=bias)
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
    if stride < 1 or padding < 0:  # checked here, so the error names conv1d, not conv2d
        raise ValueError(f"conv1d: need stride >= 1 and padding >= 0, got stride={stride}, padding={padding}")
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
    tensors_only(op, x=x)
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
    tensors_only("max_pool1d", x=x)
    if x.ndim != 3:
        raise ValueError(f"max_pool1d: expected input (N, C, L), got shape {x.shape}")
    kernel = _single(kernel_size, "max_pool1d: kernel_size")
    stride = kernel if stride is None else _single(stride, "max_pool1d: stride")
    if kernel < 1 or stride < 1 or kernel > x.shape[2]:  # checked here, so the error names max_pool1d
        raise ValueError(
            f"max_pool1d: need 1 <= kernel_size <= the input length {x.shape[2]} and stride >= 1, "
            f"got kernel_size={kernel}, stride={stride}"
        )
    out = max_pool2d(x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]), (1, kernel), (1, stride))
    return out.reshape(out.shape[0], out.shape[1], out.shape[3])


def avg_pool2d(x: Tensor, kernel_size, stride=None) -> Tensor:
    """Average pooling, NCHW: y[n, c, p, q] = (1/(kh·kw)) Σ_{i,j} x[n, c, p·sh + i, q·sw + j].

    Backward: each output spreads g/(kh·kw) evenly over its window. Integer or boolean input
    is averaged in the default floating dtype (the mean of 1 and 2 is 1.5)."""
    offsets, stride, out_hw = _pool_geometry("avg_pool2d", x, kernel_size, stride)
    if x.dtype.kind != "f":
        x = Tensor(x.data, dtype=get_default_dtype())
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
