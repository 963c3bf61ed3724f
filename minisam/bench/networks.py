"""The networks the bench times: by hand in NumPy, in minisam, and in PyTorch.

- ``NumpyMLP`` and ``NumpyCNN`` write every gradient out by hand (no graph, no autograd):
  the floor for any NumPy autograd engine, since they make the same BLAS calls.
- ``MLP_LAYERS``, ``CNN_LAYERS``, ``CNN1D_LAYERS`` describe one network as a list of
  layers, which ``minisam_net`` builds with ``minisam.nn`` and ``torch_twin`` with
  ``torch.nn`` (same class names, same state_dict keys), weights copied across.
- ``minisam_step`` and ``torch_step`` turn a model into a training-step function.
"""

from __future__ import annotations

import numpy as np


def batch(shape, classes=10, seed=0):
    """A float32 input batch of ``shape`` and integer labels, from a fixed seed."""
    gen = np.random.default_rng(seed)
    return gen.standard_normal(shape).astype(np.float32), gen.integers(0, classes, shape[0])


def torch_or_none():
    """PyTorch if it is installed (its rows are skipped otherwise)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _cross_entropy_and_gradient(logits, y):
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(total[:, 0]) - shifted[np.arange(len(y)), y]))
    grad = exp / total
    grad[np.arange(len(y)), y] -= 1
    return loss, grad / len(y)


def _uniform_init(rng, fan_in, shape):
    bound = 1 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


class NumpyMLP:
    """784-256-256-10 ReLU MLP, softmax cross-entropy, plain SGD; every gradient by hand."""

    def __init__(self, sizes, lr=0.01, seed=0):
        rng = np.random.default_rng(seed)
        self.layers = [
            (_uniform_init(rng, i, (o, i)), _uniform_init(rng, i, (o,)))
            for i, o in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        self.lr = lr

    def step(self, x, y):
        activations, pre = [x], []
        for n, (w, b) in enumerate(self.layers):
            z = activations[-1] @ w.T + b
            pre.append(z)
            activations.append(np.maximum(z, 0) if n < len(self.layers) - 1 else z)
        logits = activations[-1]
        loss, grad = _cross_entropy_and_gradient(logits, y)
        for n in reversed(range(len(self.layers))):
            w, b = self.layers[n]
            if n < len(self.layers) - 1:
                grad = grad * (pre[n] > 0)
            grad_w, grad_b = grad.T @ activations[n], grad.sum(axis=0)
            if n > 0:
                grad = grad @ w
            w -= self.lr * grad_w
            b -= self.lr * grad_b
        return loss


def _im2col(x, k, pad):
    """(N, C, H, W) -> (N·H·W, C·k·k) for a k x k, stride-1 convolution with padding."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    cols = np.empty((n, oh, ow, c, k, k), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, :, i, j] = padded[:, :, i : i + oh, j : j + ow].transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, c * k * k)


def _col2im(cols, shape, k, pad):
    n, c, h, w = shape
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    cols = cols.reshape(n, oh, ow, c, k, k)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            padded[:, :, i : i + oh, j : j + ow] += cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return padded[:, :, pad : pad + h, pad : pad + w]


def _pool2x2(x):
    corners = (x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2])
    return np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))


def _pool2x2_backward(x, out, grad):
    dx = np.zeros_like(x)
    taken = np.zeros(out.shape, dtype=bool)
    for di in (0, 1):
        for dj in (0, 1):
            wins = (x[:, :, di::2, dj::2] == out) & ~taken  # the first maximum takes the gradient
            dx[:, :, di::2, dj::2] = grad * wins
            taken |= wins
    return dx


