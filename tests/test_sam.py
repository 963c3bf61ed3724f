"""SAM, multi-step SAM, ASAM and m-sharpness: each rule of minisam/optim/ALGORITHMS.md
(sections SAM, m-sharpness, BatchNorm, Arguments), named in a test."""

import math

import numpy as np
import pytest
from helpers import BATCH, GradientRecorder, assert_same_state, compare_with_reference, hand_adam, quadratic
from reference_sam import m_sharpness_gradient, sam_gradient

import minisam as ms
import minisam.functional as F
from minisam import models, nn, optim


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


# ---- m-sharpness (minisam/optim/ALGORITHMS.md, section m-sharpness) -----------------------
@pytest.mark.parametrize("m", [1, 4, BATCH // 2])
@pytest.mark.parametrize("adaptive", [False, True])
def test_m_sharpness_hands_the_mean_of_each_micro_batchs_own_sam_gradient(float64, m, adaptive):
    rho, k = (0.5 if adaptive else 0.05), 2
    parts = [slice(j, j + m) for j in range(0, BATCH, m)]
    compare_with_reference(
        lambda base: optim.SAM(base, rho=rho, steps=k, adaptive=adaptive, m=m),
        lambda grad_at, loss_at, theta: m_sharpness_gradient(grad_at, theta, rho, parts, k, adaptive),
        batch_size=BATCH,
    )


def _two_runs(make_a, make_b, batch_norm=True, steps=3):
    """Train the same small CNN (with BatchNorm) twice from one initialisation; each ``make``
    returns (optimizer, step function); returns both final state dicts."""
    r = np.random.default_rng(4)
    x, y = ms.Tensor(r.standard_normal((8, 1, 8, 8))), r.integers(0, 3, 8)
    states = []
    for make in (make_a, make_b):
        ms.manual_seed(0)
        model = models.CNN2d(image_size=8, channels=(2, 3), batch_norm=batch_norm, num_classes=3)
        opt = make(optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4))

        def closure(part=slice(None), model=model):
            return F.cross_entropy(model(x[part]), y[part])

        for _ in range(steps):
            loss = opt.step(closure, batch_size=8) if opt.m is not None else opt.step(closure)
        states.append((model.state_dict(), loss.item(), opt.diagnostics))
    return states


def test_m_equal_to_the_batch_size_is_plain_sam_bit_for_bit(float64):
    (plain, plain_loss, plain_d), (m_b, m_loss, m_d) = _two_runs(
        lambda b: optim.SAM(b, rho=0.2, steps=2), lambda b: optim.SAM(b, rho=0.2, steps=2, m=8)
    )
    for name in plain:
        assert np.array_equal(plain[name], m_b[name]), name
    assert plain_loss == m_loss
    assert m_d.pop("micro_batches") == 1 and m_d == plain_d


def test_m_sharpness_updates_batchnorm_statistics_once_per_micro_batch_at_theta_in_order(float64):
    ms.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    reference = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    reference.load_state_dict(model.state_dict())
    r = np.random.default_rng(1)
    x, y = ms.Tensor(r.standard_normal((12, 4))), r.integers(0, 3, 12)
    opt = optim.SAM(optim.SGD(model.parameters(), lr=0.1), rho=0.5, steps=2, m=4)
    loss = opt.step(lambda part=slice(None): F.cross_entropy(model(x[part]), y[part]), batch_size=12)
    losses = [F.cross_entropy(reference(x[slice(j, j + 4)]), y[j : j + 4]).item() for j in (0, 4, 8)]
    for name in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        np.testing.assert_array_equal(model.state_dict()[name], reference.state_dict()[name], err_msg=name)
    assert model.state_dict()["1.num_batches_tracked"] == 3
    assert loss.item() == pytest.approx(np.mean(losses), rel=1e-14)  # the mean of the losses at θ


def test_m_sharpness_needs_a_batch_size_that_m_divides():
    p = nn.Parameter(np.ones(4))
    opt = optim.SAM(optim.SGD([p], lr=0.1), m=2)

    def closure(part=slice(None)):
        return (p[part] * 2).sum()

    with pytest.raises(ValueError, match="batch_size"):
        opt.step(closure)
    with pytest.raises(ValueError, match="m must divide"):
        opt.step(closure, batch_size=5)
    with pytest.raises(ValueError, match="m"):
        optim.SAM(optim.SGD([p], lr=0.1), m=0)
    assert np.array_equal(p.numpy(), np.ones(4)) and opt.step_count == 0


# ---- hardening (minisam/optim/ALGORITHMS.md, section Arguments) ---------------------------
def test_sam_with_rho_0_is_exactly_its_base_optimizer(float64):
    runs = []
    for wrap in (lambda b: b, lambda b: optim.SAM(b, rho=0.0, steps=2)):
        theta, _, closure = quadratic()
        opt = wrap(optim.SGD([theta], lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=True))
        for _ in range(4):
            opt.step(closure)
        runs.append(theta.numpy())
    assert np.array_equal(runs[0], runs[1])


@pytest.mark.parametrize("wrap", [optim.SAM, lambda b: optim.SAM(b, steps=3, adaptive=True), optim.XSAM])
def test_a_huge_but_finite_gradient_gives_a_finite_step_that_still_climbs(wrap):
    w = nn.Parameter(np.ones(3, dtype=np.float32))  # ‖g‖ ≈ 3.5e19: a float32 sum of squares overflows
    opt = wrap(optim.SGD([w], lr=1e-30))
    opt.step(lambda: (w * 2e19).sum())
    d = opt.diagnostics
    assert np.all(np.isfinite(w.numpy()))
    assert d["g0_norm"] == pytest.approx(2e19 * math.sqrt(3), rel=1e-6)
    assert d["ascent_distance"] > 0  # the climb happened (it used to be skipped)
    assert all(math.isfinite(v) for v in (d["gk_norm"], d["cos_psi"], d["loss"]))


@pytest.mark.parametrize("wrap", [optim.SGD, optim.SAM, optim.XSAM], ids=["sgd", "sam", "xsam"])
def test_a_closure_that_calls_backward_itself_is_refused_and_changes_nothing(float64, wrap):
    theta, _, loss = quadratic()
    start = theta.numpy()
    opt = optim.SGD([theta], lr=0.1, momentum=0.9) if wrap is optim.SGD else wrap(optim.SGD([theta], lr=0.1))

    def closure():
        value = loss()
        value.backward()  # the optimizer does this: doing it here would double the gradient
        return value

    with pytest.raises(RuntimeError, match="backward"):
        opt.step(closure)
    assert np.array_equal(theta.numpy(), start)


NON_FINITE_CASES = [  # (optimizer, the call of the closure that returns a NaN or infinite loss)
    ("sgd", 1), ("adam", 1), ("sam", 1), ("sam", 2), ("xsam", 1), ("xsam", 2), ("xsam", 3),
]  # fmt: skip  # 1: the pass at θ; 2: at the ascent point ϑ₁; 3: XSAM's first probe
MAKE = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    "adam": lambda ps: optim.Adam(ps, lr=0.1),
    "sam": lambda ps: optim.SAM(optim.SGD(ps, lr=0.1, momentum=0.9), rho=0.05),
    "xsam": lambda ps: optim.XSAM(optim.SGD(ps, lr=0.1, momentum=0.9), rho=0.05, search_every=1),
}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name, failing_call", NON_FINITE_CASES)
def test_a_nan_or_infinite_loss_on_any_pass_is_refused_and_the_step_changes_nothing(name, failing_call, bad):
    theta, _, loss = quadratic()
    opt = MAKE[name]([theta])
    opt.step(loss)  # a first, good step: momentum (Adam: moments) and gradients now exist
    before = (theta.numpy(), theta.grad.copy(), opt.state_dict())
    calls = []

    def closure():
        calls.append(1)
        value = loss()
        return value * bad if len(calls) == failing_call else value

    with pytest.raises(ms.vector.NonFiniteLoss, match=f"is {bad}"):
        opt.step(closure)
    assert np.array_equal(theta.numpy(), before[0]) and np.array_equal(theta.grad, before[1])
    assert_same_state(opt.state_dict(), before[2])


