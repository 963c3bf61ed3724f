"""XSAM: each rule of minisam/optim/ALGORITHMS.md (section XSAM and the sections it
shares with SAM), named in a test."""

import math

import numpy as np
import pytest
from helpers import GradientRecorder, compare_with_reference, hand_adam, quadratic
from reference_sam import XSAMReference

import minisam as ms
import minisam.functional as F
from minisam import models, nn, optim
from minisam.optim.xsam import search_alpha, slerp, slerp_in_place


def _mlp_problem(seed=0):
    ms.manual_seed(seed)
    model = models.MLP([5, 7, 3], activation="tanh")
    r = np.random.default_rng(seed)
    x, y = ms.Tensor(r.standard_normal((12, 5))), r.integers(0, 3, 12)
    return model, (lambda: F.cross_entropy(model(x), y))


@pytest.mark.parametrize("k", [1, 3])
def test_xsam_with_alpha_fixed_at_1_equals_sam_for_k_1_and_k_3(float64, k):
    trajectories = []
    for make in (
        lambda b: optim.SAM(b, rho=0.3, steps=k),
        lambda b: optim.XSAM(b, rho=0.3, steps=k, alpha=1.0, search_every=0),
    ):
        model, closure = _mlp_problem()
        opt = make(optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
        for _ in range(4):
            opt.step(closure)
        trajectories.append(np.concatenate([p.numpy().ravel() for p in model.parameters()]))
    np.testing.assert_allclose(trajectories[1], trajectories[0], rtol=0, atol=1e-12)


def test_xsam_alpha_0_with_k_1_gives_norm_g1_times_g0_over_norm_g0(float64):
    theta, h, closure = quadratic()
    start = theta.numpy()
    base = GradientRecorder([theta])
    rho = 0.4
    optim.XSAM(base, rho=rho, alpha=0.0, search_every=0).step(closure)
    g0 = h @ start
    g1 = h @ (start + rho * g0 / np.linalg.norm(g0))
    expected = np.linalg.norm(g1) * g0 / np.linalg.norm(g0)  # the paper's "SGD+"
    # (rtol 1e-10, not 1e-12: the guard ε₀ = 1e-12 in ‖·‖ + ε₀ shifts results by ~ε₀/‖g‖)
    np.testing.assert_allclose(base.received[0][0], expected, rtol=1e-10)


def test_v0_for_k_1_is_g0s_direction_to_float32_rounding_even_where_theta_is_large():
    # ϑ₁ − θ is the climb's step a·g₀ itself, not (θ + a·g₀) − θ: in float32 that subtraction keeps
    # only the digits of a·g₀ above θ's rounding (here |θ| ≈ 100, |a·g₀| ≈ 1e-3: a few 1e-3 relative)
    rng = np.random.default_rng(4)
    start = (100.0 + rng.standard_normal(50)).astype(np.float32)
    target = start + rng.standard_normal(50).astype(np.float32)  # θ − target is exact in float32
    theta, target_tensor = nn.Parameter(start.copy()), ms.Tensor(target)
    base = GradientRecorder([theta])
    optim.XSAM(base, rho=0.01, alpha=0.0, search_every=0).step(
        lambda: 0.5 * ((theta - target_tensor) ** 2).sum()
    )
    got = base.received[0][0]
    assert got.dtype == np.float32
    g0 = start.astype(np.float64) - target  # the gradient at θ, exactly
    direction = got.astype(np.float64) / np.linalg.norm(got.astype(np.float64))
    np.testing.assert_allclose(direction, g0 / np.linalg.norm(g0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0, 1.7, 2.0])
@pytest.mark.parametrize("k", [1, 2])
def test_xsam_update_norm_is_the_norm_of_gk_for_every_alpha(float64, alpha, k):
    model, closure = _mlp_problem()
    params = list(model.parameters())
    base = GradientRecorder(params)
    opt = optim.XSAM(base, rho=0.5, steps=k, alpha=alpha, search_every=0)
    opt.step(closure)
    update_norm = math.sqrt(sum(np.sum(g**2) for g in base.received[0]))
    assert update_norm == pytest.approx(opt.diagnostics["gk_norm"], rel=1e-10)  # up to ε₀/‖g‖
    assert opt.diagnostics["alpha"] == alpha


def test_every_probe_lies_at_distance_rho_max_from_theta(float64):
    model, loss = _mlp_problem()
    params = list(model.parameters())
    start = np.concatenate([p.numpy().ravel() for p in params])
    probe_distances = []

    def closure():
        if not ms.is_grad_enabled():  # a probe: evaluated without gradients
            here = np.concatenate([p.numpy().ravel() for p in params])
            probe_distances.append(np.linalg.norm(here - start))
        return loss()

    opt = optim.XSAM(optim.SGD(params, lr=0.1), rho=0.1, rho_max=0.35, steps=2, search_every=1)
    opt.step(closure)
    assert len(probe_distances) == 21
    np.testing.assert_allclose(probe_distances, 0.35, rtol=1e-10)


def test_rho_max_defaults_to_twice_rho():
    assert optim.XSAM(optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1), rho=0.15).rho_max == 0.3


