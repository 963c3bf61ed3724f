"""minisam.torch: each rule of minisam/optim/ALGORITHMS.md (SAM, m-sharpness, XSAM, BatchNorm),
the closure contract, the argument checks, checkpoints and the GradScaler recipe, on torch.

Where a test needs an expected value it comes from an explicit loop written here on flat
parameter vectors with ``torch.autograd.grad`` (not from minisam.torch), or from a property
of the equations (a norm, a distance, an exact special case).
"""

import copy
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip(
    "torch", reason="minisam.torch needs the optional torch extra (pip install -e '.[torch]')"
)

import minisam.torch as mt  # noqa: E402
from minisam.checks import ArgumentError  # noqa: E402

EPS0 = 1e-12
F = torch.nn.functional


# ---- small problems ---------------------------------------------------------------------------
def mlp(seed=0, batch_norm=False, dtype=torch.float64):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(5, 8)]
    layers += [torch.nn.BatchNorm1d(8)] if batch_norm else []
    layers += [torch.nn.Tanh(), torch.nn.Linear(8, 3)]
    return torch.nn.Sequential(*layers).to(dtype)


def batch(seed=1, n=12, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g, dtype=dtype), torch.randint(0, 3, (n,), generator=g)


def closure_for(model, x, y):
    return lambda part=slice(None): F.cross_entropy(model(x[part]), y[part])


def sgd(model, lr=0.1, momentum=0.9, weight_decay=5e-3):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def gradient_at(model, vector, x, y):
    """(L, ∇L) at parameters ``vector`` on (x, y), computed on a copy of the model."""
    twin = copy.deepcopy(model)
    torch.nn.utils.vector_to_parameters(vector.clone(), twin.parameters())
    loss = F.cross_entropy(twin(x), y)
    grads = torch.autograd.grad(loss, list(twin.parameters()))
    return loss.item(), torch.cat([g.reshape(-1) for g in grads])


def reference_sam_gradient(model, x, y, rho, k=1):
    """g_k of minisam/optim/ALGORITHMS.md, from the equations on one flat vector."""
    theta = flat(model)
    point = theta.clone()
    for _ in range(k):
        _, g = gradient_at(model, point, x, y)
        point = point + (rho / k) * g / (g.norm() + EPS0)
    return gradient_at(model, point, x, y)[1]


def step_base_with(model, base, gradient):
    """The base optimizer's step at θ with ``gradient`` (a flat vector) as the gradient."""
    start = 0
    for p in model.parameters():
        p.grad = gradient[start : start + p.numel()].view_as(p).clone()
        start += p.numel()
    base.step()


# ---- minisam itself never imports torch -------------------------------------------------------
def test_import_minisam_and_minisam_optim_do_not_import_torch():
    code = "import sys, minisam, minisam.optim; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ---- SAM ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3])
def test_sam_step_is_the_base_step_with_the_gradient_at_the_ascent_point(k):
    model, x, y = mlp(), *batch()
    reference = copy.deepcopy(model)
    opt, ref_base = mt.SAM(sgd(model), rho=0.3, steps=k), sgd(reference)
    for step in range(4):
        x, y = batch(seed=step)
        g_k = reference_sam_gradient(reference, x, y, rho=0.3, k=k)
        step_base_with(reference, ref_base, g_k)
        opt.step(closure_for(model, x, y))
        torch.testing.assert_close(flat(model), flat(reference), rtol=0, atol=1e-13)


def test_sam_with_rho_0_is_exactly_the_base_optimizers_step():
    model, x, y = mlp(), *batch()
    plain = copy.deepcopy(model)
    opt, base = mt.SAM(sgd(model), rho=0.0), sgd(plain)
    for _ in range(3):
        opt.step(closure_for(model, x, y))
        base.zero_grad()
        F.cross_entropy(plain(x), y).backward()
        base.step()
    assert torch.equal(flat(model), flat(plain))


