"""SGD, Adam and AdamW against hand computations (minisam/optim/ALGORITHMS.md, section SGD
and "Adam and AdamW"), their argument checks, and the learning-rate schedules against closed forms."""

import math

import numpy as np
import pytest
from helpers import assert_same_state, hand_adam

import minisam as ms
from minisam import nn, optim

GRADIENTS = [np.array(g) for g in ([1.0, -2.0], [0.5, 0.25], [-1.5, 3.0], [2.0, 0.0])]


def _hand_sgd(theta, lr, momentum, dampening, weight_decay, nesterov):
    """PyTorch's SGD, written out for one parameter over the fixed GRADIENTS."""
    theta, buf, path = np.array(theta, dtype=float), None, []
    for g in GRADIENTS:
        d = g + weight_decay * theta
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        theta = theta - lr * d
        path.append(theta)
    return path


@pytest.mark.parametrize(
    "momentum, dampening, weight_decay, nesterov",
    [
        (0.0, 0.0, 0.0, False),
        (0.9, 0.0, 0.0, False),
        (0.9, 0.0, 0.0, True),
        (0.0, 0.0, 0.1, False),
        (0.9, 0.0, 0.1, True),
        (0.8, 0.3, 0.05, False),
    ],
    ids=["plain", "momentum", "nesterov", "weight-decay", "nesterov+wd", "dampening+wd"],
)
def test_sgd_momentum_nesterov_weight_decay_and_dampening_match_a_hand_computation(
    float64, momentum, dampening, weight_decay, nesterov
):
    p = nn.Parameter(np.array([0.3, -0.7]))
    opt = optim.SGD(
        [p], lr=0.1, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov
    )
    expected = _hand_sgd([0.3, -0.7], 0.1, momentum, dampening, weight_decay, nesterov)
    for g, want in zip(GRADIENTS, expected, strict=True):
        p.grad = g.copy()
        assert opt.step() is None  # no closure: steps on the gradients already present
        np.testing.assert_allclose(p.numpy(), want, rtol=1e-14, atol=1e-15)


def test_sgd_first_momentum_buffer_is_a_copy_not_the_gradient_itself(float64):
    p = nn.Parameter(np.array([1.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.array([1.0])
    opt.step()
    p.grad[...] = 100.0  # changing the gradient afterwards must not touch the buffer
    assert opt.momentum_buffers[0][0] == 1.0


def test_sgd_step_with_closure_zeroes_gradients_calls_backward_and_returns_the_loss(float64):
    p = nn.Parameter(np.array([2.0, -1.0]))
    p.grad = np.array([50.0, 50.0])  # stale: must be zeroed first
    loss = optim.SGD([p], lr=0.25).step(lambda: (p * p).sum())
    assert loss.item() == 5.0
    np.testing.assert_allclose(p.numpy(), [2.0 - 0.25 * 4.0, -1.0 + 0.25 * 2.0])


def test_sgd_leaves_parameters_without_gradient_alone(float64):
    a, b = nn.Parameter(np.array([1.0])), nn.Parameter(np.array([2.0]))
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9, weight_decay=0.1)
    a.grad = np.array([1.0])
    opt.step()
    assert b.numpy()[0] == 2.0 and opt.momentum_buffers[1] is None


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"lr": -0.1}, "lr"),
        ({"lr": "fast"}, "lr"),
        ({"lr": 0.1, "momentum": -0.5}, "momentum"),
        ({"lr": 0.1, "weight_decay": -1}, "weight_decay"),
        ({"lr": 0.1, "nesterov": True}, "nesterov"),
        ({"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "nesterov"),
    ],
)
def test_sgd_rejects_invalid_hyper_parameters_with_a_clear_error(kwargs, word):
    with pytest.raises(ValueError, match=word):
        optim.SGD([nn.Parameter(np.zeros(2))], **kwargs)


def test_optimizer_rejects_empty_duplicate_or_non_trainable_parameters():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="requires_grad"):
        optim.SGD([ms.Tensor(np.zeros(2))], lr=0.1)


def _steps_on_gradients(make, n, start=None, state=None):
    """n steps of ``make([p])`` on the first n of GRADIENTS, or, given a start point and a
    state to resume from, on the last n; returns the parameter and the optimizer's state."""
    p = nn.Parameter(np.array([0.3, -0.7]) if start is None else start)
    opt = make([p])
    if state is not None:
        opt.load_state_dict(state)
    for g in GRADIENTS[:n] if start is None else GRADIENTS[-n:]:
        p.grad = g.copy()
        opt.step()
    return p.numpy(), opt.state_dict()


def test_sgd_state_dict_resumes_momentum_exactly(float64):
    def run(n, start=None, state=None):
        def make(ps):
            return optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)

        return _steps_on_gradients(make, n, start, state)

    straight, _ = run(4)
    half, state = run(2)
    resumed, _ = run(2, start=half, state=state)
    assert np.array_equal(straight, resumed)
    assert state["nesterov"] is True and state["lr"] == 0.1