@pytest.mark.parametrize("outer", [optim.SAM, optim.XSAM])
@pytest.mark.parametrize("inner", [optim.SAM, optim.XSAM])
def test_one_sam_family_optimizer_cannot_wrap_another(outer, inner):
    base = optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1)
    with pytest.raises(TypeError, match="plain optimizer"):
        outer(inner(base))


@pytest.mark.parametrize(
    "kwargs", [{"rho": math.inf}, {"eta": math.inf}, {"rho": math.nan}, {"adaptive": 1}, {"steps": True}]
)
def test_sam_refuses_infinite_nan_and_ambiguous_settings_by_name(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        optim.SAM(optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1), **kwargs)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, "0.1"])
def test_the_lr_setter_schedulers_use_refuses_what_the_constructor_refuses(bad):
    base = optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1)
    for opt in (base, optim.SAM(base), optim.XSAM(base)):
        with pytest.raises(ValueError, match="lr"):
            opt.lr = bad
    assert base.lr == 0.1


def _failing_on_pass(fail_at, model, x, y):
    calls = []

    def closure(part=slice(None)):
        calls.append(1)
        if len(calls) == fail_at:
            model(x[part])  # a forward pass that reaches BatchNorm, then fails
            raise RuntimeError("the data loader broke")
        return F.cross_entropy(model(x[part]), y[part])

    return closure


