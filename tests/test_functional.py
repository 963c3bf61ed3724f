"""minisam.functional: every op's gradient against central differences, convolution and
pooling against plain loop implementations written here, and the losses, batch norm and
dropout against their defining formulas."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import minisam as ms
import minisam.functional as F
from minisam.gradcheck import gradcheck


# ---- independent reference implementations: loops straight from the definitions -----------
def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_reference(x, w, b=None, stride=1, padding=0):
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    padded = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    padded[:, :, ph : ph + H, pw : pw + W] = x
    out_h, out_w = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    out = np.zeros((N, O, out_h, out_w))
    for n in range(N):
        for o in range(O):
            for p in range(out_h):
                for q in range(out_w):
                    patch = padded[n, :, p * sh : p * sh + kh, q * sw : q * sw + kw]
                    out[n, o, p, q] = np.sum(patch * w[o]) + (0.0 if b is None else b[o])
    return out


def conv1d_reference(x, w, b=None, stride=1, padding=0):
    N, C, L = x.shape
    O, _, k = w.shape
    padded = np.zeros((N, C, L + 2 * padding))
    padded[:, :, padding : padding + L] = x
    out = np.zeros((N, O, (L + 2 * padding - k) // stride + 1))
    for n in range(N):
        for o in range(O):
            for p in range(out.shape[2]):
                patch = padded[n, :, p * stride : p * stride + k]
                out[n, o, p] = np.sum(patch * w[o]) + (0.0 if b is None else b[o])
    return out


def pool2d_reference(x, kernel, stride, reduce):
    (kh, kw) = pair(kernel)
    (sh, sw) = pair(stride) if stride is not None else (kh, kw)
    N, C, H, W = x.shape
    out = np.zeros((N, C, (H - kh) // sh + 1, (W - kw) // sw + 1))
    for n, c, p, q in np.ndindex(*out.shape):
        out[n, c, p, q] = reduce(x[n, c, p * sh : p * sh + kh, q * sw : q * sw + kw])
    return out


def distinct_values(r, shape):
    """Values at least 0.01 apart, so max pooling has no ties within gradcheck's eps."""
    size = int(np.prod(shape))
    return (r.permutation(size).reshape(shape) - size / 2) * 0.05 + r.uniform(0, 0.01, shape)


# ---- gradient checks of every op ---------------------------------------------------------
def anywhere(r, shape):
    return r.uniform(-1, 1, shape)


def away_from_zero(r, shape):
    return r.choice([-1.0, 1.0], shape) * r.uniform(0.2, 1.2, shape)


@dataclass
class FOp:
    name: str
    fn: Callable
    shapes: list
    sample: Callable = anywhere

    def __str__(self):
        return self.name


LABELS = np.array([2, 0, 3])


def seeded_dropout(x, p=0.4):
    ms.manual_seed(7)  # the same mask at every evaluation gradcheck makes
    return F.dropout(x, p)


def small_cnn(x, w1, w2, b2, w3):
    """conv -> relu -> pool -> conv -> batch norm -> pool -> linear -> cross-entropy."""
    h = F.max_pool2d(F.relu(F.conv2d(x, w1, padding=1)), 2)
    h = F.batch_norm(F.conv2d(h, w2, b2, padding=1), None, None)
    h = F.max_pool2d(h, 2)
    return F.cross_entropy(F.linear(h.reshape(h.shape[0], -1), w3), LABELS[: x.shape[0]])


