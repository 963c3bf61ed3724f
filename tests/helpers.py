"""Test helpers shared by test_sam.py, test_xsam.py and test_optim.py: a base optimizer that
records what it is handed, a quadratic with a known gradient, a hand-written Adam, and the
step-for-step comparison with the NumPy reference of tests/reference_sam.py."""

import numpy as np
import pytest
from reference_sam import SGDReference, TanhMLP

import minisam as ms
import minisam.functional as F
from minisam import models, nn, optim


class GradientRecorder(optim.SGD):
    """A base optimizer that keeps a copy of every gradient it is handed, then steps."""

    def __init__(self, params, lr=0.0, **kwargs):
        super().__init__(params, lr=lr, **kwargs)
        self.received = []

    def step(self, closure=None):
        self.received.append([None if p.grad is None else p.grad.copy() for p in self.params])
        return super().step(closure)


def quadratic(n=5, seed=0):
    """L(θ) = ½ θᵀHθ with H symmetric positive definite; returns (θ, H, closure)."""
    r = np.random.default_rng(seed)
    a = r.standard_normal((n, n))
    h = a @ a.T + n * np.eye(n)
    theta = nn.Parameter(r.standard_normal(n))
    h_tensor = ms.Tensor(h)
    return theta, h, lambda: 0.5 * (theta * (h_tensor @ theta)).sum()


def flat(params):
    """All parameters as one host vector."""
    return np.concatenate([p.numpy().ravel() for p in params])


def hand_adam(
    theta, gradients, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False, amsgrad=False
):
    """Adam / AdamW written out from the equations (minisam/optim/ALGORITHMS.md, section
    "Adam and AdamW"), for one parameter over a list of gradients: the path of θ."""
    theta = np.array(theta, dtype=float)
    m, v, v_max, path = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta), []
    for t, g in enumerate(gradients, start=1):
        if decoupled:
            theta = theta - lr * weight_decay * theta
        else:
            g = g + weight_decay * theta
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        v_max = np.maximum(v_max, v)
        v_hat = (v_max if amsgrad else v) / (1 - betas[1] ** t)
        theta = theta - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(v_hat) + eps)
        path.append(theta)
    return path


SIZES = [6, 8, 8, 3]
BATCH = 16


def batches():
    r = np.random.default_rng(7)
    return [(r.standard_normal((BATCH, SIZES[0])), r.integers(0, SIZES[-1], BATCH)) for _ in range(3)]


def compare_with_reference(make_optimizer, reference_gradient, n_steps=6, batch_size=None):
    """Run minisam and the NumPy reference from identical weights, SGD(lr 0.1, momentum
    0.9, weight decay 5e-4) as the base, and compare the parameters after every step.

    ``reference_gradient(grad_at, loss_at, θ)`` gets ``grad_at(θ, part=slice(None))``.
    With ``batch_size`` the step is ``opt.step(closure, batch_size=...)`` and the closure
    takes a slice of the batch (m-sharpness)."""
    ms.manual_seed(0)
    model = models.MLP(SIZES, activation="tanh")
    params = list(model.parameters())
    theta = flat(params)
    net, sgd = TanhMLP(SIZES), SGDReference(lr=0.1, momentum=0.9, weight_decay=5e-4)
    opt = make_optimizer(optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4))
    for step, (x, y) in enumerate(batches() * (n_steps // 3)):
        inputs = ms.Tensor(x)

        def closure(part=slice(None), inputs=inputs, y=y):
            return F.cross_entropy(model(inputs[part]), y[part])

        loss = opt.step(closure) if batch_size is None else opt.step(closure, batch_size=batch_size)
        assert loss.item() == pytest.approx(net.loss(theta, x, y), rel=1e-12, abs=1e-12)
        grad = reference_gradient(
            lambda t, part=slice(None), x=x, y=y: net.loss_and_grad(t, x[part], y[part])[1],
            lambda t, x=x, y=y: net.loss(t, x, y),
            theta,
        )
        theta = sgd.update(theta, grad)
        error = np.max(np.abs(flat(params) - theta))
        assert error <= 1e-7, f"step {step}: parameters differ from the reference by {error:.3g}"


def assert_same_state(a, b, where="state"):
    """Two (nested) state dicts are equal, arrays bit for bit."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {list(a)} vs {list(b)}"
        for key in a:
            assert_same_state(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), f"{where}: arrays differ"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"