class NumpyCNN:
    """Conv 1→16→32 (3x3, pad 1) + ReLU + 2x2 max-pool each, Linear 32·7·7→10, SGD."""

    def __init__(self, channels=(1, 16, 32), image=28, classes=10, lr=0.01, seed=0):
        rng = np.random.default_rng(seed)
        self.convs = [
            (_uniform_init(rng, ci * 9, (co, ci, 3, 3)), _uniform_init(rng, ci * 9, (co,)))
            for ci, co in zip(channels[:-1], channels[1:], strict=True)
        ]
        features = channels[-1] * (image // 4) ** 2
        self.fc = (
            _uniform_init(rng, features, (classes, features)),
            _uniform_init(rng, features, (classes,)),
        )
        self.lr = lr

    def step(self, x, y):
        saved, h = [], x
        for w, b in self.convs:
            n, _, hh, ww = h.shape
            cols = _im2col(h, 3, 1)
            z = (cols @ w.reshape(len(w), -1).T + b).reshape(n, hh, ww, -1).transpose(0, 3, 1, 2)
            a = np.maximum(z, 0)
            pooled = _pool2x2(a)
            saved.append((h.shape, cols, z, a, pooled))
            h = pooled
        flat = h.reshape(len(h), -1)
        w_fc, b_fc = self.fc
        logits = flat @ w_fc.T + b_fc
        loss, grad = _cross_entropy_and_gradient(logits, y)
        grads_fc = (grad.T @ flat, grad.sum(axis=0))
        grad = (grad @ w_fc).reshape(h.shape)
        conv_grads = []
        for n in reversed(range(len(self.convs))):
            (w, _), (in_shape, cols, z, a, pooled) = self.convs[n], saved[n]
            grad = _pool2x2_backward(a, pooled, grad) * (z > 0)
            g2 = grad.transpose(0, 2, 3, 1).reshape(-1, len(w))
            conv_grads.append((g2.T @ cols, g2.sum(axis=0)))
            if n > 0:  # the input image needs no gradient
                grad = _col2im(g2 @ w.reshape(len(w), -1), in_shape, 3, 1)
        for (w, b), (gw, gb) in zip(reversed(self.convs), conv_grads, strict=True):
            w -= self.lr * gw.reshape(w.shape)
            b -= self.lr * gb
        self.fc[0][...] -= self.lr * grads_fc[0]
        self.fc[1][...] -= self.lr * grads_fc[1]
        return loss


# ---------------------------------------------------------------------------------------
# The same network in minisam and in PyTorch, from one description
# ---------------------------------------------------------------------------------------

MLP_LAYERS = [("linear", 784, 256), ("relu",), ("linear", 256, 256), ("relu",), ("linear", 256, 10)]
CNN_LAYERS = [
    ("conv2d", 1, 16),
    ("relu",),
    ("maxpool2d",),
    ("conv2d", 16, 32),
    ("relu",),
    ("maxpool2d",),
    ("flatten",),
    ("linear", 32 * 7 * 7, 10),
]
# A 1-D CNN for MNIST-1D signals (1 x 40): two 5-tap convolutions, then a linear classifier.
CNN1D_LAYERS = [
    ("conv1d", 1, 32),
    ("relu",),
    ("conv1d", 32, 32),
    ("relu",),
    ("flatten",),
    ("linear", 32 * 40, 10),
]


def _build(layers, nn_module):
    """Build ``layers`` with either ``minisam.nn`` or ``torch.nn`` (same class names)."""
    made = []
    for kind, *sizes in layers:
        if kind == "linear":
            made.append(nn_module.Linear(*sizes))
        elif kind == "conv2d":
            made.append(nn_module.Conv2d(*sizes, kernel_size=3, padding=1))
        elif kind == "conv1d":
            made.append(nn_module.Conv1d(*sizes, kernel_size=5, padding=2))
        elif kind == "maxpool2d":
            made.append(nn_module.MaxPool2d(2))
        elif kind == "relu":
            made.append(nn_module.ReLU())
        elif kind == "flatten":
            made.append(nn_module.Flatten())
    return nn_module.Sequential(*made)


def minisam_net(layers):
    from minisam import nn

    return _build(layers, nn)


def torch_twin(model, layers):
    """A PyTorch copy of a minisam model, weights included (state_dict names match)."""
    torch = torch_or_none()
    twin = _build(layers, torch.nn)
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return twin


def minisam_step(model, optimizer_name="sgd", lr=0.01, **kwargs):
    """A closure-style training step of ``model`` with SGD, SAM or XSAM."""
    import minisam as ms
    import minisam.functional as F
    from minisam import optim

    base = optim.SGD(model.parameters(), lr=lr)
    opt = {
        "sgd": lambda: base,
        "sam": lambda: optim.SAM(base, **kwargs),
        "xsam": lambda: optim.XSAM(base, **kwargs),
    }[optimizer_name]()

    def step(x, y):
        inputs, targets = ms.Tensor(x), ms.Tensor(y)
        return opt.step(lambda: F.cross_entropy(model(inputs), targets)).item()

    return step


def torch_step(model, lr=0.01):
    torch = torch_or_none()
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step(x, y):
        inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        opt.step()
        return loss.item()

    return step