def test_sam_returns_the_loss_at_theta_and_records_its_diagnostics():
    model, x, y = mlp(), *batch()
    expected = F.cross_entropy(model(x), y).item()
    opt = mt.SAM(sgd(model), rho=0.3, steps=2)
    loss = opt.step(closure_for(model, x, y))
    assert loss.item() == expected
    d = opt.diagnostics
    assert d["loss"] == expected and len(d["grad_norms"]) == 2 and d["step"] == 0
    assert d["ascent_distance"] <= 0.3 + 1e-12  # two steps of length ρ/2: a path of length ρ
    for key in ("ascent_loss", "g0_norm", "gk_norm", "cos_psi"):
        assert math.isfinite(d[key]), key


def test_sam_restores_theta_by_copy_so_a_step_with_lr_0_changes_no_bit():
    model, x, y = mlp(), *batch()
    before = flat(model)
    mt.SAM(torch.optim.SGD(model.parameters(), lr=0.0), rho=0.7, steps=3).step(closure_for(model, x, y))
    assert torch.equal(flat(model), before)


def test_asam_scales_every_parameter_by_abs_theta_plus_eta():
    model, x, y = mlp(), *batch()
    reference = copy.deepcopy(model)
    opt = mt.SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.5, adaptive=True, eta=0.01)
    theta = flat(reference)
    _, g = gradient_at(reference, theta, x, y)
    t = theta.abs() + 0.01  # on biases too (the ASAM authors' code skips them)
    point = theta + 0.5 * t * t * g / ((t * g).norm() + EPS0)
    expected = theta - 0.1 * gradient_at(reference, point, x, y)[1]
    opt.step(closure_for(model, x, y))
    torch.testing.assert_close(flat(model), expected, rtol=0, atol=1e-13)


def test_sam_wraps_adam_like_any_other_torch_optimizer():
    model, x, y = mlp(), *batch()
    reference = copy.deepcopy(model)
    opt = mt.SAM(torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1), rho=0.2)
    ref_base = torch.optim.AdamW(reference.parameters(), lr=0.01, weight_decay=0.1)
    for _ in range(3):
        step_base_with(reference, ref_base, reference_sam_gradient(reference, x, y, rho=0.2))
        opt.step(closure_for(model, x, y))
    torch.testing.assert_close(flat(model), flat(reference), rtol=0, atol=1e-13)


# ---- m-sharpness -------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [3, 4, 6])
def test_m_sharpness_is_the_mean_of_per_micro_batch_sam_gradients_at_theta(m):
    model, x, y = mlp(), *batch(n=12)
    reference = copy.deepcopy(model)
    opt, ref_base = mt.SAM(sgd(model), rho=0.3, m=m), sgd(reference)
    for step in range(3):
        x, y = batch(seed=step, n=12)
        parts = [slice(j, j + m) for j in range(0, 12, m)]  # in order, disjoint
        per_part = [reference_sam_gradient(reference, x[s], y[s], rho=0.3) for s in parts]
        step_base_with(reference, ref_base, torch.stack(per_part).mean(0))
        losses = [F.cross_entropy(model(x[s]), y[s]).item() for s in parts]
        loss = opt.step(closure_for(model, x, y), batch_size=12)
        assert abs(loss.item() - sum(losses) / len(losses)) < 1e-14  # the mean of micro-batch losses at θ
        torch.testing.assert_close(flat(model), flat(reference), rtol=0, atol=1e-13)


def test_m_equal_to_the_batch_size_is_exactly_plain_sam():
    model, x, y = mlp(), *batch(n=12)
    twin = copy.deepcopy(model)
    mt.SAM(sgd(model), rho=0.3, m=12).step(closure_for(model, x, y), batch_size=12)
    mt.SAM(sgd(twin), rho=0.3).step(closure_for(twin, x, y))
    torch.testing.assert_close(flat(model), flat(twin), rtol=0, atol=1e-15)


