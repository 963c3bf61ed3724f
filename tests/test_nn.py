"""Modules: PyTorch's names, order, shapes and initialisation; strict loading; BatchNorm."""

import math

import numpy as np
import pytest

import minisam as ms
import minisam.functional as F
from minisam import models, nn
from minisam.gradcheck import gradcheck


def _names_and_shapes(module):
    return [(name, tuple(a.shape)) for name, a in module.state_dict().items()]


def test_parameters_are_tensors_that_require_gradients():
    p = nn.Parameter(np.zeros(3))
    assert isinstance(p, ms.Tensor) and p.requires_grad
    assert not isinstance(p * 2, nn.Parameter)  # results of ops are plain tensors


def test_linear_names_shapes_and_order_are_pytorchs():
    layer = nn.Linear(3, 5)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.weight.shape == (5, 3) and layer.bias.shape == (5,)
    assert nn.Linear(3, 5, bias=False).state_dict().keys() == {"weight"}


def test_initialisation_is_uniform_in_one_over_sqrt_fan_in_drawn_from_minisams_generator():
    ms.manual_seed(3)
    conv = nn.Conv2d(4, 6, 3)
    ms.manual_seed(3)
    gen = ms.rng.generator()
    bound = 1 / math.sqrt(4 * 3 * 3)
    weight = gen.uniform(-bound, bound, (6, 4, 3, 3)).astype(np.float32)
    bias = gen.uniform(-bound, bound, (6,)).astype(np.float32)
    assert np.array_equal(conv.weight.numpy(), weight) and np.array_equal(conv.bias.numpy(), bias)
    assert conv.weight.dtype == np.float32

    ms.manual_seed(0)
    big = nn.Linear(400, 300)
    w = big.weight.numpy()
    assert np.abs(w).max() <= 1 / 20 and np.abs(w).max() > 0.99 / 20  # fills U(±1/√400)
    assert abs(w.std() - (1 / 20) / math.sqrt(3)) < 1e-3


def test_the_same_seed_builds_the_same_model():
    ms.manual_seed(5)
    a = models.CNN2d(image_size=8).state_dict()
    ms.manual_seed(5)
    b = models.CNN2d(image_size=8).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_benchmark_cnn2d_is_conv_1_16_conv_16_32_and_linear_32x7x7_to_10():
    model = models.CNN2d(in_channels=1, image_size=28, num_classes=10)
    assert _names_and_shapes(model) == [
        ("0.weight", (16, 1, 3, 3)),
        ("0.bias", (16,)),
        ("3.weight", (32, 16, 3, 3)),
        ("3.bias", (32,)),
        ("7.weight", (10, 32 * 7 * 7)),
        ("7.bias", (10,)),
    ]
    out = model(ms.Tensor(np.zeros((2, 1, 28, 28))))
    assert out.shape == (2, 10)


def test_cnn2d_with_batchnorm_names_buffers_like_pytorch():
    model = models.CNN2d(image_size=8, batch_norm=True, channels=(4,))
    assert _names_and_shapes(model) == [
        ("0.weight", (4, 1, 3, 3)),
        ("0.bias", (4,)),
        ("1.weight", (4,)),
        ("1.bias", (4,)),
        ("1.running_mean", (4,)),
        ("1.running_var", (4,)),
        ("1.num_batches_tracked", ()),
        ("5.weight", (10, 4 * 4 * 4)),
        ("5.bias", (10,)),
    ]
    assert [n for n, _ in model.named_buffers()] == [
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    assert model.state_dict()["1.num_batches_tracked"].dtype == np.int64


def test_mlp_and_cnn1d_shapes_and_names():
    mlp = models.MLP([40, 32, 32, 10])
    assert [n for n, _ in mlp.named_parameters()] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
        "4.weight",
        "4.bias",
    ]
    assert mlp(ms.Tensor(np.zeros((3, 40)))).shape == (3, 10)
    assert models.MLP([64, 10])(ms.Tensor(np.zeros((2, 1, 8, 8)))).shape == (2, 10)  # flattens
    cnn = models.CNN1d(length=40, num_classes=10)
    assert cnn(ms.Tensor(np.zeros((3, 40)))).shape == (3, 10)
    assert cnn(ms.Tensor(np.zeros((3, 1, 40)))).shape == (3, 10)
    with pytest.raises(ValueError, match="activation"):
        models.MLP([2, 2, 2], activation="swish")


def test_parameters_yield_in_registration_order_weight_before_bias():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert list(model.parameters()) == [p for _, p in model.named_parameters()]


def test_linear_fed_the_wrong_feature_size_names_both_sizes():
    layer = nn.Linear(5, 2)
    with pytest.raises(ValueError, match=r"5 features.*\(3, 7\).*7 features"):
        layer(ms.Tensor(np.zeros((3, 7))))