FAILING = [  # an optimizer, and passes of its step that fail (it makes at least that many)
    ("sgd", lambda p: optim.SGD(p, lr=0.1, momentum=0.9), [1]),
    ("sam-2-step", lambda p: optim.SAM(optim.SGD(p, lr=0.1, momentum=0.9), rho=0.5, steps=2), [1, 2, 3]),
    ("sam-m", lambda p: optim.SAM(optim.SGD(p, lr=0.1, momentum=0.9), rho=0.5, m=5), [1, 2, 3, 4]),
    (
        "xsam",
        lambda p: optim.XSAM(optim.SGD(p, lr=0.1, momentum=0.9), rho=0.5, search_every=1),
        [1, 2, 3, 23],
    ),
]


@pytest.mark.parametrize(
    "make_opt, fail_at",
    [(make, n) for _, make, passes in FAILING for n in passes],
    ids=[f"{name}-pass-{n}" for name, _, passes in FAILING for n in passes],
)
def test_a_step_that_fails_on_any_pass_changes_nothing_batchnorm_statistics_included(
    float64, make_opt, fail_at
):
    ms.manual_seed(0)
    model = _bn_model()
    r = np.random.default_rng(1)
    x, y = ms.Tensor(r.standard_normal((10, 4))), r.integers(0, 3, 10)
    opt = make_opt(list(model.parameters()))
    kwargs = {"batch_size": 10} if getattr(opt, "m", None) else {}
    opt.step(_failing_on_pass(0, model, x, y), **kwargs)  # one good step: momentum buffers exist
    before, state = model.state_dict(), opt.state_dict()
    with pytest.raises(RuntimeError, match="data loader"):
        opt.step(_failing_on_pass(fail_at, model, x, y), **kwargs)
    assert_same_state(model.state_dict(), before, "model")
    assert_same_state(opt.state_dict(), state, "optimizer")


def test_sam_wraps_adam_and_hands_it_g_k(float64):
    theta, h, closure = quadratic()
    start = theta.numpy()
    rho, lr = 0.3, 0.01
    optim.SAM(optim.Adam([theta], lr=lr), rho=rho).step(closure)
    g0 = h @ start
    gk = h @ (start + rho * g0 / np.linalg.norm(g0))
    np.testing.assert_allclose(theta.numpy(), hand_adam(start, [gk], lr)[0], rtol=1e-13)


def test_a_checkpoint_written_before_m_existed_still_loads(float64):
    theta, _, closure = quadratic()
    opt = optim.SAM(optim.SGD([theta], lr=0.01, momentum=0.9), rho=0.1)
    opt.step(closure)
    old_format = {k: v for k, v in opt.state_dict().items() if k != "m"}
    fresh = optim.SAM(optim.SGD([theta], lr=0.5), rho=0.7, m=3)
    fresh.load_state_dict(old_format)
    assert (fresh.rho, fresh.m, fresh.step_count) == (0.1, None, 1)


def test_batchnorm_rollback_blocks_nest_and_undo_only_their_own_failed_block(float64):
    ms.manual_seed(0)
    model = _bn_model()
    x = ms.Tensor(np.random.default_rng(1).standard_normal((10, 4)))
    start = model.state_dict()["1.running_mean"]
    with nn.restore_batchnorm_stats_on_error():
        model(x)  # kept: its block does not fail
        after_first = model.state_dict()["1.running_mean"]
        with pytest.raises(RuntimeError), nn.restore_batchnorm_stats_on_error():
            model(x)
            raise RuntimeError("inner block fails")
        assert np.array_equal(model.state_dict()["1.running_mean"], after_first)
    assert not np.array_equal(after_first, start)
    assert np.array_equal(model.state_dict()["1.running_mean"], after_first)
    assert model.state_dict()["1.num_batches_tracked"] == 1