def test_default_grid_has_21_points_including_0_and_1():
    opt = optim.XSAM(optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1))
    grid = opt.alpha_grid
    assert len(grid) == 21 and grid[0] == 0.0 and grid[10] == 1.0 and grid[-1] == pytest.approx(2.0)
    assert (opt.rho, opt.rho_max, opt.alpha, opt.alpha_max, opt.alpha_step, opt.steps, opt.search_every) == (
        0.05,
        0.1,
        1.0,
        2.0,
        0.1,
        1,
        100,
    )


def test_ties_go_to_the_smallest_alpha(float64):
    theta, _, loss = quadratic()
    probe_values = iter([1.0, 2.0, 3.0, 3.0, 3.0, 2.0] + [0.0] * 15)

    def closure():
        if ms.is_grad_enabled():
            return loss()
        return ms.Tensor(next(probe_values))

    opt = optim.XSAM(optim.SGD([theta], lr=0.0), rho=0.1, search_every=1)
    opt.step(closure)
    assert opt.alpha == opt.alpha_grid[2]
    assert [v for _, v in opt.diagnostics["probe_losses"][:6]] == [1.0, 2.0, 3.0, 3.0, 3.0, 2.0]

    flat = optim.XSAM(optim.SGD([theta], lr=0.0), rho=0.1, search_every=1)
    flat.step(lambda: loss() if ms.is_grad_enabled() else ms.Tensor(7.0))
    assert flat.alpha == 0.0  # all probes equal: the smallest α


@pytest.mark.parametrize("every, searched", [(3, [0, 3, 6]), (1, list(range(7))), (0, [])])
def test_searches_happen_at_steps_0_N_2N_and_never_when_N_is_0(float64, every, searched):
    model, loss = _mlp_problem()
    probes_per_step, probes = [], []

    def closure():
        if not ms.is_grad_enabled():
            probes.append(1)
        return loss()

    opt = optim.XSAM(optim.SGD(model.parameters(), lr=0.1), rho=0.2, alpha=0.4, search_every=every)
    for _ in range(7):
        before = len(probes)
        opt.step(closure)
        probes_per_step.append(len(probes) - before)
        assert opt.diagnostics["searched"] == (opt.diagnostics["step"] in searched)
    assert [i for i, n in enumerate(probes_per_step) if n] == searched
    assert all(n in (0, 21) for n in probes_per_step)
    if every == 0:
        assert opt.alpha == 0.4  # never searched: α stays as given


def test_alpha_star_is_the_best_probe_and_is_kept_until_the_next_search(float64):
    model, loss = _mlp_problem()
    opt = optim.XSAM(optim.SGD(model.parameters(), lr=0.1), rho=0.3, search_every=3)
    opt.step(loss)
    probes = opt.diagnostics["probe_losses"]
    alpha_star = max(probes, key=lambda t: t[1])[0]
    assert opt.alpha == alpha_star
    for _ in range(2):
        opt.step(loss)
        assert opt.diagnostics["alpha"] == alpha_star and opt.diagnostics["probe_losses"] == []


@pytest.mark.parametrize("rho, relation", [(2.0, "parallel"), (0.8, "anti-parallel")])
def test_v0_parallel_to_v1_stays_finite_and_uses_v1(float64, rho, relation):
    # In one dimension v₀ and v₁ are always (anti)parallel: sin ψ = 0, the slerp falls
    # back to v₁, and the update is g_k for every α -- the same as SAM's.
    x = nn.Parameter(np.array([0.5]))

    def closure():
        return (x * x - 1.0) ** 2  # L = (x² − 1)²

    base = GradientRecorder([x])
    opt = optim.XSAM(base, rho=rho, search_every=1)
    opt.step(lambda: closure().sum())
    d = opt.diagnostics
    assert d["cos_psi"] == pytest.approx(1.0 if relation == "parallel" else -1.0)
    assert all(math.isfinite(v) for _, v in d["probe_losses"])
    point = 0.5 - rho  # the gradient at 0.5 is negative
    np.testing.assert_allclose(base.received[0][0], [4 * point * (point**2 - 1)], rtol=1e-10)


