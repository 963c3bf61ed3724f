"""SAM, multi-step SAM and ASAM: each rule of ALGORITHMS.md, named in a test."""

import math

import numpy as np
import pytest
from reference_sam import SGDReference, TanhMLP, sam_gradient

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


def test_sam_on_quadratic_gives_H_times_theta_plus_rho_H_theta_over_norm(float64):
    theta, h, closure = quadratic()
    start = theta.numpy()
    base = GradientRecorder([theta])
    rho = 0.3
    optim.SAM(base, rho=rho).step(closure)
    g0 = h @ start
    expected = h @ (start + rho * g0 / np.linalg.norm(g0))
    np.testing.assert_allclose(base.received[0][0], expected, rtol=1e-13, atol=1e-13)


def test_sam_returns_the_loss_at_theta_and_restores_theta_exactly_before_the_base_step(float64):
    theta, h, closure = quadratic()
    start = theta.numpy()
    seen_by_base = []

    class Spy(optim.SGD):
        def step(self, closure=None):
            seen_by_base.append(self.params[0].numpy())
            return super().step(closure)

    loss = optim.SAM(Spy([theta], lr=0.0), rho=0.5, steps=3).step(closure)
    assert loss.item() == 0.5 * start @ h @ start or math.isclose(
        loss.item(), 0.5 * start @ h @ start, rel_tol=1e-14
    )
    assert np.array_equal(seen_by_base[0], start)  # bit for bit: copied back, not subtracted
    assert np.array_equal(theta.numpy(), start)  # lr = 0


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_multistep_ascent_has_path_length_rho_and_reuses_the_batch_in_k_plus_1_passes(float64, k):
    theta, h, quadratic_loss = quadratic()
    points = []

    def closure():  # one fixed batch: the optimizer must not need another
        points.append(theta.numpy())
        return quadratic_loss()

    rho = 0.4
    opt = optim.SAM(GradientRecorder([theta]), rho=rho, steps=k)
    opt.step(closure)
    assert len(points) == k + 1  # k ascent gradients + the gradient at ϑ_k
    steps = [np.linalg.norm(b - a) for a, b in zip(points[:-1], points[1:], strict=True)]
    np.testing.assert_allclose(steps, rho / k, rtol=1e-12)
    assert sum(steps) == pytest.approx(rho, rel=1e-12)  # no projection back onto the ball
    distance = np.linalg.norm(points[-1] - points[0])
    assert opt.diagnostics["ascent_distance"] == pytest.approx(distance)
    # each ascent step follows the normalised gradient at the previous point
    for a, b in zip(points[:-1], points[1:], strict=True):
        g = h @ a
        np.testing.assert_allclose(b - a, rho / k * g / np.linalg.norm(g), rtol=1e-10, atol=1e-14)


def test_asam_step_is_rho_T_squared_g_over_norm_of_T_g_with_T_on_every_parameter(float64):
    weight = nn.Parameter(np.array([[0.5, -1.0], [2.0, 0.1]]))
    bias = nn.Parameter(np.array([0.3, -0.7]))  # T applies to biases too (authors: weights only)
    x = ms.Tensor(np.array([[1.0, 2.0], [-1.0, 0.5], [0.2, 0.2]]))
    points = []

    def closure():
        points.append((weight.numpy(), bias.numpy()))
        return ((x @ weight.T + bias) ** 2).sum()

    rho, eta = 0.5, 0.01
    opt = optim.SAM(GradientRecorder([weight, bias]), rho=rho, adaptive=True, eta=eta)
    # the gradient at θ, by hand: L = Σ (xWᵀ + b)², dL/dz = 2z
    z = x.numpy() @ weight.numpy().T + bias.numpy()
    g_w, g_b = (2 * z).T @ x.numpy(), (2 * z).sum(axis=0)
    t_w, t_b = np.abs(weight.numpy()) + eta, np.abs(bias.numpy()) + eta
    norm = np.sqrt(np.sum((t_w * g_w) ** 2) + np.sum((t_b * g_b) ** 2))
    opt.step(closure)
    (w0, b0), (w1, b1) = points
    np.testing.assert_allclose(w1 - w0, rho * t_w**2 * g_w / norm, rtol=1e-12)
    np.testing.assert_allclose(b1 - b0, rho * t_b**2 * g_b / norm, rtol=1e-12)