def test_m_must_divide_the_batch_size_and_batch_size_is_required_only_with_m():
    model, x, y = mlp(), *batch(n=12)
    before = flat(model)
    opt = mt.SAM(sgd(model), rho=0.3, m=5)
    with pytest.raises(ValueError, match="m=5 must divide batch_size"):
        opt.step(closure_for(model, x, y), batch_size=12)
    with pytest.raises(ValueError, match="pass batch_size=B"):
        opt.step(closure_for(model, x, y))
    with pytest.raises(ValueError, match="batch_size is only for m-sharpness"):
        mt.SAM(sgd(model), rho=0.3).step(closure_for(model, x, y), batch_size=12)
    assert torch.equal(flat(model), before)


def test_batchnorm_running_statistics_come_once_per_micro_batch_from_the_passes_at_theta():
    model, x, y = mlp(batch_norm=True), *batch(n=12)
    expected = copy.deepcopy(model)
    for s in (slice(0, 4), slice(4, 8), slice(8, 12)):  # each micro-batch's pass at θ, in order
        expected(x[s])
    mt.SAM(sgd(model), rho=0.5, m=4).step(closure_for(model, x, y), batch_size=12)
    for name, buffer in expected.named_buffers():
        assert torch.equal(dict(model.named_buffers())[name], buffer), name


def test_xsam_with_m_sharpness_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="not defined for XSAM"):
        mt.XSAM(sgd(mlp()), rho=0.1, m=4)


# ---- BatchNorm ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make", [lambda b: mt.SAM(b, rho=0.5, steps=3), lambda b: mt.XSAM(b, search_every=1)]
)
def test_batchnorm_running_statistics_are_updated_only_by_the_pass_at_theta(make):
    model, x, y = mlp(batch_norm=True), *batch()
    expected = copy.deepcopy(model)
    expected(x)  # one train-mode forward at θ
    make(sgd(model)).step(closure_for(model, x, y))
    for name, buffer in expected.named_buffers():
        assert torch.equal(dict(model.named_buffers())[name], buffer), name
    assert model[1].num_batches_tracked.item() == 1


def test_frozen_batchnorm_stats_restores_them_even_when_the_block_raises():
    model, x, _ = mlp(batch_norm=True), *batch()
    before = [b.clone() for b in model.buffers()]
    with pytest.raises(KeyError), mt.frozen_batchnorm_stats():
        model(x)
        raise KeyError("boom")
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), before, strict=True))


# ---- parameters without gradient ----------------------------------------------------------------
class WithUnusedParts(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.used = mlp()
        self.unused = torch.nn.Linear(5, 5).double()  # never called
        self.frozen = torch.nn.Linear(5, 5).double()
        self.frozen.weight.requires_grad_(False)  # requires_grad=False
        self.frozen.bias.requires_grad_(False)

    def forward(self, x):
        return self.used(x + 0.0 * self.frozen(x))


@pytest.mark.parametrize(
    "make", [lambda b: mt.SAM(b, rho=0.3, steps=2), lambda b: mt.XSAM(b, search_every=1)]
)
def test_parameters_without_gradient_are_left_alone_with_no_momentum_buffer(make):
    model, x, y = WithUnusedParts(), *batch()
    untouched = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("used")}
    base = sgd(model, weight_decay=0.1)  # weight decay would move them if they took part
    opt = make(base)
    for _ in range(2):
        opt.step(closure_for(model, x, y))
    for name, p in model.named_parameters():
        if name in untouched:
            assert torch.equal(p, untouched[name]), name
            assert p.grad is None and "momentum_buffer" not in base.state.get(p, {}), name
    assert not torch.equal(model.used[0].weight, mlp()[0].weight)  # the used part did train


# ---- the closure contract and the argument checks ------------------------------------------------
def test_a_closure_that_calls_backward_itself_is_refused_and_nothing_changes():
    model, x, y = mlp(batch_norm=True), *batch()
    before, buffers = flat(model), [b.clone() for b in model.buffers()]

    def calls_backward():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="closure called backward itself"):
        mt.SAM(sgd(model)).step(calls_backward)
    assert torch.equal(flat(model), before)
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), buffers, strict=True))