@pytest.mark.parametrize("k", [1, 3])
def test_xsam_on_a_zero_gradient_loss_keeps_parameters_finite(float64, k):
    theta = nn.Parameter(np.array([1.0, -2.0, 3.0]))
    opt = optim.XSAM(optim.SGD([theta], lr=0.1, momentum=0.9), steps=k, search_every=1)
    for _ in range(3):
        opt.step(lambda: (theta * 0.0).sum())
    assert np.array_equal(theta.numpy(), [1.0, -2.0, 3.0])
    d = opt.diagnostics
    assert all(math.isfinite(d[key]) for key in ("gk_norm", "cos_psi", "psi", "alpha"))


def test_xsam_diagnostics_record_every_quantity_of_the_step(float64):
    model, loss = _mlp_problem()
    opt = optim.XSAM(optim.SGD(model.parameters(), lr=0.1), rho=0.2, steps=2, search_every=1)
    returned = opt.step(loss)
    d = opt.diagnostics
    for key in (
        "loss",
        "ascent_loss",
        "g0_norm",
        "gk_norm",
        "ascent_distance",
        "cos_psi",
        "psi",
        "alpha",
        "searched",
        "probe_losses",
        "step",
    ):
        assert key in d, key
    assert d["loss"] == returned.item()
    assert d["ascent_distance"] == pytest.approx(0.2, rel=1e-2)  # ≤ ρ, close to it for k = 2
    assert d["psi"] == pytest.approx(math.acos(d["cos_psi"]))
    assert [a for a, _ in d["probe_losses"]] == opt.alpha_grid
    assert d["alpha"] == max(d["probe_losses"], key=lambda t: t[1])[0]


def test_xsam_lr_and_schedulers_act_on_the_base():
    base = optim.SGD([nn.Parameter(np.zeros(2))], lr=0.2)
    opt = optim.XSAM(base)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert base.lr == 0.1 and opt.lr == 0.1


@pytest.mark.parametrize(
    "kwargs", [{"rho": -1}, {"rho_max": -0.1}, {"alpha_step": 0}, {"search_every": -1}, {"steps": 0}]
)
def test_xsam_rejects_invalid_hyper_parameters_by_name(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        optim.XSAM(optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1), **kwargs)


def test_xsam_state_dict_keeps_alpha_and_the_search_counter(float64):
    model, loss = _mlp_problem()
    opt = optim.XSAM(optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.3, search_every=2)
    opt.step(loss)
    state = opt.state_dict()
    fresh = optim.XSAM(optim.SGD(model.parameters(), lr=0.1))
    fresh.load_state_dict(state)
    assert (fresh.alpha, fresh.step_count, fresh.search_every, fresh.rho) == (opt.alpha, 1, 2, 0.3)
    assert fresh.base.momentum == 0.9
    bad = dict(state, base={**state["base"], "momentum_buffers": [np.zeros(1)] * 4})
    with pytest.raises(ValueError, match="momentum_buffers"):
        fresh.load_state_dict(bad)


# ---- against the independent NumPy implementation --------------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        dict(rho=0.2, alpha=1.0, search_every=0),
        dict(rho=0.2, search_every=1),
        dict(rho=0.2, steps=3, search_every=2),
        dict(rho=0.2, alpha=0.0, search_every=0),
    ],
    ids=["alpha-1", "search-every-step", "3-step-search-every-2", "alpha-0"],
)
def test_xsam_matches_the_numpy_reference_step_for_step(float64, settings):
    reference = XSAMReference(
        rho=settings["rho"],
        alpha=settings.get("alpha", 1.0),
        k=settings.get("steps", 1),
        search_every=settings["search_every"],
    )
    made = []

    def make(base):
        made.append(optim.XSAM(base, **settings))
        return made[0]

    compare_with_reference(make, reference.gradient)
    assert made[0].alpha == pytest.approx(reference.alpha, abs=1e-12)


def test_xsam_with_alpha_fixed_at_1_equals_sam_on_a_cnn_with_batchnorm(float64):
    # No manual CNN backward here: a consistency check between the two optimizers,
    # including the BatchNorm statistics (both make the same passes in the same order).
    r = np.random.default_rng(4)
    x, y = ms.Tensor(r.standard_normal((6, 1, 8, 8))), r.integers(0, 3, 6)
    states = []
    for make in (
        lambda b: optim.SAM(b, rho=0.2, steps=2),
        lambda b: optim.XSAM(b, rho=0.2, steps=2, alpha=1.0, search_every=0),
    ):
        ms.manual_seed(0)
        model = models.CNN2d(image_size=8, channels=(2, 3), batch_norm=True, num_classes=3)
        opt = make(optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4))
        for _ in range(3):
            loss = opt.step(lambda model=model: F.cross_entropy(model(x), y))
            assert math.isfinite(loss.item())
        states.append(model.state_dict())
    for name in states[0]:
        np.testing.assert_allclose(states[1][name], states[0][name], rtol=0, atol=1e-12, err_msg=name)
    assert states[0]["1.num_batches_tracked"] == 3