FOPS = [
    FOp("relu", F.relu, [(3, 4)], away_from_zero),
    FOp("tanh", F.tanh, [(3, 4)]),
    FOp("sigmoid", F.sigmoid, [(3, 4)]),
    FOp("sigmoid_wide_range", lambda x: F.sigmoid(x * 20), [(3, 4)]),
    FOp("leaky_relu", F.leaky_relu, [(3, 4)], away_from_zero),
    FOp("leaky_relu_slope", lambda x: F.leaky_relu(x, negative_slope=0.3), [(3, 4)], away_from_zero),
    FOp("softmax", F.softmax, [(3, 4)]),
    FOp("softmax_axis0", lambda x: F.softmax(x, axis=0), [(3, 4)]),
    FOp("softmax_dim0", lambda x: F.softmax(x, dim=0), [(3, 4)]),
    FOp("log_softmax", F.log_softmax, [(3, 4)]),
    FOp("log_softmax_axis1_3d", lambda x: F.log_softmax(x, axis=1), [(2, 3, 4)]),
    FOp("log_softmax_dim1_3d", lambda x: F.log_softmax(x, dim=1), [(2, 3, 4)]),
    FOp("cross_entropy", lambda z: F.cross_entropy(z, LABELS), [(3, 4)]),
    FOp("mse_loss", F.mse_loss, [(3, 4), (3, 4)]),
    FOp("linear", F.linear, [(3, 4), (2, 4), (2,)]),
    FOp("linear_no_bias", F.linear, [(3, 4), (2, 4)]),
    FOp("linear_batched_input", F.linear, [(2, 3, 4), (2, 4), (2,)]),
    FOp("linear_1d_input", F.linear, [(4,), (2, 4), (2,)]),
    FOp("conv2d", F.conv2d, [(2, 2, 4, 4), (3, 2, 3, 3), (3,)]),
    FOp(
        "conv2d_stride2_pad1_bias",
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
        [(2, 2, 5, 4), (3, 2, 3, 3), (3,)],
    ),
    FOp(
        "conv2d_pairs_no_bias",
        lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(0, 1)),
        [(1, 2, 5, 4), (2, 2, 2, 3)],
    ),
    FOp("conv1d", F.conv1d, [(2, 2, 6), (3, 2, 3), (3,)]),
    FOp(
        "conv1d_stride2_pad1",
        lambda x, w: F.conv1d(x, w, stride=2, padding=1),
        [(2, 2, 7), (2, 2, 3)],
    ),
    FOp("max_pool2d_2x2", lambda x: F.max_pool2d(x, 2), [(2, 2, 4, 6)], distinct_values),
    FOp(
        "max_pool2d_3_stride1",
        lambda x: F.max_pool2d(x, 3, stride=1),
        [(1, 2, 5, 4)],
        distinct_values,
    ),
    FOp(
        "max_pool2d_pairs",
        lambda x: F.max_pool2d(x, (2, 3), stride=(1, 2)),
        [(1, 2, 4, 7)],
        distinct_values,
    ),
    FOp("max_pool1d", lambda x: F.max_pool1d(x, 3, stride=2), [(2, 2, 7)], distinct_values),
    FOp("avg_pool2d", lambda x: F.avg_pool2d(x, 2), [(2, 2, 4, 5)]),
    FOp("avg_pool2d_overlap", lambda x: F.avg_pool2d(x, 3, stride=1), [(1, 2, 4, 5)]),
    FOp("batch_norm_2d", lambda x, w, b: F.batch_norm(x, None, None, w, b), [(4, 3), (3,), (3,)]),
    FOp("batch_norm_3d", lambda x, w, b: F.batch_norm(x, None, None, w, b), [(2, 3, 4), (3,), (3,)]),
    FOp("batch_norm_4d_no_affine", lambda x: F.batch_norm(x, None, None), [(2, 2, 3, 2)]),
    FOp(
        "batch_norm_eval",
        lambda x, w, b: F.batch_norm(
            x, np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0]), w, b, training=False
        ),
        [(2, 3, 2), (3,), (3,)],
    ),
    FOp("dropout", seeded_dropout, [(4, 5)]),
    FOp("small_cnn", small_cnn, [(2, 1, 4, 4), (2, 1, 3, 3), (3, 2, 3, 3), (3,), (4, 3)]),
]


# Central differences in float64: truncation error grows like eps², rounding error like
# 1e-16/eps; eps = 1e-5 sits near the best balance, (1e-16)^(1/3).
EPS = 1e-5


def make_inputs(op, seed=0, dtype=np.float64):
    r = np.random.default_rng(seed)
    return [ms.Tensor(op.sample(r, s), requires_grad=True, dtype=dtype) for s in op.shapes]