def test_a_closure_must_return_a_scalar_loss_tensor():
    model, x, y = mlp(), *batch()
    with pytest.raises(TypeError, match="scalar loss tensor"):
        mt.SAM(sgd(model)).step(lambda: F.cross_entropy(model(x), y, reduction="none"))
    with pytest.raises(TypeError, match="needs a closure"):
        mt.SAM(sgd(model)).step()


def test_an_error_in_the_closure_during_the_ascent_leaves_theta_and_batchnorm_unchanged():
    model, x, y = mlp(batch_norm=True), *batch()
    before, buffers = flat(model), [b.clone() for b in model.buffers()]
    calls = []

    def fails_on_second_pass():
        calls.append(1)
        if len(calls) == 2:
            raise KeyError("data loader broke")
        return F.cross_entropy(model(x), y)

    with pytest.raises(KeyError):
        mt.SAM(sgd(model), rho=0.5).step(fails_on_second_pass)
    assert torch.equal(flat(model), before)
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), buffers, strict=True))


def test_nesting_sam_in_sam_and_non_optimizer_bases_are_refused():
    base = sgd(mlp())
    with pytest.raises(TypeError, match="nesting"):
        mt.SAM(mt.SAM(base))
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        mt.SAM([p for p in mlp().parameters()])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rho": -0.1}, "rho must be a finite number >= 0"),
        ({"rho": float("nan")}, "rho"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"steps": 2.0}, "steps must be an integer"),
        ({"adaptive": 1}, "adaptive must be True or False"),
        ({"m": 0}, "m must be an integer >= 1"),
        ({"sync_ascent": False}, "needs ddp="),
        ({"ddp": "model"}, "DistributedDataParallel"),
    ],
)
def test_sam_arguments_are_checked_with_errors_that_name_them(kwargs, message):
    with pytest.raises(ArgumentError if "must" in message else (ValueError, TypeError), match=message):
        mt.SAM(sgd(mlp()), **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rho": 0.0}, "rho must be a finite number > 0"),
        ({"rho_max": 0.0}, "rho_max must be a finite number > 0"),
        ({"alpha_step": 0.0}, "alpha_step must be a finite number > 0"),
        ({"alpha_max": -1.0}, "alpha_max must be a finite number >= 0"),
        ({"search_every": -1}, "search_every must be an integer >= 0"),
        ({"alpha": float("inf")}, "alpha must be a finite number"),
    ],
)
def test_xsam_needs_positive_rho_and_rho_max_and_checks_its_arguments(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        mt.XSAM(sgd(mlp()), **kwargs)


def test_norms_accumulate_in_float64_so_a_huge_float32_gradient_has_a_finite_norm():
    huge = [torch.full((4,), 1e19, dtype=torch.float32), torch.full((3,), -1e19, dtype=torch.float32)]
    assert math.isclose(mt.sam.norm(huge), math.sqrt(7) * 1e19, rel_tol=1e-6)
    assert math.isclose(mt.sam.dot(huge, huge), 7e38, rel_tol=1e-6)  # above float32's 3.4e38


def test_a_non_finite_gradient_without_a_scaler_is_an_error_and_changes_nothing():
    model, x, y = mlp(batch_norm=True), *batch()
    before, buffers = flat(model), [b.clone() for b in model.buffers()]
    with pytest.raises(mt.NonFiniteGradient, match="not finite"):
        mt.SAM(sgd(model)).step(lambda: F.cross_entropy(model(x), y) * float("inf"))
    assert torch.equal(flat(model), before)
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), buffers, strict=True))


# ---- XSAM --------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3])
def test_xsam_with_alpha_fixed_at_1_equals_sam_for_k_1_and_k_3(k):
    results = []
    for make in (
        lambda b: mt.SAM(b, rho=0.3, steps=k),
        lambda b: mt.XSAM(b, rho=0.3, steps=k, search_every=0),
    ):
        model, x, y = mlp(), *batch()
        opt = make(sgd(model))
        for _ in range(4):
            opt.step(closure_for(model, x, y))
        results.append(flat(model))
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=1e-12)