def test_weight_decay_enters_only_through_the_base_optimizer_at_theta(float64):
    theta, h, closure = quadratic()
    start = theta.numpy()
    rho, lr, wd = 0.2, 0.05, 0.1
    optim.SAM(optim.SGD([theta], lr=lr, weight_decay=wd), rho=rho).step(closure)
    g0 = h @ start  # no weight decay in the ascent
    gk = h @ (start + rho * g0 / np.linalg.norm(g0))
    np.testing.assert_allclose(theta.numpy(), start - lr * (gk + wd * start), rtol=1e-13)


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("k", [1, 3])
def test_sam_on_a_zero_gradient_loss_keeps_parameters_finite_and_unchanged(float64, adaptive, k):
    theta = nn.Parameter(np.array([1.0, -2.0, 3.0]))
    opt = optim.SAM(optim.SGD([theta], lr=0.1, momentum=0.9), rho=0.05, steps=k, adaptive=adaptive)
    for _ in range(3):
        loss = opt.step(lambda: (theta * 0.0).sum() + 1.0)
    assert loss.item() == 1.0
    assert np.array_equal(theta.numpy(), [1.0, -2.0, 3.0])
    assert all(math.isfinite(v) for v in (opt.diagnostics["gk_norm"], opt.diagnostics["cos_psi"]))


def test_a_parameter_the_loss_does_not_reach_is_left_alone(float64):
    used, unused = nn.Parameter(np.array([1.0, 2.0])), nn.Parameter(np.array([5.0]))
    opt = optim.SAM(optim.SGD([used, unused], lr=0.1), rho=0.1)
    opt.step(lambda: (used * used).sum())
    assert unused.numpy()[0] == 5.0 and np.all(np.isfinite(used.numpy()))


def _bn_model():
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: optim.SAM(optim.SGD(p, lr=0.1), rho=0.5, steps=2),
        lambda p: optim.SAM(optim.SGD(p, lr=0.1), rho=0.5, adaptive=True),
        lambda p: optim.XSAM(optim.SGD(p, lr=0.1), rho=0.5, steps=2, search_every=1),
    ],
    ids=["sam-2-step", "asam", "xsam-searching"],
)
def test_batchnorm_running_statistics_change_only_on_the_first_pass_at_theta(float64, make_opt):
    ms.manual_seed(0)
    model, reference = _bn_model(), _bn_model()
    reference.load_state_dict(model.state_dict())
    r = np.random.default_rng(1)
    x, y = ms.Tensor(r.standard_normal((10, 4))), r.integers(0, 3, 10)
    passes = []

    def closure():
        passes.append(1)
        return F.cross_entropy(model(x), y)

    make_opt(list(model.parameters())).step(closure)
    assert len(passes) >= 2
    reference(x)  # one train-mode pass at θ on the same batch
    for name in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        np.testing.assert_array_equal(model.state_dict()[name], reference.state_dict()[name], err_msg=name)
    assert model.state_dict()["1.num_batches_tracked"] == 1


def test_sam_diagnostics_record_norms_losses_distance_and_angle(float64):
    theta, h, closure = quadratic()
    start = theta.numpy()
    opt = optim.SAM(optim.SGD([theta], lr=0.0), rho=0.3, steps=2)
    opt.step(closure)
    d = opt.diagnostics
    for key in (
        "loss",
        "ascent_loss",
        "g0_norm",
        "gk_norm",
        "grad_norms",
        "ascent_distance",
        "cos_psi",
        "step",
    ):
        assert key in d, key
    assert d["g0_norm"] == pytest.approx(np.linalg.norm(h @ start), rel=1e-12)
    assert d["loss"] == pytest.approx(0.5 * start @ h @ start, rel=1e-12)
    assert d["ascent_loss"] > d["loss"]
    assert len(d["grad_norms"]) == 2 and d["step"] == 0
    assert -1 <= d["cos_psi"] <= 1 + 1e-12


def test_sam_lr_is_the_base_optimizers_lr():
    p = nn.Parameter(np.zeros(2))
    base = optim.SGD([p], lr=0.1)
    sam = optim.SAM(base)
    sam.lr = 0.5
    assert base.lr == 0.5 and sam.lr == 0.5