# ---- faithfulness and hardening -----------------------------------------------------------
@pytest.mark.parametrize("search_every", [0, 1])
def test_parameters_without_gradient_are_left_untouched_their_momentum_buffer_too(float64, search_every):
    used, unused = nn.Parameter(np.array([1.0, 2.0])), nn.Parameter(np.array([5.0, -3.0]))
    base = optim.SGD([used, unused], lr=0.1, momentum=0.9, weight_decay=0.1)
    opt = optim.XSAM(base, rho=0.1, alpha=0.5, search_every=search_every)
    probes = []

    def closure():
        if not ms.is_grad_enabled():
            probes.append(unused.numpy())
        return (used * used).sum()

    for _ in range(3):
        opt.step(closure)
    assert np.array_equal(unused.numpy(), [5.0, -3.0]) and base.momentum_buffers[1] is None
    assert unused.grad is None
    assert all(np.array_equal(p, [5.0, -3.0]) for p in probes)  # no probe moves it either
    if search_every:
        assert len(probes) == 3 * 21


def test_alpha_1_reproduces_sam_up_to_a_relative_eps0_over_norm_gk(float64):
    theta, h, closure = quadratic()
    start = theta.numpy()
    sam_base, xsam_base = GradientRecorder([theta]), None
    optim.SAM(sam_base, rho=0.3).step(closure)
    theta.data[...] = start
    xsam_base = GradientRecorder([theta])
    optim.XSAM(xsam_base, rho=0.3, alpha=1.0, search_every=0).step(closure)
    gk, got = sam_base.received[0][0], xsam_base.received[0][0]
    norm = np.linalg.norm(gk)
    # ‖g_k‖·v₁ = g_k·‖g_k‖/(‖g_k‖ + ε₀): SAM's gradient shortened by a relative ε₀/(‖g_k‖ + ε₀)
    np.testing.assert_allclose(got, gk * (norm / (norm + 1e-12)), rtol=1e-15, atol=0)
    assert np.max(np.abs(got / gk - 1)) <= 4e-16 + 1e-12 / norm


def test_xsam_refuses_rho_0_and_rho_max_0_because_v0_is_undefined_there():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="rho must be a finite number > 0"):
        optim.XSAM(optim.SGD([p], lr=0.1), rho=0.0)
    with pytest.raises(ValueError, match="rho_max"):
        optim.XSAM(optim.SGD([p], lr=0.1), rho=0.1, rho_max=0.0)


@pytest.mark.parametrize(
    "alpha_max, alpha_step, grid",
    [
        (2.0, 0.3, [0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8]),
        (1.0, 0.5, [0.0, 0.5, 1.0]),
        (0.3, 0.1, [0, 0.1, 0.2, 0.3]),
    ],
)
def test_the_alpha_grid_never_goes_past_alpha_max(alpha_max, alpha_step, grid):
    opt = optim.XSAM(
        optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1), alpha_max=alpha_max, alpha_step=alpha_step
    )
    assert opt.alpha_grid == pytest.approx(grid, abs=1e-15)
    assert max(opt.alpha_grid) <= alpha_max


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"alpha_step": 3.0}, "alpha_step must be a finite number > 0 and <= 2"),
        ({"alpha_step": 1e-12}, "at most 1001"),
        ({"alpha_max": 0.0}, "alpha_max"),
        ({"rho": math.inf}, "rho"),
        ({"rho_max": math.inf}, "rho_max"),
        ({"alpha": math.inf}, "alpha"),
        ({"alpha": math.nan}, "alpha"),
        ({"alpha_max": math.inf}, "alpha_max"),
        ({"search_every": 2.0}, "search_every"),
        ({"m": 4}, "m-sharpness"),
    ],
)
def test_xsam_refuses_grids_too_coarse_or_too_fine_infinities_and_m(kwargs, words):
    with pytest.raises(ValueError, match=words):
        optim.XSAM(optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1), **kwargs)


def test_the_papers_example_of_a_huge_gradient_gives_a_finite_xsam_step():
    w = nn.Parameter(np.ones(3, dtype=np.float32))
    opt = optim.XSAM(optim.SGD([w], lr=1e-30), search_every=1)
    opt.step(lambda: (w * 2e19).sum())
    assert np.all(np.isfinite(w.numpy()))
    assert all(math.isfinite(loss) for _, loss in opt.diagnostics["probe_losses"])