@pytest.mark.parametrize("op", FOPS, ids=str)
def test_gradient_matches_central_differences(op, float64):
    assert gradcheck(op.fn, make_inputs(op), eps=EPS, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("op", FOPS, ids=str)
def test_float32_in_float32_out_and_float32_grads(op):
    inputs = make_inputs(op, dtype=np.float32)
    out = op.fn(*inputs)
    assert out.dtype == np.float32, f"{op.name} returned {out.dtype}"
    out.sum().backward()
    for n, t in enumerate(inputs):
        assert t.grad is not None and t.grad.dtype == np.float32, f"{op.name}: input {n}"


# ---- convolution and pooling against the loop references ---------------------------------
CONV2D_CASES = [
    # (x shape, weight shape, bias, stride, padding)
    ((2, 3, 5, 5), (4, 3, 3, 3), True, 1, 0),
    ((2, 2, 6, 5), (3, 2, 3, 3), True, 2, 1),
    ((1, 2, 5, 6), (2, 2, 2, 3), False, (2, 1), (1, 0)),
    ((3, 1, 4, 4), (2, 1, 1, 1), True, 1, 0),
    ((1, 2, 7, 7), (2, 2, 3, 3), True, 3, 2),
    ((2, 3, 3, 3), (5, 3, 3, 3), False, 1, 1),
]


@pytest.mark.parametrize("x_shape, w_shape, has_bias, stride, padding", CONV2D_CASES)
def test_conv2d_matches_loop_reference(x_shape, w_shape, has_bias, stride, padding, backend):
    r = np.random.default_rng(0)
    x, w, b = r.normal(size=x_shape), r.normal(size=w_shape), r.normal(size=w_shape[0])
    out = F.conv2d(
        ms.Tensor(x, dtype=np.float64),
        ms.Tensor(w, dtype=np.float64),
        ms.Tensor(b, dtype=np.float64) if has_bias else None,
        stride=stride,
        padding=padding,
    )
    expected = conv2d_reference(x, w, b if has_bias else None, stride, padding)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "x_shape, w_shape, has_bias, stride, padding",
    [
        ((2, 3, 8), (4, 3, 3), True, 1, 0),
        ((2, 2, 9), (3, 2, 3), True, 2, 1),
        ((1, 2, 6), (2, 2, 1), False, 1, 0),
        ((2, 1, 7), (2, 1, 4), True, 3, 2),
    ],
)
def test_conv1d_matches_loop_reference(x_shape, w_shape, has_bias, stride, padding, backend):
    r = np.random.default_rng(1)
    x, w, b = r.normal(size=x_shape), r.normal(size=w_shape), r.normal(size=w_shape[0])
    out = F.conv1d(
        ms.Tensor(x, dtype=np.float64),
        ms.Tensor(w, dtype=np.float64),
        ms.Tensor(b, dtype=np.float64) if has_bias else None,
        stride=stride,
        padding=padding,
    )
    expected = conv1d_reference(x, w, b if has_bias else None, stride, padding)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


POOL_CASES = [
    # (x shape, kernel_size, stride)
    ((2, 2, 4, 6), 2, None),
    ((1, 2, 5, 5), 2, None),  # odd sizes: the last row and column are dropped, as in PyTorch
    ((1, 2, 5, 4), 3, 1),
    ((1, 1, 4, 7), (2, 3), (1, 2)),
    ((2, 1, 7, 7), 3, 2),
]


@pytest.mark.parametrize("x_shape, kernel, stride", POOL_CASES)
def test_max_pool2d_matches_loop_reference(x_shape, kernel, stride, backend):
    x = np.random.default_rng(2).normal(size=x_shape)
    out = F.max_pool2d(ms.Tensor(x, dtype=np.float64), kernel, stride)
    np.testing.assert_array_equal(out.numpy(), pool2d_reference(x, kernel, stride, np.max))


@pytest.mark.parametrize("x_shape, kernel, stride", POOL_CASES)
def test_avg_pool2d_matches_loop_reference(x_shape, kernel, stride, backend):
    x = np.random.default_rng(3).normal(size=x_shape)
    out = F.avg_pool2d(ms.Tensor(x, dtype=np.float64), kernel, stride)
    np.testing.assert_allclose(out.numpy(), pool2d_reference(x, kernel, stride, np.mean), 1e-14)


def test_max_pool1d_matches_loop_reference():
    x = np.random.default_rng(4).normal(size=(2, 3, 9))
    out = F.max_pool1d(ms.Tensor(x, dtype=np.float64), 3, stride=2)
    expected = pool2d_reference(x[:, :, None, :], (1, 3), (1, 2), np.max)[:, :, 0, :]
    np.testing.assert_array_equal(out.numpy(), expected)


def test_max_pool2d_tie_sends_the_gradient_to_the_first_maximum_like_pytorch(float64):
    x = ms.Tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1  # the top-left of each window, the first in row-major order
    np.testing.assert_array_equal(x.grad[0, 0], expected)