def test_sam_defaults_are_the_papers():
    sam = optim.SAM(optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1))
    assert (sam.rho, sam.steps, sam.adaptive, sam.eta) == (0.05, 1, False, 0.01)


@pytest.mark.parametrize("kwargs", [{"rho": -0.1}, {"steps": 0}, {"steps": 1.5}, {"eta": -1}])
def test_sam_rejects_invalid_hyper_parameters_by_name(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        optim.SAM(optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1), **kwargs)


def test_sam_step_needs_a_closure_that_returns_a_scalar_loss():
    p = nn.Parameter(np.ones(2))
    sam = optim.SAM(optim.SGD([p], lr=0.1))
    with pytest.raises(ValueError, match="closure"):
        sam.step()
    with pytest.raises(TypeError, match="scalar loss"):
        sam.step(lambda: p * 2)


def test_sam_state_dict_round_trips_with_its_base(float64):
    theta, _, closure = quadratic()
    opt = optim.SAM(optim.SGD([theta], lr=0.01, momentum=0.9), rho=0.1, steps=2)
    opt.step(closure)
    state = opt.state_dict()
    assert state["step_count"] == 1 and state["base"]["momentum_buffers"][0] is not None
    other = optim.SAM(optim.SGD([theta], lr=0.5), rho=0.7)
    other.load_state_dict(state)
    assert (other.rho, other.steps, other.step_count, other.lr) == (0.1, 2, 1, 0.01)
    with pytest.raises(KeyError, match="step_count"):
        other.load_state_dict({k: v for k, v in state.items() if k != "step_count"})


# ---- against the independent NumPy implementation --------------------------------------
SIZES = [6, 8, 8, 3]


def _batches():
    r = np.random.default_rng(7)
    return [(r.standard_normal((16, SIZES[0])), r.integers(0, SIZES[-1], 16)) for _ in range(3)]


def compare_with_reference(make_optimizer, reference_gradient, n_steps=6):
    """Run minisam and the NumPy reference from identical weights, SGD(lr 0.1, momentum
    0.9, weight decay 5e-4) as the base, and compare the parameters after every step."""
    ms.manual_seed(0)
    model = models.MLP(SIZES, activation="tanh")
    params = list(model.parameters())
    theta = np.concatenate([p.numpy().ravel() for p in params])
    net, sgd = TanhMLP(SIZES), SGDReference(lr=0.1, momentum=0.9, weight_decay=5e-4)
    opt = make_optimizer(optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4))
    for step, (x, y) in enumerate(_batches() * (n_steps // 3)):
        inputs = ms.Tensor(x)
        loss = opt.step(lambda inputs=inputs, y=y: F.cross_entropy(model(inputs), y))
        assert loss.item() == pytest.approx(net.loss(theta, x, y), rel=1e-12, abs=1e-12)
        grad = reference_gradient(
            lambda t, x=x, y=y: net.loss_and_grad(t, x, y)[1], lambda t, x=x, y=y: net.loss(t, x, y), theta
        )
        theta = sgd.update(theta, grad)
        got = np.concatenate([p.numpy().ravel() for p in params])
        error = np.max(np.abs(got - theta))
        assert error <= 1e-7, f"step {step}: parameters differ from the reference by {error:.3g}"


def test_sgd_matches_the_numpy_reference_step_for_step(float64):
    compare_with_reference(lambda base: base, lambda grad_at, loss_at, theta: grad_at(theta))


@pytest.mark.parametrize("k", [1, 3])
def test_sam_matches_the_numpy_reference_step_for_step(float64, k):
    compare_with_reference(
        lambda base: optim.SAM(base, rho=0.05, steps=k),
        lambda grad_at, loss_at, theta: sam_gradient(grad_at, theta, rho=0.05, k=k),
    )


def test_asam_matches_the_numpy_reference_step_for_step(float64):
    compare_with_reference(
        lambda base: optim.SAM(base, rho=0.5, adaptive=True, eta=0.01),
        lambda grad_at, loss_at, theta: sam_gradient(grad_at, theta, 0.5, adaptive=True, eta=0.01),
    )
