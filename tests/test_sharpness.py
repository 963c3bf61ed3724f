"""Sharpness measurements against answers known in closed form (quadratics) or by brute force."""

import numpy as np
import pytest

import minisam as ms
import minisam.functional as F
from minisam import nn, sharpness
from minisam.landscapes import Quadratic


def theta_of(values):
    return ms.Tensor(np.asarray(values, np.float64), requires_grad=True, dtype=np.float64)


def quadratic_problem(eigenvalues, start, seed=0, center=None):
    surface = Quadratic.from_eigenvalues(eigenvalues, seed=seed, center=center)
    theta = theta_of(start)
    return surface, theta, (lambda: surface.loss(theta))


# ---- λ_max ----------------------------------------
def test_top_hessian_eigenvalue_of_a_known_hessian_to_1e_6():
    ms.manual_seed(0)
    surface, theta, closure = quadratic_problem([10.0, 3.0, 1.0, 0.5, -0.2], start=np.ones(5))
    lam, vec = sharpness.top_hessian_eigenvalue(closure, [theta], iters=100, return_vector=True)
    assert abs(lam - 10.0) < 1e-6
    assert abs(abs(float(vec[0] @ surface.top_eigenvector)) - 1.0) < 1e-6


def test_top_hessian_eigenvalue_on_a_non_quadratic_landscape_matches_its_hessian():
    from minisam.landscapes import SharpFlat2D

    ms.manual_seed(1)
    surface = SharpFlat2D()
    theta = theta_of(surface.minimum("sharp").point + 0.05)
    lam = sharpness.top_hessian_eigenvalue(lambda: surface.loss(theta), [theta], iters=200, tol=1e-12)
    expected = np.linalg.eigvalsh(surface.hessian(theta.numpy()))[-1]
    assert abs(lam - expected) < 1e-4 * abs(expected)


def test_hessian_vector_product_is_exact_on_a_quadratic():
    surface, theta, closure = quadratic_problem([4.0, 2.0, 1.0], start=[0.3, -0.2, 0.1])
    v = np.array([1.0, 2.0, -1.0])
    (hv,) = sharpness.hessian_vector_product(closure, [theta], [v])
    np.testing.assert_allclose(hv, surface.H @ v, rtol=1e-8, atol=1e-8)


# ---- the worst loss in the ρ-ball --------------------------------------------------------------
def test_worst_case_loss_at_the_minimum_is_half_rho_squared_lambda_max():
    ms.manual_seed(0)
    rho = 0.3
    surface, theta, closure = quadratic_problem([5.0, 2.0, 0.5], start=np.zeros(3))
    worst = sharpness.worst_case_loss(closure, [theta], rho=rho, steps=60, restarts=4)
    assert abs(worst.value - 0.5 * rho**2 * 5.0) < 1e-6
    assert abs(np.linalg.norm(worst.epsilon[0]) - rho) < 1e-9  # on the sphere
    assert worst.loss == 0.0 and worst.sharpness == worst.value


def test_worst_case_loss_away_from_the_minimum_matches_an_exhaustive_search_on_the_circle():
    ms.manual_seed(0)
    rho = 0.5
    surface, theta, closure = quadratic_problem([6.0, 1.0], start=[0.4, -0.3], seed=3)
    worst = sharpness.worst_case_loss(closure, [theta], rho=rho, steps=60, restarts=3)
    # a convex loss takes its maximum over the ball on the sphere: search the circle finely
    angles = np.linspace(0, 2 * np.pi, 200_001)
    circle = theta.numpy()[None, :] + rho * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    brute = 0.5 * np.einsum("ni,ij,nj->n", circle, surface.H, circle).max()
    assert abs(worst.value - brute) < 1e-6
    assert (
        worst.value
        >= surface.value(
            theta.numpy()
            + rho * surface.gradient(theta.numpy()) / np.linalg.norm(surface.gradient(theta.numpy()))
        )
        - 1e-12
    )