def test_xsam_wraps_adamw_and_hands_it_norm_gk_times_v_of_alpha(float64):
    theta, _, closure = quadratic()
    start = theta.numpy()
    recorder = GradientRecorder([theta])
    optim.XSAM(recorder, rho=0.3, alpha=0.4, search_every=0).step(closure)
    theta.data[...] = start
    optim.XSAM(optim.AdamW([theta], lr=0.01), rho=0.3, alpha=0.4, search_every=0).step(closure)
    expected = hand_adam(start, [recorder.received[0][0]], 0.01, weight_decay=1e-2, decoupled=True)[0]
    np.testing.assert_allclose(theta.numpy(), expected, rtol=1e-13)


def test_a_checkpoint_written_by_the_old_xsam_still_loads(float64):
    model, loss = _mlp_problem()
    old_format = {  # the keys and types the December-1 code wrote
        "rho": 0.3,
        "rho_max": 0.6,
        "alpha_max": 2.0,
        "alpha_step": 0.1,
        "steps": 1,
        "search_every": 2,
        "step_count": 5,
        "alpha": 0.7000000000000001,
        "base": {
            "lr": 0.1,
            "momentum": 0.9,
            "dampening": 0.0,
            "weight_decay": 0.0,
            "nesterov": False,
            "momentum_buffers": [None] * 4,
        },
    }
    fresh = optim.XSAM(optim.SGD(model.parameters(), lr=0.5))
    fresh.load_state_dict(old_format)
    assert (fresh.alpha, fresh.step_count, fresh.rho_max, fresh.lr) == (0.7000000000000001, 5, 0.6, 0.1)
    fresh.step(loss)  # and it steps


# ---- the named pieces of the step ----------------------------------------------------------
def _unit_pair(psi):
    """Two unit vectors (split over two arrays, as parameters are) at angle ψ."""
    v0 = [np.array([1.0, 0.0]), np.array([0.0])]
    v1 = [np.array([math.cos(psi), 0.0]), np.array([math.sin(psi)])]
    return v0, v1


@pytest.mark.parametrize("psi", [0.3, 1.2, 2.9])
def test_slerp_runs_along_the_great_circle_from_v0_through_v1(psi):
    v0, v1 = _unit_pair(psi)
    for alpha in (0.0, 0.25, 1.0, 1.6, 2.0):
        v = np.concatenate(slerp(v0, v1, psi, alpha))
        expected = [math.cos(alpha * psi), 0.0, math.sin(alpha * psi)]  # the angle from v₀ is α·ψ
        np.testing.assert_allclose(v, expected, rtol=0, atol=1e-15)


def test_slerp_falls_back_to_v1_itself_when_v0_and_v1_are_parallel_or_opposite():
    v0, v1 = _unit_pair(0.0)
    assert all(np.array_equal(a, b) for a, b in zip(slerp(v0, v1, 1e-9, 0.3), v1, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(slerp(v0, v1, math.pi, 1.7), v1, strict=True))


@pytest.mark.parametrize("psi, alpha", [(0.7, 0.0), (0.7, 0.4), (0.7, 1.0), (2.0, 1.9), (0.0, 0.5)])
def test_slerp_in_place_gives_length_times_slerp_in_v1s_own_arrays(psi, alpha):
    v0, v1 = _unit_pair(psi)
    expected = [3.5 * a for a in slerp(v0, v1, psi, alpha)]
    got = slerp_in_place(v0, v1, psi, alpha, length=3.5)
    assert got is v1
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-15, atol=1e-15)


def test_search_alpha_puts_theta_back_and_returns_the_grid_point_of_largest_probe_loss(float64):
    p = nn.Parameter(np.array([0.0, 0.0]))
    theta = p.data
    v0, v1 = [np.array([1.0, 0.0])], [np.array([0.0, 1.0])]
    # L(x) = −(x − (cos 1.2, sin 1.2))²: largest at the point of the arc at angle 1.2 = α·π/2
    target = ms.Tensor(np.array([math.cos(1.2), math.sin(1.2)]))
    grid = [j * 0.1 for j in range(21)]
    alpha, probes = search_alpha([p], v0, v1, math.pi / 2, 1.0, grid, lambda: -(((p - target) ** 2).sum()))
    assert p.data is theta  # θ's own array, handed back
    assert alpha == pytest.approx(0.8) and [a for a, _ in probes] == grid  # 0.8·π/2 is nearest to 1.2