def test_conv_and_batchnorm_fed_the_wrong_channels_say_what_was_expected():
    with pytest.raises(ValueError, match=r"C = 3.*\(2, 1, 8, 8\)"):
        nn.Conv2d(3, 4, 3)(ms.Tensor(np.zeros((2, 1, 8, 8))))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4\).*\(2, 3\)"):
        nn.BatchNorm1d(4)(ms.Tensor(np.zeros((2, 3))))


def test_state_dict_is_host_numpy_copies():
    layer = nn.Linear(2, 2)
    state = layer.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    state["weight"][...] = 123.0
    assert not np.any(layer.weight.numpy() == 123.0)


def test_load_state_dict_copies_in_place_into_the_same_parameters():
    a, b = models.CNN2d(image_size=8, batch_norm=True), models.CNN2d(image_size=8, batch_norm=True)
    params_before = list(b.parameters())
    b.load_state_dict(a.state_dict())
    assert list(b.parameters()) == params_before  # the same objects: an optimizer keeps working
    assert all(np.array_equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


@pytest.mark.parametrize(
    "damage, key",
    [
        (lambda s: s.update({"3.weight": np.zeros((32, 16, 5, 5))}), "3.weight"),
        (lambda s: s.pop("1.running_var"), "1.running_var"),
        (lambda s: s.update({"9.weight": np.zeros(3)}), "9.weight"),
    ],
    ids=["wrong-shape", "missing", "unexpected"],
)
def test_load_state_dict_with_a_bad_key_raises_naming_it_and_changes_nothing(damage, key):
    model = models.CNN2d(image_size=8, batch_norm=True)
    before = model.state_dict()
    state = models.CNN2d(image_size=8, batch_norm=True).state_dict()
    damage(state)
    with pytest.raises((KeyError, ValueError), match=key.replace(".", r"\.")):
        model.load_state_dict(state)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_train_and_eval_set_the_mode_of_every_module_and_dropout_obeys_it():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    assert model.training and model[1].training
    model.eval()
    assert not model.training and not model[1].training
    x = ms.Tensor(np.ones((2, 4)))
    assert np.array_equal(model(x).numpy(), model[0](x).numpy())  # dropout is the identity
    model.train()
    ms.manual_seed(0)
    assert np.any(model(x).numpy() != model[0](x).numpy())


def test_zero_grad_clears_every_parameter_gradient():
    model = models.MLP([3, 4, 2])
    F.cross_entropy(model(ms.Tensor(np.ones((2, 3)))), np.array([0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_batchnorm_follows_pytorch_momentum_unbiased_running_variance_and_eval_statistics(float64):
    bn = nn.BatchNorm2d(3)
    r = np.random.default_rng(0)
    x = r.standard_normal((4, 3, 2, 2)) * 2 + 1
    out = bn(ms.Tensor(x)).numpy()
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    n = 4 * 2 * 2
    np.testing.assert_allclose(bn.running_mean, 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var * n / (n - 1), rtol=1e-12)
    normalised = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(out, normalised, rtol=1e-10, atol=1e-12)
    assert int(bn.num_batches_tracked) == 1

    bn.eval()
    out = bn(ms.Tensor(x)).numpy()
    running_mean = bn.running_mean[None, :, None, None]
    running_var = bn.running_var[None, :, None, None]
    expected = (x - running_mean) / np.sqrt(running_var + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    assert int(bn.num_batches_tracked) == 1  # eval mode tracks nothing


def test_frozen_batchnorm_stats_normalise_by_the_batch_but_leave_running_statistics(float64):
    bn = nn.BatchNorm1d(3)
    x = ms.Tensor(np.random.default_rng(1).standard_normal((5, 3)))
    expected = nn.BatchNorm1d(3)(x).numpy()
    with nn.frozen_batchnorm_stats():
        assert nn.batchnorm_stats_frozen()
        out = bn(x).numpy()
        with nn.frozen_batchnorm_stats():  # nests
            pass
        assert nn.batchnorm_stats_frozen()
    assert not nn.batchnorm_stats_frozen()
    np.testing.assert_allclose(out, expected)
    assert np.array_equal(bn.running_mean, np.zeros(3))
    assert np.array_equal(bn.running_var, np.ones(3))
    assert int(bn.num_batches_tracked) == 0


def test_flatten_merges_all_but_the_batch_dimension():
    assert nn.Flatten()(ms.Tensor(np.zeros((2, 3, 4, 5)))).shape == (2, 60)
    assert nn.Flatten(0, 1)(ms.Tensor(np.zeros((2, 3, 4)))).shape == (6, 4)


def test_gradients_flow_through_a_small_cnn_with_batchnorm(float64):
    ms.manual_seed(0)
    model = models.CNN2d(image_size=4, channels=(2,), batch_norm=True, num_classes=3)
    x = ms.Tensor(np.random.default_rng(2).standard_normal((3, 1, 4, 4)))
    y = np.array([0, 2, 1])
    params = list(model.parameters())

    def loss(*values):
        with nn.frozen_batchnorm_stats():  # many evaluations: keep the statistics still
            return F.cross_entropy(model(x), y)

    assert gradcheck(loss, params, rtol=1e-5, atol=1e-8)


def test_module_repr_shows_the_layers():
    text = repr(models.CNN2d())
    assert "Conv2d(1, 16" in text and "Linear(1568, 10" in text


# ---- hardening (issue 10): refused calls change nothing, errors name the argument -----------
def _snapshot(module):
    return module.state_dict(), ms.get_rng_state()


def _assert_unchanged(module, snapshot):
    state, rng_state = snapshot
    after = module.state_dict()
    assert after.keys() == state.keys()
    assert all(np.array_equal(state[k], after[k]) and state[k].dtype == after[k].dtype for k in state)
    assert np.array_equal(ms.get_rng_state(), rng_state)


def test_batchnorm_refusing_a_batch_of_one_does_not_count_it():
    bn = nn.BatchNorm1d(3)
    before = _snapshot(bn)
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn(ms.Tensor(np.ones((1, 3))))
    _assert_unchanged(bn, before)
    assert int(bn.num_batches_tracked) == 0


@pytest.mark.parametrize(
    "build, argument",
    [
        (lambda: nn.Linear(-1, 2), "in_features"),
        (lambda: nn.Linear(3, 2.0), "out_features"),
        (lambda: nn.Linear(3, 2, bias="yes"), "bias"),
        (lambda: nn.Conv2d(3, 4, 0), "kernel_size"),
        (lambda: nn.Conv2d(3, 4, (3, 3, 3)), "kernel_size"),
        (lambda: nn.Conv1d(3, 4, 3, stride=0), "stride"),
        (lambda: nn.Conv2d(3, 4, 3, padding=-1), "padding"),
        (lambda: nn.Dropout("0.5"), "p"),
        (lambda: nn.Dropout(1.0), "p"),
        (lambda: nn.BatchNorm1d(3, eps=-1), "eps"),
        (lambda: nn.BatchNorm2d(3, momentum=1.5), "momentum"),
        (lambda: nn.BatchNorm2d(3, affine=1), "affine"),
        (lambda: nn.MaxPool2d(0), "kernel_size"),
        (lambda: nn.LeakyReLU(float("nan")), "negative_slope"),
        (lambda: nn.Flatten(start_dim=1.0), "start_dim"),
        (lambda: models.MLP([4, -8, 2]), "sizes[1]"),
        (lambda: models.MLP([4]), "sizes"),
        (lambda: models.MLP([4, 8, 2], activation="gelu"), "activation"),
        (lambda: models.MLP([4, 8, 2], dropout=1), "dropout"),
        (lambda: models.CNN2d(image_size=3), "image_size"),
        (lambda: models.CNN2d(channels=(16, 0)), "channels[1]"),
        (lambda: models.CNN1d(batch_norm="no"), "batch_norm"),
    ],
)
def test_layer_and_model_constructors_refuse_bad_arguments_by_name_before_drawing_weights(build, argument):
    rng_state = ms.get_rng_state()
    with pytest.raises(ms.checks.ArgumentError) as info:
        build()
    assert f"{argument} must" in str(info.value) or f"{argument} needs" in str(info.value), info.value
    assert np.array_equal(ms.get_rng_state(), rng_state)  # no weight was drawn for a refused model


@pytest.mark.parametrize("raw", [np.zeros((2, 4)), [[0.0] * 4] * 2, np.float32(1.0)], ids=type)
@pytest.mark.parametrize("model", [nn.Linear(4, 3), models.MLP([4, 3]), nn.ReLU(), nn.Sequential()])
def test_a_model_called_with_a_raw_array_says_wrap_it_in_ms_tensor(model, raw):
    with pytest.raises(TypeError, match=r"must be an ms\.Tensor.*wrap it: model\(ms\.Tensor\(x\)\)"):
        model(raw)


def test_a_user_module_called_with_a_raw_array_says_wrap_it_too():
    class Twice(nn.Module):
        def forward(self, x):
            return x * 2

    with pytest.raises(TypeError, match=r"Twice\(\): input must be an ms\.Tensor"):
        Twice()(np.ones(3))
    assert Twice()(ms.Tensor(np.ones(3))).shape == (3,)


def test_sigmoid_layer_is_f_sigmoid_the_logistic_function(float64):
    x = np.array([-3.0, -1.0, 0.0, 2.0, 5.0])
    out = nn.Sigmoid()(ms.Tensor(x)).numpy()
    np.testing.assert_array_equal(out, F.sigmoid(ms.Tensor(x)).numpy())
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-x)), rtol=1e-14)


def test_leaky_relu_layer_keeps_positives_and_scales_negatives_by_its_slope(float64):
    # needs F.leaky_relu, which the engine branch adds to functional.py
    assert hasattr(F, "leaky_relu"), "F.leaky_relu is missing: it comes with the engine branch"
    x = np.array([-2.0, -0.5, 0.0, 3.0])
    np.testing.assert_array_equal(nn.LeakyReLU()(ms.Tensor(x)).numpy(), [-0.02, -0.005, 0.0, 3.0])
    np.testing.assert_array_equal(nn.LeakyReLU(0.2)(ms.Tensor(x)).numpy(), [-0.4, -0.1, 0.0, 3.0])
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"


def test_flatten_refuses_dimensions_outside_the_input_instead_of_wrapping_around():
    with pytest.raises(ValueError, match=r"start_dim=3.*3 dimensions"):
        nn.Flatten(start_dim=3)(ms.Tensor(np.zeros((2, 3, 4))))
    with pytest.raises(ValueError, match="start_dim <= end_dim"):
        nn.Flatten(start_dim=2, end_dim=1)(ms.Tensor(np.zeros((2, 3, 4))))
    assert nn.Flatten(-2, -1)(ms.Tensor(np.zeros((2, 3, 4)))).shape == (2, 12)


def _bn_model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


@pytest.mark.parametrize(
    "key, value, says",
    [
        ("1.num_batches_tracked", np.array(2.7), "must hold integers"),
        ("1.num_batches_tracked", np.array(np.nan), "must hold integers"),
        ("1.num_batches_tracked", np.array(-3), "negative count"),
        ("1.num_batches_tracked", np.array(2**64 - 1, dtype=np.uint64), "outside the range"),
        ("1.running_mean", np.array([None] * 4, dtype=object), "real numbers"),
        ("0.weight", np.ones((4, 3)) * (1 + 2j), "real numbers"),
        ("1.running_var", np.array([1.0, -0.5, 1.0, 1.0]), "negative variance"),
        ("0.bias", np.array([0.0, np.nan, 0.0, 0.0]), "NaN or infinite"),
        ("1.weight", np.array([0.0, np.inf, 0.0, 0.0]), "NaN or infinite"),
        ("0.bias", np.array([0.0, 1e300, 0.0, 0.0]), "too large for float32"),
        ("0.bias", np.array(["a", "b", "c", "d"]), "real numbers"),
        ("0.bias", np.array([True, False, True, False]), "real numbers"),
        ("0.weight", None, "real numbers"),
    ],
)
def test_load_state_dict_never_casts_silently_and_names_the_key_and_changes_nothing(key, value, says):
    model, state = _bn_model(), _bn_model().state_dict()
    before = _snapshot(model)
    state[key] = value
    with pytest.raises(ValueError, match=rf"'{key.replace('.', '[.]')}'.*{says}"):
        model.load_state_dict(state)
    _assert_unchanged(model, before)


def test_load_state_dict_is_atomic_when_the_bad_key_comes_last():
    model, state = _bn_model(), _bn_model().state_dict()
    before = _snapshot(model)
    state = {k: v + 1 for k, v in state.items()}  # every value different
    state["1.num_batches_tracked"] = np.array(1.5)  # the last key in the order of loading
    with pytest.raises(ValueError, match="num_batches_tracked"):
        model.load_state_dict(state)
    _assert_unchanged(model, before)


def test_load_state_dict_accepts_exact_conversions(float64):
    model = _bn_model()  # float64 parameters
    state = _bn_model().state_dict()
    state["0.bias"] = [1, 2, 3, 4]  # Python ints into float64: exact
    state["1.num_batches_tracked"] = 5  # a Python int counter
    model.load_state_dict(state)
    np.testing.assert_array_equal(model[0].bias.numpy(), [1.0, 2.0, 3.0, 4.0])
    assert int(model[1].num_batches_tracked) == 5 and model[1].num_batches_tracked.dtype == np.int64


def test_a_forward_pass_refused_half_way_leaves_batchnorm_statistics_and_the_random_stream_alone():
    # BatchNorm and Dropout run and change their state; only then does the last layer refuse
    model = nn.Sequential(nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(5, 3))
    before = _snapshot(model)
    with pytest.raises(ValueError, match="5 features"):
        model(ms.Tensor(np.random.default_rng(0).standard_normal((6, 4))))
    _assert_unchanged(model, before)
    assert int(model[0].num_batches_tracked) == 0
    mended = nn.Sequential(model[0], model[1], nn.Linear(4, 3))  # the same input now passes, counted once
    mended(ms.Tensor(np.random.default_rng(0).standard_normal((6, 4))))
    assert int(model[0].num_batches_tracked) == 1
