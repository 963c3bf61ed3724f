"""An independent, plain-NumPy implementation of the published equations
(minisam/optim/ALGORITHMS.md).

Nothing here imports minisam: a tanh MLP with softmax cross-entropy and a hand-written
backward pass, all parameters in one flat float64 vector θ, and the optimizers written
directly from the papers' equations on that vector. The tests compare minisam's
optimizers with these step for step.
"""

from __future__ import annotations

import numpy as np

EPS0 = 1e-12


class TanhMLP:
    """Linear → tanh → … → Linear, parameters flattened in PyTorch's order (W₁, b₁, W₂, …)."""

    def __init__(self, sizes):
        self.shapes = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            self.shapes += [(n_out, n_in), (n_out,)]

    def unflatten(self, theta):
        arrays, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            arrays.append(theta[start : start + size].reshape(shape))
            start += size
        return arrays

    def loss_and_grad(self, theta, x, y):
        arrays = self.unflatten(theta)
        weights, biases = arrays[0::2], arrays[1::2]
        hidden = [x]
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            z = hidden[-1] @ w.T + b
            hidden.append(z if i == len(weights) - 1 else np.tanh(z))
        logits = hidden.pop()
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = len(y)
        loss = -log_probs[np.arange(n), y].mean()

        dz = np.exp(log_probs)
        dz[np.arange(n), y] -= 1
        dz /= n
        grads = [None] * len(arrays)
        for i in reversed(range(len(weights))):
            h = hidden[i]
            grads[2 * i] = dz.T @ h
            grads[2 * i + 1] = dz.sum(axis=0)
            if i > 0:
                dz = (dz @ weights[i]) * (1 - h * h)
        return loss, np.concatenate([g.ravel() for g in grads])

    def loss(self, theta, x, y):
        return self.loss_and_grad(theta, x, y)[0]


class SGDReference:
    """torch.optim.SGD: d = g + wd·θ; buf = d, then μ·buf + (1−τ)·d; nesterov d + μ·buf."""

    def __init__(self, lr, momentum=0.0, weight_decay=0.0, dampening=0.0, nesterov=False):
        self.lr, self.momentum, self.wd = lr, momentum, weight_decay
        self.dampening, self.nesterov, self.buf = dampening, nesterov, None

    def update(self, theta, grad):
        d = grad + self.wd * theta
        if self.momentum:
            if self.buf is None:
                self.buf = d.copy()
            else:
                self.buf = self.momentum * self.buf + (1 - self.dampening) * d
            d = d + self.momentum * self.buf if self.nesterov else self.buf
        return theta - self.lr * d


def ascent(grad_at, theta, rho, k, adaptive=False, eta=0.01):
    """k normalised ascent steps: returns ϑ_k."""
    point = theta.copy()
    for _ in range(k):
        g = grad_at(point)
        if adaptive:
            t = np.abs(point) + eta
            point = point + (rho / k) * t * t * g / (np.linalg.norm(t * g) + EPS0)
        else:
            point = point + (rho / k) * g / (np.linalg.norm(g) + EPS0)
    return point


def sam_gradient(grad_at, theta, rho, k=1, adaptive=False, eta=0.01):
    """The gradient SAM hands to its base optimizer: g_k = ∇L(ϑ_k)."""
    return grad_at(ascent(grad_at, theta, rho, k, adaptive, eta))


def m_sharpness_gradient(grad_at, theta, rho, parts, k=1, adaptive=False, eta=0.01):
    """m-sharpness: each micro-batch (a slice of the batch) climbs from θ on its own loss;
    the base optimizer gets the mean of their gradients at their own ascent points."""
    each = [
        sam_gradient(lambda t, part=part: grad_at(t, part), theta, rho, k, adaptive, eta) for part in parts
    ]
    return np.mean(each, axis=0)


class XSAMReference:
    def __init__(self, rho, rho_max=None, alpha=1.0, alpha_max=2.0, alpha_step=0.1, k=1, search_every=100):
        self.rho, self.rho_max = rho, 2 * rho if rho_max is None else rho_max
        self.alpha, self.k, self.search_every = alpha, k, search_every
        self.grid = np.arange(round(alpha_max / alpha_step) + 1) * alpha_step
        self.count = 0

    def gradient(self, grad_at, loss_at, theta):
        point = ascent(grad_at, theta, self.rho, self.k)
        gk = grad_at(point)
        v0 = (point - theta) / (np.linalg.norm(point - theta) + EPS0)
        v1 = gk / (np.linalg.norm(gk) + EPS0)
        psi = np.arccos(np.clip(v0 @ v1, -1, 1))

        def v(alpha):
            if np.sin(psi) < 1e-8:
                return v1
            return (np.sin((1 - alpha) * psi) * v0 + np.sin(alpha * psi) * v1) / np.sin(psi)

        if self.search_every and self.count % self.search_every == 0:
            losses = [loss_at(theta + self.rho_max * v(a)) for a in self.grid]
            self.alpha = self.grid[int(np.argmax(losses))]  # argmax: first of equal maxima
        self.count += 1
        return np.linalg.norm(gk) * v(self.alpha)