def test_max_pool2d_overlapping_windows_accumulate_gradient(float64):
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0  # the centre is the maximum of all four 2x2 windows
    t = ms.Tensor(x, requires_grad=True)
    F.max_pool2d(t, 2, stride=1).sum().backward()
    assert t.grad[0, 0, 1, 1] == 4.0 and t.grad.sum() == 4.0


def test_conv2d_first_layer_input_without_grad(float64):
    x = ms.Tensor(np.random.default_rng(5).normal(size=(2, 1, 4, 4)))
    w = ms.Tensor(np.ones((2, 1, 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad is None and w.grad.shape == (2, 1, 3, 3)


# ---- softmax and the losses --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_are_stable_at_huge_logits(dtype):
    z = np.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 999.0], [-1000.0, -1000.0, -1000.0]])
    logits = ms.Tensor(z, requires_grad=True, dtype=dtype)
    probs, log_probs = F.softmax(logits), F.log_softmax(logits)
    assert np.all(np.isfinite(probs.numpy())) and np.all(np.isfinite(log_probs.numpy()))
    np.testing.assert_allclose(probs.numpy().sum(axis=1), 1.0, rtol=1e-6)
    shifted = z - z.max(axis=1, keepdims=True)
    expected = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(log_probs.numpy(), expected, rtol=1e-6)
    loss = F.cross_entropy(logits, [2, 0, 1])
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(logits.grad))
    np.testing.assert_allclose(loss.item(), -np.mean(expected[[0, 1, 2], [2, 0, 1]]), rtol=1e-6)


def test_cross_entropy_equals_the_manual_formula_and_its_gradient(float64):
    r = np.random.default_rng(6)
    z, labels = r.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])
    logits = ms.Tensor(z, requires_grad=True)
    loss = F.cross_entropy(logits, labels)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss.item(), -np.mean(np.log(probs[range(5), labels])), rtol=1e-13)
    loss.backward()
    np.testing.assert_allclose(logits.grad, (probs - np.eye(4)[labels]) / 5, rtol=1e-12)


@pytest.mark.parametrize(
    "targets", [np.array([1, 0]), [1, 0], ms.Tensor(np.array([1, 0])), np.array([1, 0], np.uint8)]
)
def test_cross_entropy_accepts_integer_arrays_lists_and_tensors(targets, float64):
    z = ms.Tensor([[0.0, 1.0, 2.0], [3.0, 1.0, 0.0]])
    expected = F.cross_entropy(z, np.array([1, 0])).item()
    assert F.cross_entropy(z, targets).item() == expected


def test_mse_loss_value_and_gradients_for_pred_and_target(float64):
    r = np.random.default_rng(7)
    p, t = r.normal(size=(3, 2)), r.normal(size=(3, 2))
    pred, target = ms.Tensor(p, requires_grad=True), ms.Tensor(t, requires_grad=True)
    loss = F.mse_loss(pred, target)
    np.testing.assert_allclose(loss.item(), np.mean((p - t) ** 2), rtol=1e-14)
    loss.backward()
    np.testing.assert_allclose(pred.grad, 2 * (p - t) / 6, rtol=1e-14)
    np.testing.assert_allclose(target.grad, -2 * (p - t) / 6, rtol=1e-14)


def test_mse_loss_array_target_takes_pred_dtype():
    pred = ms.Tensor(np.ones(3), requires_grad=True)  # float32
    loss = F.mse_loss(pred, np.zeros(3))  # a float64 array
    loss.backward()
    assert loss.dtype == np.float32 and pred.grad.dtype == np.float32


def test_linear_equals_matmul_plus_bias(float64):
    r = np.random.default_rng(8)
    x, w, b = r.normal(size=(5, 3)), r.normal(size=(2, 3)), r.normal(size=2)
    out = F.linear(ms.Tensor(x), ms.Tensor(w), ms.Tensor(b))
    np.testing.assert_allclose(out.numpy(), x @ w.T + b, rtol=1e-14)