# ---- the kept arrays of the climb (vector.KeptArrays) -----------------------------------------
def _bits(arrays):
    return [np.ascontiguousarray(a).view(np.uint8).tobytes() for a in arrays]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kept_arrays_give_the_bits_of_new_arrays_and_never_write_over_their_input(dtype):
    rng = np.random.default_rng(3)
    kept = ms.vector.KeptArrays()
    x = [rng.standard_normal(s).astype(dtype) for s in [(7, 5), (5,)]]

    def check(op, *args, expected):
        before = _bits(x) + _bits(y)
        got = getattr(kept, op)(*args)
        assert _bits(got) == _bits(expected) and [g.dtype for g in got] == [dtype, dtype], op
        assert _bits(x) + _bits(y) == before  # the inputs are intact
        assert not any(np.shares_memory(g, v) for g in got for v in x + y)
        return got  # the next call reads this one's result, as the climb does

    for a in (0.37, 1e-3, -2.5, 0.1):  # each expected value written out as the spec reads, as new arrays
        y = [rng.standard_normal(v.shape).astype(dtype) for v in x]
        x = check("add_scaled", x, y, a, expected=[u + a * v for u, v in zip(x, y, strict=True)])
        x = check("subtract", x, y, expected=[u - v for u, v in zip(x, y, strict=True)])
    reshaped = kept.add_scaled([np.ones(3, dtype)], [np.ones(3, dtype)], 2.0)
    assert reshaped[0].shape == (3,) and reshaped[0].tolist() == [3.0, 3.0, 3.0]


@pytest.mark.parametrize("make", [
    lambda base: optim.SAM(base, rho=0.05, steps=3),
    lambda base: optim.SAM(base, rho=0.2, steps=2, adaptive=True),
    lambda base: optim.XSAM(base, rho=0.05, steps=2, search_every=2),
])  # fmt: skip
def test_sam_and_xsam_follow_the_same_bits_with_kept_points_and_with_new_ones(make):
    rng = np.random.default_rng(0)
    x, y = ms.Tensor(rng.standard_normal((16, 6)).astype(np.float32)), ms.Tensor(rng.integers(0, 3, 16))
    runs = []
    for kept in (True, False):
        ms.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        opt = make(optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
        if not kept:
            opt._kept = ms.vector  # every vector of the step as new arrays, as the vector module makes them
        losses = [opt.step(lambda model=model: F.cross_entropy(model(x), y)).item() for _ in range(6)]
        runs.append((losses, _bits(model.state_dict().values())))
    assert runs[0] == runs[1]


def test_sam_k1_diagnostics_from_g0_equal_those_from_the_vector_theta1_minus_theta(float64):
    # SAM (k = 1) takes ‖ϑ₁ − θ‖ and cos ψ from g₀; XSAM builds ϑ₁ − θ and measures it
    rng = np.random.default_rng(5)
    x, y = ms.Tensor(rng.standard_normal((8, 5))), ms.Tensor(rng.integers(0, 3, 8))
    seen = []
    for make in (lambda b: optim.SAM(b, rho=0.07), lambda b: optim.XSAM(b, rho=0.07, search_every=0)):
        ms.manual_seed(2)
        model = nn.Sequential(nn.Linear(5, 6), nn.Sigmoid(), nn.Linear(6, 3))
        opt = make(optim.SGD(model.parameters(), lr=0.1))
        opt.step(lambda model=model: F.cross_entropy(model(x), y))
        seen.append(opt.diagnostics)
    sam, xsam = seen
    assert sam["ascent_distance"] == pytest.approx(xsam["ascent_distance"], rel=1e-12)
    assert sam["ascent_distance"] == pytest.approx(0.07, rel=1e-9)
    assert sam["cos_psi"] == pytest.approx(xsam["cos_psi"], rel=1e-12)
    assert 0.0 < abs(sam["cos_psi"]) < 1.0  # a real angle, not a degenerate case