def test_worst_case_loss_restores_parameters_and_gradients_exactly():
    ms.manual_seed(0)
    surface, theta, closure = quadratic_problem([3.0, 1.0], start=[0.1234567, -0.7654321])
    before = theta.data.copy()
    marker = np.array([7.0, 8.0])
    theta.grad = marker
    sharpness.worst_case_loss(closure, [theta], rho=0.2)
    sharpness.top_hessian_eigenvalue(closure, [theta], iters=5)
    sharpness.grad_plane(closure, [theta], rho=0.2)
    sharpness.loss_slice_2d(closure, [theta], [np.ones(2)], [np.ones(2)], [0.5], [0.5])
    assert np.array_equal(theta.data, before)  # bit for bit
    assert theta.grad is marker


@pytest.mark.parametrize("bad", [dict(rho=0), dict(rho=0.1, steps=-1), dict(rho=0.1, restarts=0)])
def test_worst_case_loss_bad_arguments(bad):
    _, theta, closure = quadratic_problem([1.0, 1.0], start=[0.0, 0.0])
    with pytest.raises(ValueError, match=next(iter(k for k in ("restarts", "steps", "rho") if k in bad))):
        sharpness.worst_case_loss(closure, [theta], **bad)


# ---- direction probes ----------------------------------------
def test_cosine_to_maximum_is_one_for_the_top_eigenvector_at_a_minimum():
    ms.manual_seed(2)
    surface, theta, closure = quadratic_problem([8.0, 2.0, 1.0], start=np.zeros(3), seed=5)
    worst = sharpness.worst_case_loss(closure, [theta], rho=0.1, steps=80, restarts=3)
    top = surface.top_eigenvector
    assert abs(abs(sharpness.cosine_to_maximum([top], worst)) - 1.0) < 1e-6
    bottom = surface.eigenvectors[:, 0]
    assert abs(sharpness.cosine_to_maximum([bottom], worst.epsilon)) < 1e-3


def test_gradient_at_the_ascent_point_points_closer_to_the_maximum_on_a_skewed_quadratic():
    # the paper's Fig. 1a claim in its simplest setting: g1 turns g0 towards the top eigenvector
    ms.manual_seed(0)
    surface, theta, closure = quadratic_problem([10.0, 1.0], start=[0.0, 0.0], seed=0, center=[-0.2, -0.6])
    worst = sharpness.worst_case_loss(closure, [theta], rho=0.3, steps=60, restarts=3)
    plane = sharpness.grad_plane(closure, [theta], rho=0.3)
    assert sharpness.cosine_to_maximum(plane.g1, worst) > sharpness.cosine_to_maximum(plane.g0, worst)


# ---- the g0/g1 plane ----------------------------------------
def test_grad_plane_basis_is_orthonormal_and_spans_g0_and_g1():
    surface, theta, closure = quadratic_problem([5.0, 1.0, 0.3], start=[0.2, 0.1, -0.4], seed=1)
    plane = sharpness.grad_plane(closure, [theta], rho=0.2)
    e1, e2 = plane.e1[0], plane.e2[0]
    assert abs(e1 @ e1 - 1) < 1e-12 and abs(e2 @ e2 - 1) < 1e-12 and abs(e1 @ e2) < 1e-12
    x = theta.numpy()
    g0 = surface.H @ (x - surface.center)
    g1 = surface.H @ (x + 0.2 * g0 / np.linalg.norm(g0) - surface.center)
    np.testing.assert_allclose(plane.g0[0], g0, rtol=1e-12)
    np.testing.assert_allclose(plane.g1[0], g1, rtol=1e-12)
    a, b = plane.g1_coords
    np.testing.assert_allclose(a * e1 + b * e2, g1, rtol=1e-10)
    assert abs(plane.cos_g0_g1 - g0 @ g1 / np.linalg.norm(g0) / np.linalg.norm(g1)) < 1e-12


def test_circle_losses_finds_the_maximiser_of_a_quadratic_at_its_minimum():
    surface, theta, closure = quadratic_problem([4.0, 1.0], start=[0.0, 0.0], seed=2)
    angles, losses = sharpness.circle_losses(
        closure, [theta], [np.array([1.0, 0.0])], [np.array([0.0, 1.0])], rho=0.5, num=3600
    )
    best = np.array([np.cos(angles[losses.argmax()]), np.sin(angles[losses.argmax()])])
    assert abs(abs(best @ surface.top_eigenvector) - 1) < 1e-5
    assert abs(losses.max() - 0.5 * 0.25 * 4.0) < 1e-5