# ---- batch norm --------------------------------------------------------------------------
def batch_norm_by_hand(x, weight, bias, axes, eps=1e-5):
    """Batch norm composed from the engine's primitive ops: a gradient independent of
    batch_norm's fused backward."""
    shape = [1] * x.ndim
    shape[1] = -1
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / (var + eps) ** 0.5 * weight.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("shape", [(4, 3), (3, 3, 4), (2, 3, 2, 3)])
def test_batch_norm_training_values_gradients_and_running_stats(shape, float64):
    r = np.random.default_rng(9)
    x_np = r.normal(2.0, 3.0, size=shape)
    axes = (0,) + tuple(range(2, len(shape)))
    w_np, b_np = r.normal(size=3), r.normal(size=3)
    running_mean, running_var = r.normal(size=3), r.uniform(0.5, 2, size=3)
    mean0, var0 = running_mean.copy(), running_var.copy()

    x, w, b = (ms.Tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
    out = F.batch_norm(x, running_mean, running_var, w, b, training=True)
    mean, var = x_np.mean(axis=axes, keepdims=True), x_np.var(axis=axes, keepdims=True)
    per_channel = (1, 3) + (1,) * (len(shape) - 2)
    expected = (x_np - mean) / np.sqrt(var + 1e-5) * w_np.reshape(per_channel)
    expected += b_np.reshape(per_channel)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)

    # running statistics: momentum 0.1, and the UNBIASED variance (ddof=1)
    np.testing.assert_allclose(running_mean, 0.9 * mean0 + 0.1 * x_np.mean(axis=axes), 1e-13)
    np.testing.assert_allclose(running_var, 0.9 * var0 + 0.1 * x_np.var(axis=axes, ddof=1), 1e-13)

    upstream = r.normal(size=shape)
    (out * ms.Tensor(upstream)).sum().backward()
    fused = [x.grad, w.grad, b.grad]
    x.grad = w.grad = b.grad = None
    (batch_norm_by_hand(x, w, b, axes) * ms.Tensor(upstream)).sum().backward()
    for name, got, want in zip("xwb", fused, [x.grad, w.grad, b.grad], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"grad of {name}")


def test_batch_norm_running_stats_are_updated_in_place_with_given_momentum():
    x = ms.Tensor(np.random.default_rng(10).normal(size=(8, 2)))
    running_mean, running_var = np.zeros(2, np.float32), np.ones(2, np.float32)
    mean_id, var_id = id(running_mean), id(running_var)
    F.batch_norm(x, running_mean, running_var, momentum=0.3)
    assert id(running_mean) == mean_id and id(running_var) == var_id
    assert running_mean.dtype == np.float32 and running_var.dtype == np.float32
    np.testing.assert_allclose(running_mean, 0.3 * x.numpy().mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(running_var, 0.7 + 0.3 * x.numpy().var(axis=0, ddof=1), rtol=1e-5)


def test_batch_norm_eval_uses_running_stats_and_leaves_them_alone(float64):
    r = np.random.default_rng(11)
    x_np = r.normal(size=(3, 2, 4))
    running_mean, running_var = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    w, b = ms.Tensor([1.5, -0.5]), ms.Tensor([0.1, 0.2])
    out = F.batch_norm(ms.Tensor(x_np), running_mean, running_var, w, b, training=False)
    expected = (x_np - running_mean[None, :, None]) / np.sqrt(running_var[None, :, None] + 1e-5)
    expected = expected * np.array([1.5, -0.5])[None, :, None] + np.array([0.1, 0.2])[None, :, None]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-13)
    np.testing.assert_array_equal(running_mean, [0.5, -1.0])
    np.testing.assert_array_equal(running_var, [2.0, 0.25])