def test_sgd_load_state_dict_checks_everything_before_changing_anything():
    p = nn.Parameter(np.zeros(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    good = optim.SGD([p], lr=0.5, momentum=0.5).state_dict()
    with pytest.raises(ValueError, match="momentum_buffers"):
        opt.load_state_dict(dict(good, momentum_buffers=[np.zeros(2)]))
    with pytest.raises(KeyError, match="lr"):
        opt.load_state_dict({k: v for k, v in good.items() if k != "lr"})
    with pytest.raises(KeyError, match="surprise"):
        opt.load_state_dict(dict(good, surprise=1))
    assert opt.lr == 0.1 and opt.momentum == 0.9


# ---- schedules ---------------------------------------------------------------------------
def _sgd(lr=0.1):
    return optim.SGD([nn.Parameter(np.zeros(2))], lr=lr)


def test_step_lr_follows_lr0_times_gamma_to_the_floor_of_t_over_step_size():
    opt = _sgd(0.1)
    sched = optim.StepLR(opt, step_size=3, gamma=0.5)
    lrs = [opt.lr]
    for _ in range(10):
        sched.step()
        lrs.append(opt.lr)
    assert lrs == pytest.approx([0.1 * 0.5 ** (t // 3) for t in range(11)], rel=1e-15)


def test_cosine_annealing_follows_the_closed_form_from_lr0_to_eta_min():
    opt = _sgd(0.2)
    sched = optim.CosineAnnealingLR(opt, T_max=8, eta_min=0.01)
    lrs = [opt.lr]
    for _ in range(8):
        sched.step()
        lrs.append(sched.get_last_lr())
    expected = [0.01 + (0.2 - 0.01) * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(9)]
    assert lrs == pytest.approx(expected, rel=1e-14)
    assert lrs[0] == 0.2 and lrs[-1] == pytest.approx(0.01)


@pytest.mark.parametrize("wrapper", [optim.SAM, optim.XSAM])
def test_schedulers_drive_sam_and_xsam_through_the_base_lr(wrapper):
    base = _sgd(0.1)
    opt = wrapper(base)
    sched = optim.CosineAnnealingLR(opt, T_max=4)
    for _ in range(2):
        sched.step()
    assert base.lr == pytest.approx(0.05) and opt.lr == base.lr


def test_scheduler_state_dict_resumes_the_schedule():
    opt = _sgd(0.1)
    sched = optim.StepLR(opt, step_size=2, gamma=0.1)
    for _ in range(3):
        sched.step()
    state = sched.state_dict()
    assert state["last_epoch"] == 3 and isinstance(state["last_epoch"], int)
    opt2 = _sgd(0.1)
    sched2 = optim.StepLR(opt2, step_size=5, gamma=0.9)
    sched2.load_state_dict(state)
    sched.step()
    sched2.step()
    assert opt2.lr == opt.lr == pytest.approx(0.001)
    with pytest.raises(KeyError, match="gamma"):
        sched2.load_state_dict({k: v for k, v in state.items() if k != "gamma"})


@pytest.mark.parametrize(
    "make",
    [
        lambda o: optim.StepLR(o, step_size=0),
        lambda o: optim.CosineAnnealingLR(o, T_max=0),
        lambda o: optim.CosineAnnealingLR(o, T_max=5, eta_min=-1),
    ],
)
def test_schedulers_reject_invalid_settings(make):
    with pytest.raises(ValueError):
        make(_sgd())


@pytest.mark.parametrize(
    "kwargs", [{"gamma": math.inf}, {"gamma": math.nan}, {"gamma": 0.0}, {"step_size": 2.0}], ids=str
)
def test_step_lr_refuses_infinite_nan_zero_gamma_and_fractional_step_size(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        optim.StepLR(_sgd(), **{"step_size": 2, **kwargs})


def test_scheduler_load_state_dict_checks_everything_before_changing_anything():
    sched = optim.StepLR(_sgd(0.1), step_size=2, gamma=0.5)
    good = sched.state_dict()
    for bad in (dict(good, gamma=math.nan), dict(good, last_epoch=1.5), dict(good, base_lr=-1.0)):
        with pytest.raises(ValueError):
            sched.load_state_dict(bad)
        assert sched.state_dict() == good


# ---- hardening of SGD ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lr", "momentum", "dampening", "weight_decay"])
@pytest.mark.parametrize("bad", [math.inf, math.nan, np.float32("inf")], ids=["inf", "nan", "float32-inf"])
def test_sgd_refuses_infinite_and_nan_settings_by_name(name, bad):
    kwargs = {"lr": 0.1, name: bad}
    with pytest.raises(ValueError, match=name):
        optim.SGD([nn.Parameter(np.zeros(2))], **kwargs)


def test_sgd_load_state_dict_refuses_nan_and_changes_nothing():
    p = nn.Parameter(np.zeros(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="lr"):
        opt.load_state_dict(dict(opt.state_dict(), lr=math.nan))
    assert opt.lr == 0.1


# ---- Adam and AdamW ------------------------------------------------------------------------
ADAM_CASES = [
    ("adam", optim.Adam, {}, False),
    ("adam-l2", optim.Adam, {"weight_decay": 0.1}, False),
    ("adam-amsgrad", optim.Adam, {"amsgrad": True, "betas": (0.8, 0.9)}, False),
    ("adamw", optim.AdamW, {}, True),
    ("adamw-strong-decay-amsgrad", optim.AdamW, {"weight_decay": 0.5, "amsgrad": True, "eps": 1e-3}, True),
]


@pytest.mark.parametrize(
    "make, kwargs, decoupled", [c[1:] for c in ADAM_CASES], ids=[c[0] for c in ADAM_CASES]
)
def test_adam_and_adamw_match_a_hand_computation_bias_correction_and_eps_outside_the_sqrt(
    float64, make, kwargs, decoupled
):
    p = nn.Parameter(np.array([0.3, -0.7]))
    opt = make([p], lr=0.1, **kwargs)
    weight_decay = kwargs.get("weight_decay", 1e-2 if decoupled else 0.0)
    hand = {k: v for k, v in kwargs.items() if k != "weight_decay"}
    expected = hand_adam([0.3, -0.7], GRADIENTS, 0.1, weight_decay=weight_decay, decoupled=decoupled, **hand)
    for g, want in zip(GRADIENTS, expected, strict=True):
        p.grad = g.copy()
        opt.step()
        np.testing.assert_allclose(p.numpy(), want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "make, kwargs, decoupled", [c[1:] for c in ADAM_CASES], ids=[c[0] for c in ADAM_CASES]
)
def test_adam_and_adamw_match_torch_optim(float64, make, kwargs, decoupled):
    torch = pytest.importorskip(
        "torch", reason="torch is not installed; the hand-computed test above still runs"
    )
    p = nn.Parameter(np.array([0.3, -0.7]))
    q = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    ours = make([p], lr=0.1, **kwargs)
    theirs = (torch.optim.AdamW if decoupled else torch.optim.Adam)([q], lr=0.1, **kwargs)
    for g in GRADIENTS:
        p.grad, q.grad = g.copy(), torch.from_numpy(g.copy())
        ours.step()
        theirs.step()
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-14, atol=1e-16)


def test_adam_leaves_parameters_without_gradient_alone_their_moments_and_step_count_too(float64):
    a, b = nn.Parameter(np.array([1.0])), nn.Parameter(np.array([2.0]))
    opt = optim.AdamW([a, b], lr=0.1, weight_decay=0.5)
    a.grad = np.array([1.0])
    opt.step()
    assert b.numpy()[0] == 2.0 and opt.exp_avg[1] is None and opt.steps == [1, 0]


@pytest.mark.parametrize("make", [optim.Adam, optim.AdamW])
def test_adam_state_dict_resumes_bit_for_bit(float64, make):
    def run(n, start=None, state=None):
        return _steps_on_gradients(lambda ps: make(ps, lr=0.1, amsgrad=True), n, start, state)

    straight, final = run(4)
    half, state = run(2)
    resumed, final_resumed = run(2, start=half, state=state)
    assert np.array_equal(straight, resumed)
    assert_same_state(final, final_resumed)


def test_adam_checkpoints_round_trip_through_ms_save(tmp_path, float64):
    p = nn.Parameter(np.array([0.3, -0.7]))
    opt = optim.SAM(optim.Adam([p], lr=0.1, amsgrad=True))
    opt.step(lambda: (p * p).sum())
    ms.save({"optim": opt.state_dict()}, tmp_path / "ck.npz")
    fresh = optim.SAM(optim.Adam([p], lr=0.5))
    fresh.load_state_dict(ms.load(tmp_path / "ck.npz")["optim"])
    assert_same_state(fresh.state_dict(), opt.state_dict())


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"lr": math.inf}, "lr"),
        ({"betas": (0.9, 1.0)}, "betas"),
        ({"betas": (math.nan, 0.9)}, "betas"),
        ({"betas": 0.9}, "betas"),
        ({"eps": -1e-8}, "eps"),
        ({"weight_decay": math.inf}, "weight_decay"),
        ({"amsgrad": 1}, "amsgrad"),
    ],
)
@pytest.mark.parametrize("make", [optim.Adam, optim.AdamW])
def test_adam_refuses_invalid_settings_by_name(make, kwargs, word):
    with pytest.raises(ValueError, match=word):
        make([nn.Parameter(np.zeros(2))], **kwargs)


def test_adam_load_state_dict_checks_everything_before_changing_anything(float64):
    p = nn.Parameter(np.zeros(3))
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.ones(3)
    opt.step()
    good = opt.state_dict()
    for bad in (dict(good, exp_avg=[np.zeros(2)]), dict(good, steps=[-1]), dict(good, betas=(0.9, 2.0))):
        with pytest.raises(ValueError):
            opt.load_state_dict(bad)
        assert_same_state(opt.state_dict(), good)