# ---- slices and filter normalisation ----------------------------------------
def test_slices_at_zero_equal_the_loss_and_follow_the_quadratic():
    surface, theta, closure = quadratic_problem([2.0, 1.0], start=[0.3, 0.4], seed=4)
    d1, d2 = np.array([1.0, 0.0]), np.array([0.3, -1.0])
    alphas = np.array([-1.0, 0.0, 0.5])
    line = sharpness.loss_slice_1d(closure, [theta], [d1], alphas)
    assert line[1] == surface.value(theta.numpy())
    np.testing.assert_allclose(line, [surface.value(theta.numpy() + a * d1) for a in alphas], rtol=1e-12)
    betas = np.array([0.0, 2.0])
    Z = sharpness.loss_slice_2d(closure, [theta], [d1], [d2], alphas, betas)
    assert Z.shape == (2, 3) and Z[0, 1] == surface.value(theta.numpy())
    assert abs(Z[1, 2] - surface.value(theta.numpy() + 0.5 * d1 + 2.0 * d2)) < 1e-12


def test_filter_normalized_direction_matches_each_filter_norm_and_zeroes_1d_params():
    ms.manual_seed(0)
    weight = ms.Tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)), requires_grad=True)
    linear = ms.Tensor(np.random.default_rng(1).standard_normal((5, 7)) * 3, requires_grad=True)
    bias = ms.Tensor(np.ones(4), requires_grad=True)
    d_weight, d_linear, d_bias = sharpness.filter_normalized_direction([weight, linear, bias])
    for d, p in ((d_weight, weight), (d_linear, linear)):
        rows_d = np.linalg.norm(d.reshape(len(d), -1), axis=1)
        rows_p = np.linalg.norm(p.numpy().reshape(len(d), -1), axis=1)
        np.testing.assert_allclose(rows_d, rows_p, rtol=1e-5)
        assert d.shape == p.shape and d.dtype == p.dtype
    assert np.all(d_bias == 0)
    ms.manual_seed(0)
    again = sharpness.filter_normalized_direction([weight, linear, bias])
    assert np.array_equal(again[0], d_weight)  # seeded by the library generator


def test_direction_of_the_wrong_shape_is_a_clear_error():
    _, theta, closure = quadratic_problem([1.0, 1.0], start=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)"):
        sharpness.loss_slice_1d(closure, [theta], [np.ones(3)], [0.0])


def test_lambda_max_of_a_relu_network_does_not_depend_on_dtype_or_step():
    """ReLU kinks: a finite-difference step that crosses a kink adds a spurious gradient jump.
    Computed in float64 with a small step, the float32 and float64 copies of one trained
    network agree, and the float32 parameters come back untouched and still float32."""
    from minisam import models

    gen = np.random.default_rng(0)
    x, y = gen.standard_normal((256, 10)), gen.integers(0, 3, 256)
    estimates, previous = [], ms.get_default_dtype()
    try:
        for dtype in (np.float32, np.float64):
            ms.set_default_dtype(dtype)
            ms.manual_seed(0)
            model = models.MLP([10, 64, 64, 3])
            inputs, targets = ms.Tensor(x), ms.Tensor(y)
            params = list(model.parameters())
            before = [p.data.copy() for p in params]
            ms.manual_seed(1)
            estimates.append(
                sharpness.top_hessian_eigenvalue(
                    lambda: F.cross_entropy(model(inputs), targets), params, iters=40
                )
            )
            for p, b in zip(params, before, strict=True):
                assert p.dtype == dtype and np.array_equal(p.data, b)
    finally:
        ms.set_default_dtype(previous)
    assert estimates[0] > 0
    assert estimates[0] == pytest.approx(estimates[1], rel=1e-5)