def test_xsam_alpha_0_with_k_1_gives_norm_g1_times_g0_over_norm_g0():
    model, x, y = mlp(), *batch()
    theta = flat(model)
    _, g0 = gradient_at(model, theta, x, y)
    g1 = reference_sam_gradient(model, x, y, rho=0.3)
    mt.XSAM(torch.optim.SGD(model.parameters(), lr=1.0), rho=0.3, alpha=0.0, search_every=0).step(
        closure_for(model, x, y)
    )
    # to rounding and to ε₀: v₀ = (ϑ₁ − θ)/(‖ϑ₁ − θ‖ + ε₀) with ‖ϑ₁ − θ‖ = ρ differs from g₀/‖g₀‖ by a
    # relative ε₀/ρ ≈ 3e-12 (minisam/optim/ALGORITHMS.md: the ε₀ guards are part of the contract)
    torch.testing.assert_close(flat(model), theta - g1.norm() * g0 / g0.norm(), rtol=0, atol=1e-11)


@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0, 1.7, 2.0])
def test_xsam_update_has_the_norm_of_g_k_for_every_alpha(alpha):
    model, x, y = mlp(), *batch()
    theta = flat(model)
    g_k = reference_sam_gradient(model, x, y, rho=0.3, k=2)
    opt = mt.XSAM(torch.optim.SGD(model.parameters(), lr=1.0), rho=0.3, steps=2, alpha=alpha, search_every=0)
    opt.step(closure_for(model, x, y))
    # v(α) = a·v₀ + b·v₁ is a unit vector up to the ε₀ guards: ‖v₀‖ = 1 − ε₀/(‖ϑ_k − θ‖ + ε₀), and
    # ‖v₁‖ likewise, so ‖v(α)‖ is 1 within (|a| + |b|)·(ε₀/‖ϑ_k − θ‖ + ε₀/‖g_k‖), plus rounding
    psi, g_norm = opt.diagnostics["psi"], g_k.norm().item()
    a, b = math.sin((1 - alpha) * psi) / math.sin(psi), math.sin(alpha * psi) / math.sin(psi)
    bound = g_norm * ((abs(a) + abs(b)) * (EPS0 / opt.diagnostics["ascent_distance"] + EPS0 / g_norm) + 1e-14)
    assert abs((theta - flat(model)).norm().item() - g_k.norm().item()) <= bound


def test_xsam_probes_lie_at_distance_rho_max_and_the_search_keeps_the_largest_loss():
    model, x, y = mlp(), *batch()
    theta = flat(model)
    distances = []

    def closure():
        if not torch.is_grad_enabled():  # a probe: no gradient needed
            distances.append((flat(model) - theta).norm().item())
        return F.cross_entropy(model(x), y)

    opt = mt.XSAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.2, rho_max=0.6, search_every=1)
    opt.step(closure)
    # at distance ρ_max up to the ε₀ guards in v₀ and v₁ (|a| + |b| ≤ 3 for α in [0, 2], as in the test above)
    d = opt.diagnostics
    bound = 0.6 * 3 * (EPS0 / d["ascent_distance"] + EPS0 / d["gk_norm"]) + 1e-14
    assert len(distances) == 21 and max(abs(r - 0.6) for r in distances) <= bound
    probes = opt.diagnostics["probe_losses"]
    assert [a for a, _ in probes] == pytest.approx([j / 10 for j in range(21)], abs=1e-15)
    best = max(loss for _, loss in probes)
    assert opt.alpha == min(a for a, loss in probes if loss == best) == opt.diagnostics["alpha"]