def test_batch_norm_update_stats_false_normalises_by_batch_but_keeps_running_stats(float64):
    x = ms.Tensor(np.random.default_rng(12).normal(size=(6, 3)))
    running_mean, running_var = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    frozen = F.batch_norm(x, running_mean, running_var, update_stats=False)
    np.testing.assert_array_equal(running_mean, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(running_var, [4.0, 5.0, 6.0])
    updating = F.batch_norm(x, running_mean, running_var)
    np.testing.assert_array_equal(frozen.numpy(), updating.numpy())  # same batch statistics
    assert not np.array_equal(running_mean, [1.0, 2.0, 3.0])


def test_batch_norm_bad_inputs():
    x = ms.Tensor(np.ones((4, 3)))
    with pytest.raises(ValueError, match="running_mean must have shape"):
        F.batch_norm(x, np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="weight must have shape"):
        F.batch_norm(x, None, None, weight=ms.Tensor(np.ones(4)))
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(ms.Tensor(np.ones((1, 3))), None, None)
    with pytest.raises(ValueError, match="eval mode"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        F.batch_norm(ms.Tensor(np.ones(4)), None, None)


# ---- dropout -----------------------------------------------------------------------------
def test_dropout_scales_kept_units_and_drops_about_p():
    x = ms.Tensor(np.ones((100, 100)), requires_grad=True)
    ms.manual_seed(0)
    out = F.dropout(x, p=0.3).numpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    assert abs(1 - kept.mean() - 0.3) < 0.02
    F.dropout(x, p=0.3)  # (a second draw, to show the mask is not reused)
    ms.manual_seed(0)
    F.dropout(x, p=0.3).sum().backward()
    np.testing.assert_array_equal(x.grad, out)  # dL/dx = mask / (1 - p), the same mask


def test_dropout_mask_comes_from_the_host_generator_so_seeds_repeat():
    x = ms.Tensor(np.ones((6, 7)))
    ms.manual_seed(3)
    first = F.dropout(x, 0.5).numpy()
    ms.manual_seed(3)
    second = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(first, second)
    expected_keep = np.random.Generator(np.random.PCG64(3)).random((6, 7)) >= 0.5
    np.testing.assert_array_equal(first != 0, expected_keep)
    ms.manual_seed(4)
    assert not np.array_equal(F.dropout(x, 0.5).numpy(), first)


def test_dropout_is_the_identity_in_eval_or_at_p0_and_zero_at_p1():
    x = ms.Tensor(np.arange(6.0))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros(6))
    with pytest.raises(ValueError, match=r"dropout: p must be .*>= 0 and <= 1"):
        F.dropout(x, 1.5)


# ---- bad inputs give messages that say what was wrong --------------------------------------
@pytest.mark.parametrize(
    "targets", [np.array([1.0, 0.0]), ms.Tensor(np.array([1.0, 0.0])), np.array([True, False])]
)
def test_cross_entropy_non_integer_targets_ask_for_class_labels(targets):
    with pytest.raises(TypeError, match="integer class labels"):
        F.cross_entropy(ms.Tensor(np.zeros((2, 3))), targets)


@pytest.mark.parametrize("bad_label", [3, 7, -1])
def test_cross_entropy_label_out_of_range_names_label_and_class_count(bad_label):
    with pytest.raises(ValueError, match=rf"label {bad_label} .*3 classes"):
        F.cross_entropy(ms.Tensor(np.zeros((2, 3))), np.array([0, bad_label]))


def test_cross_entropy_batch_mismatch_names_both_sizes():
    with pytest.raises(ValueError, match=r"logits have 4 rows.*targets have 3 labels"):
        F.cross_entropy(ms.Tensor(np.zeros((4, 3))), np.array([0, 1, 2]))


def test_cross_entropy_needs_2d_logits_and_1d_targets():
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        F.cross_entropy(ms.Tensor(np.zeros((2, 3, 4))), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        F.cross_entropy(ms.Tensor(np.zeros((2, 3))), np.array([[0], [1]]))


def test_conv_channel_mismatch_names_both_channel_counts():
    with pytest.raises(ValueError, match=r"input has 3 channels but the weight expects 2"):
        F.conv2d(ms.Tensor(np.zeros((1, 3, 5, 5))), ms.Tensor(np.zeros((4, 2, 3, 3))))
    with pytest.raises(ValueError, match=r"input has 3 channels but the weight expects 2"):
        F.conv1d(ms.Tensor(np.zeros((1, 3, 5))), ms.Tensor(np.zeros((4, 2, 3))))


def test_conv_bad_shapes_strides_and_sizes():
    x, w = ms.Tensor(np.zeros((1, 2, 4, 4))), ms.Tensor(np.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.conv2d(ms.Tensor(np.zeros((2, 4, 4))), w)
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        F.conv2d(x, w, stride=1.5)
    with pytest.raises(ValueError, match="stride >= 1"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(x, ms.Tensor(np.zeros((3, 2, 5, 5))))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.conv2d(x, w, ms.Tensor(np.zeros(2)))
    with pytest.raises(ValueError, match="larger than the padded input length"):
        F.conv1d(ms.Tensor(np.zeros((1, 2, 2))), ms.Tensor(np.zeros((3, 2, 3))))


def test_pooling_bad_inputs():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.max_pool2d(ms.Tensor(np.zeros((2, 4, 4))), 2)
    with pytest.raises(ValueError, match="larger than the input"):
        F.max_pool2d(ms.Tensor(np.zeros((1, 1, 2, 2))), 3)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        F.avg_pool2d(ms.Tensor(np.zeros((1, 1, 4, 4))), (2, 2, 2))


def test_linear_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        F.linear(ms.Tensor(np.zeros((2, 3))), ms.Tensor(np.zeros((4, 5))))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        F.linear(ms.Tensor(np.zeros((2, 5))), ms.Tensor(np.zeros((4, 5))), ms.Tensor(np.zeros(3)))


def test_mse_loss_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 1\).*\(3,\)"):
        F.mse_loss(ms.Tensor(np.zeros((3, 1))), np.zeros(3))


# ---- activations PyTorch users reach for, dtypes, PyTorch spellings ------------------------
def test_sigmoid_and_leaky_relu_match_their_definitions_and_sigmoid_never_overflows():
    x = np.array([-1000.0, -40.0, -30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 1000.0])  # -40: 4.2e-18, not 0
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(F.sigmoid(ms.Tensor(x, dtype=np.float64)).numpy(), expected, rtol=1e-15)
    got = F.leaky_relu(ms.Tensor(x, dtype=np.float64), negative_slope=0.1).numpy()
    np.testing.assert_array_equal(got, np.where(x > 0, x, 0.1 * x))
    assert F.leaky_relu(ms.Tensor(x, dtype=np.float64)).numpy()[3] == -0.02  # default slope 0.01


def test_leaky_relu_refuses_a_slope_that_is_not_a_number():
    with pytest.raises(TypeError, match="negative_slope must be a finite number, got 'x'"):
        F.leaky_relu(ms.Tensor([1.0]), negative_slope="x")


def test_softmax_takes_dim_as_pytorch_does_but_not_both_names():
    x = ms.Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(F.softmax(x, dim=0).numpy(), F.softmax(x, axis=0).numpy())
    with pytest.raises(TypeError, match="softmax: pass axis= or dim="):
        F.softmax(x, axis=0, dim=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_and_conv2d_on_integer_input_give_the_weights_dtype(dtype):
    ms.manual_seed(0)
    weight = ms.Tensor(np.ones((2, 3)), requires_grad=True, dtype=dtype)
    out = F.linear(ms.Tensor(np.arange(6).reshape(2, 3)), weight)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.numpy(), [[3, 3], [12, 12]])
    out.sum().backward()
    assert weight.grad.dtype == dtype
    kernel = ms.Tensor(np.ones((1, 1, 2, 2)), dtype=dtype)
    image = ms.Tensor(np.arange(9, dtype=np.uint8).reshape(1, 1, 3, 3))
    assert F.conv2d(image, kernel).dtype == dtype


def test_a_float32_parameter_gets_a_float32_gradient_from_float64_data():
    weight = ms.Tensor(np.ones((2, 3)), requires_grad=True)  # float32
    data = ms.Tensor(np.ones((4, 3)), dtype=np.float64)
    out = F.linear(data, weight)
    assert out.dtype == np.float64  # two Tensors promote as in NumPy
    out.sum().backward()
    assert weight.grad.dtype == np.float32


def test_dropout_probability_is_checked():
    with pytest.raises(ValueError, match="dropout: p must be a finite number >= 0 and <= 1, got True"):
        F.dropout(ms.Tensor([1.0]), p=True)
    with pytest.raises(ValueError, match="got 1.5"):
        F.dropout(ms.Tensor([1.0]), p=1.5)


def test_convolution_and_pooling_live_in_their_own_module_and_stay_reachable_as_F():
    from minisam import convolution

    for name in ("conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool2d"):
        assert getattr(F, name) is getattr(convolution, name)


def test_a_float32_layer_fed_integer_or_float64_data_trains_in_float32():
    """The issue's chain: int64 input must not make Linear's output float64, and float64
    data must not give a float64 .grad that SGD would turn into a float64 momentum buffer
    (a resumed run would then stop being bit-identical)."""
    from minisam import nn, optim

    ms.manual_seed(0)
    layer = nn.Linear(3, 2)
    assert layer(ms.Tensor(np.arange(6).reshape(2, 3))).dtype == np.float32
    sgd = optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    data = ms.Tensor(np.ones((4, 3)), dtype=np.float64)
    sgd.step(lambda: F.mse_loss(layer(data), np.zeros((4, 2))))
    assert all(p.dtype == np.float32 and p.grad.dtype == np.float32 for p in layer.parameters())
    assert all(buf.dtype == np.float32 for buf in sgd.state_dict()["momentum_buffers"])