def test_hessian_vector_product_holds_the_relu_pattern_of_theta_at_a_kink():
    """L(w) = 3·relu(w·x) + ½‖w‖² with w·x = 0 exactly: the gradient jumps across the kink,
    and without the held pattern (g(θ+εv) − g(θ−εv))/2ε would grow like 1/ε along x.
    The pattern is held by ReLU layers (nn.ReLU), which is what every model uses."""
    x = ms.Tensor([1.0, -1.0], dtype=np.float64)
    w = ms.Tensor([0.5, 0.5], requires_grad=True, dtype=np.float64)
    relu = nn.ReLU()

    def closure():
        return 3.0 * relu((w * x).sum()) + 0.5 * (w * w).sum()

    along_x = [np.array([1.0, -1.0]) / np.sqrt(2)]
    for step in (1e-4, 1e-6, 1e-8):
        product = sharpness.hessian_vector_product(closure, [w], along_x, eps=step)
        np.testing.assert_allclose(product[0], along_x[0], rtol=1e-6, err_msg=f"step {step}")
    np.testing.assert_array_equal(w.data, [0.5, 0.5])


def test_relu_pattern_freeze_lives_in_the_layer_not_in_the_autograd_core():
    """Outside a measurement nn.ReLU is plain relu; inside frozen_relu_pattern it replays the
    masks recorded in the first pass, whatever its input is later; F.relu is never affected."""
    relu = nn.ReLU()
    first, later = ms.Tensor([1.0, -1.0, 2.0]), ms.Tensor([-3.0, 4.0, 5.0])
    np.testing.assert_array_equal(relu(later).numpy(), [0.0, 4.0, 5.0])
    with sharpness.frozen_relu_pattern() as pattern:
        relu(first)
        pattern.replay()
        np.testing.assert_array_equal(relu(later).numpy(), [-3.0, 0.0, 5.0])  # first's on/off
        np.testing.assert_array_equal(F.relu(later).numpy(), [0.0, 4.0, 5.0])
        with pytest.raises(RuntimeError, match="other ReLU layers"):
            relu(later)  # the first pass had one ReLU call, this is a second
    np.testing.assert_array_equal(relu(later).numpy(), [0.0, 4.0, 5.0])  # switched off again
    assert not hasattr(ms.tensor, "relu_mask_hook")


def test_rho_accepts_numpy_numbers_and_refuses_booleans_like_every_minisam_argument():
    _, theta, closure = quadratic_problem([2.0, 1.0], start=[0.3, 0.1])
    worst = sharpness.worst_case_loss(closure, [theta], rho=np.float32(0.05), steps=2, restarts=1)
    assert worst.value > worst.loss
    for measure in (sharpness.worst_case_loss, sharpness.grad_plane):
        with pytest.raises(ValueError, match="rho must be a finite number > 0, got True"):
            measure(closure, [theta], rho=True)
    with pytest.raises(TypeError, match="iters must be an integer >= 1, got 2.0"):
        sharpness.top_hessian_eigenvalue(closure, [theta], iters=2.0)


def test_a_bad_argument_changes_nothing():
    _, theta, closure = quadratic_problem([2.0, 1.0], start=[0.3, 0.1])
    data, marker = theta.data, np.array([1.0, 2.0])
    theta.grad = marker
    with pytest.raises(ValueError):
        sharpness.worst_case_loss(closure, [theta], rho=-1.0)
    with pytest.raises(ValueError):
        sharpness.loss_slice_1d(closure, [theta], [np.ones(3)], [0.0])
    assert theta.data is data and theta.grad is marker


def test_measurements_leave_batchnorm_running_statistics_alone():
    """Probing a model must not change it: the ascent and slice passes run in train mode,
    but BatchNorm's running mean and variance come back exactly as they were."""
    ms.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    gen = np.random.default_rng(0)
    x, y = ms.Tensor(gen.standard_normal((16, 4))), gen.integers(0, 3, 16)
    params = list(model.parameters())
    before = {k: v.copy() for k, v in model.state_dict().items()}
    closure = lambda: F.cross_entropy(model(x), y)  # noqa: E731
    sharpness.worst_case_loss(closure, params, rho=0.1, steps=3, restarts=2)
    sharpness.top_hessian_eigenvalue(closure, params, iters=3)
    sharpness.loss_slice_1d(closure, params, sharpness.filter_normalized_direction(params), [-1.0, 1.0])
    for key, value in model.state_dict().items():
        assert np.array_equal(value, before[key]), key


def test_a_closure_that_calls_backward_itself_is_refused():
    _, theta, closure = quadratic_problem([2.0, 1.0], start=[0.3, 0.1])

    def calls_backward():
        loss = closure()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="called backward itself"):
        sharpness.worst_case_loss(calls_backward, [theta], rho=0.1)