def test_xsam_searches_on_steps_0_n_2n_and_never_with_n_0():
    model, x, y = mlp(), *batch()
    opt = mt.XSAM(sgd(model), search_every=3)
    searched = []
    for _ in range(7):
        opt.step(closure_for(model, x, y))
        searched.append(opt.diagnostics["searched"])
    assert searched == [True, False, False, True, False, False, True]
    opt = mt.XSAM(sgd(model), search_every=0, alpha=0.7)
    for _ in range(3):
        opt.step(closure_for(model, x, y))
        assert not opt.diagnostics["searched"] and opt.alpha == 0.7


def test_xsam_grid_has_21_points_by_default_and_never_exceeds_alpha_max():
    assert mt.XSAM(sgd(mlp())).alpha_grid == pytest.approx([j / 10 for j in range(21)], abs=1e-15)
    assert mt.XSAM(sgd(mlp()), alpha_max=0.26).alpha_grid == pytest.approx([0.0, 0.1, 0.2])
    assert mt.XSAM(sgd(mlp()), alpha_max=0.3).alpha_grid == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_xsam_ties_keep_the_smallest_alpha():
    assert mt.xsam.search_alpha([(0.0, 1.0), (0.1, 2.0), (0.2, 2.0), (0.3, float("nan"))]) == 0.1
    assert mt.xsam.search_alpha([(0.0, 3.0), (0.1, 3.0)]) == 0.0


def test_xsam_clamps_psi_so_parallel_v0_and_v1_in_float32_give_no_nan_and_v1():
    """A linear loss has the same gradient everywhere, so v₀ = v₁ and ⟨v₀, v₁⟩ rounds to
    1 ± a few ulps in float32: the authors' unclamped arccos gives NaN in such cases."""
    for seed in range(20):
        torch.manual_seed(seed)
        w = torch.nn.Parameter(torch.randn(1000, dtype=torch.float32))
        c = torch.randn(1000, dtype=torch.float32)
        before = w.detach().clone()
        opt = mt.XSAM(torch.optim.SGD([w], lr=1.0), rho=0.05, search_every=1)
        opt.step(lambda: (w * c).sum())
        assert math.isfinite(opt.diagnostics["psi"]) and torch.isfinite(w).all()
        assert opt.diagnostics["psi"] < 1e-3
        torch.testing.assert_close(before - w.detach(), c, rtol=1e-5, atol=1e-6)  # ‖c‖·v₁ = c


# ---- checkpoints ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make", [lambda b: mt.SAM(b, rho=0.3, steps=2), lambda b: mt.XSAM(b, search_every=2)]
)
def test_resuming_from_a_saved_state_dict_gives_bit_identical_training(tmp_path, make):
    data = [batch(seed=s) for s in range(6)]
    model = mlp(batch_norm=True)
    opt = make(sgd(model))
    for x, y in data:
        opt.step(closure_for(model, x, y))
    straight = flat(model)

    model = mlp(batch_norm=True)
    opt = make(sgd(model))
    for x, y in data[:3]:
        opt.step(closure_for(model, x, y))
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    saved = torch.load(tmp_path / "ckpt.pt")
    model = mlp(seed=9, batch_norm=True)
    model.load_state_dict(saved["model"])
    opt = make(sgd(model, lr=0.5))  # settings and state come from the checkpoint
    opt.load_state_dict(saved["opt"])
    for x, y in data[3:]:
        opt.step(closure_for(model, x, y))
    assert torch.equal(flat(model), straight)


def test_a_bad_state_dict_is_refused_naming_the_key_and_changes_nothing():
    opt = mt.XSAM(sgd(mlp()), search_every=5)
    good = opt.state_dict()
    with pytest.raises(KeyError, match="missing keys \\['alpha'\\]"):
        opt.load_state_dict({k: v for k, v in good.items() if k != "alpha"})
    with pytest.raises(ArgumentError, match="search_every"):
        opt.load_state_dict({**good, "search_every": -3, "rho": 0.2})
    assert opt.search_every == 5 and opt.rho == 0.05


# ---- mixed precision: the GradScaler recipe --------------------------------------------------------
@pytest.mark.parametrize(
    "make", [lambda b: mt.SAM(b, rho=0.3, steps=2), lambda b: mt.XSAM(b, search_every=2)]
)
def test_with_a_gradscaler_the_step_equals_the_unscaled_step(make):
    """S is a power of two, so S·g and its unscaling are exact: the same trajectory."""
    results = []
    for scaler in (None, torch.amp.GradScaler("cpu", init_scale=2.0**12)):
        model = mlp(batch_norm=True)
        opt = make(sgd(model))
        for s in range(4):
            x, y = batch(seed=s)
            opt.step(closure_for(model, x, y), scaler=scaler)
            if scaler is not None:
                scaler.update()
        results.append(flat(model))
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("make", [lambda b: mt.SAM(b, rho=0.3), lambda b: mt.XSAM(b, search_every=1)])
def test_an_overflowing_step_under_a_gradscaler_is_skipped_and_the_scale_backs_off(make):
    model, x, y = mlp(batch_norm=True), *batch()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    base = sgd(model)
    opt = make(base)
    opt.step(closure_for(model, x, y), scaler=scaler)
    scaler.update()
    before, buffers = flat(model), [b.clone() for b in model.buffers()]
    momentum = [base.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    opt.step(lambda: F.cross_entropy(model(x), y) * float("inf"), scaler=scaler)
    scaler.update()
    assert torch.equal(flat(model), before)
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), buffers, strict=True))
    assert all(
        torch.equal(base.state[p]["momentum_buffer"], b)
        for p, b in zip(model.parameters(), momentum, strict=True)
    )
    assert opt.diagnostics["skipped"] and opt.step_count == 1
    assert scaler.get_scale() == 2.0**9


def test_with_m_an_overflow_in_a_later_micro_batch_skips_the_whole_step_and_undoes_batchnorm():
    model, x, y = mlp(batch_norm=True), *batch(n=12)
    before, buffers = flat(model), [b.clone() for b in model.buffers()]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)

    def closure(part=slice(None)):
        loss = F.cross_entropy(model(x[part]), y[part])
        return loss * float("inf") if part.start == 4 else loss  # the second micro-batch overflows

    opt = mt.SAM(sgd(model), rho=0.3, m=4)
    loss = opt.step(closure, batch_size=12, scaler=scaler)
    scaler.update()
    assert torch.equal(flat(model), before)
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), buffers, strict=True))
    assert opt.diagnostics["skipped"] and loss.item() == float("inf") and scaler.get_scale() == 2.0**9


def test_the_autocast_and_gradscaler_recipe_in_bfloat16_on_the_cpu_takes_the_unscaled_steps():
    """The recipe of README.md: autocast inside the closure, ``step(closure, scaler=scaler)``,
    then ``scaler.update()``. Its steps are those of the same autocast loop without a scaler
    (the scale is a power of two), none is skipped, and the loss goes down."""
    x, y = batch(n=64, dtype=torch.float32)
    results = []
    for scaler in (torch.amp.GradScaler("cpu"), None):
        model = mlp(dtype=torch.float32)
        opt = mt.XSAM(sgd(model, lr=0.2), rho=0.05, search_every=5)

        def closure():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return F.cross_entropy(model(x), y)

        losses = []
        for _ in range(10):
            losses.append(opt.step(closure, scaler=scaler).item())
            assert not opt.diagnostics["skipped"]
            if scaler is not None:
                scaler.update()
        assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
        results.append(flat(model))
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-6)


# ---- devices -------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_on_cuda_the_step_equals_the_cpu_step_in_float64():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here (torch.cuda.is_available() is False)")
    results = []
    for device in ("cpu", "cuda"):
        model, (x, y) = mlp().to(device), batch()
        opt = mt.XSAM(sgd(model), rho=0.2, steps=2, search_every=2)
        for _ in range(3):
            opt.step(closure_for(model, x.to(device), y.to(device)))
        results.append(flat(model).cpu())
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=1e-12)
