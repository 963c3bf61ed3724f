"""minisam.torch and minisam.optim are the same algorithm: step for step to 1e-12 in float64.

The same network is built twice, once from minisam's layers and once from torch's, with
minisam's initial weights copied into the torch one (same names, shapes and order). Both
optimizers then take several steps on the same batches, and after every step the
parameters, the BatchNorm running statistics, the loss and the diagnostics must agree.
"""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="minisam.torch needs the optional torch extra (pip install -e '.[torch]')"
)

import minisam as ms  # noqa: E402
import minisam.functional as F  # noqa: E402
import minisam.torch as mt  # noqa: E402
from minisam import nn, optim  # noqa: E402

TOLERANCE = 1e-12

# A network as a list of layers, built the same way from either library
MLP = [("linear", 6, 9), ("tanh",), ("linear", 9, 7), ("relu",), ("linear", 7, 3)]
CNN_BN = [
    ("conv2d", 1, 4), ("batchnorm2d", 4), ("relu",), ("maxpool2d",),
    ("conv2d", 4, 5), ("batchnorm2d", 5), ("relu",), ("maxpool2d",),
    ("flatten",), ("linear", 5 * 2 * 2, 3),
]  # fmt: skip
INPUT_SHAPE = {"mlp": (6,), "cnn": (1, 8, 8)}


def build_minisam(spec):
    make = {
        "linear": lambda a, b: nn.Linear(a, b),
        "conv2d": lambda a, b: nn.Conv2d(a, b, 3, padding=1),
        "batchnorm2d": lambda c: nn.BatchNorm2d(c),
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "maxpool2d": lambda: nn.MaxPool2d(2),
        "flatten": nn.Flatten,
    }
    return nn.Sequential(*[make[name](*args) for name, *args in spec])


def build_torch(spec):
    tnn = torch.nn
    make = {
        "linear": lambda a, b: tnn.Linear(a, b),
        "conv2d": lambda a, b: tnn.Conv2d(a, b, 3, padding=1),
        "batchnorm2d": lambda c: tnn.BatchNorm2d(c),
        "relu": tnn.ReLU,
        "tanh": tnn.Tanh,
        "maxpool2d": lambda: tnn.MaxPool2d(2),
        "flatten": tnn.Flatten,
    }
    return tnn.Sequential(*[make[name](*args) for name, *args in spec]).double()


def twin_models(spec, seed=0):
    """A minisam model (float64) and a torch model holding exactly its weights."""
    ms.manual_seed(seed)
    np_model = build_minisam(spec)
    torch_model = build_torch(spec)
    torch_model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in np_model.state_dict().items()})
    return np_model, torch_model


def batches(kind, count, size=12, seed=1):
    r = np.random.default_rng(seed)
    return [(r.standard_normal((size, *INPUT_SHAPE[kind])), r.integers(0, 3, size)) for _ in range(count)]


def numpy_closure(model, x, y):
    return lambda: F.cross_entropy(model(ms.Tensor(x)), y)


def torch_closure(model, x, y):
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    return lambda: torch.nn.functional.cross_entropy(model(x), y)


def assert_same_state(np_model, torch_model, step, what):
    torch_state = torch_model.state_dict()
    for name, value in np_model.state_dict().items():
        np.testing.assert_allclose(
            torch_state[name].numpy(), np.asarray(value), rtol=0, atol=TOLERANCE,
            err_msg=f"{what}: {name} differs after step {step}",
        )  # fmt: skip


def run_side_by_side(
    spec, kind, make_numpy, make_torch, steps=5, diagnostics=("gk_norm", "g0_norm", "cos_psi")
):
    np_model, torch_model = twin_models(spec)
    np_opt = make_numpy(optim.SGD(np_model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3))
    torch_opt = make_torch(torch.optim.SGD(torch_model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3))
    for step, (x, y) in enumerate(batches(kind, steps)):
        np_loss = np_opt.step(numpy_closure(np_model, x, y)).item()
        torch_loss = torch_opt.step(torch_closure(torch_model, x, y)).item()
        assert abs(np_loss - torch_loss) <= TOLERANCE, f"loss at θ, step {step}: {np_loss} vs {torch_loss}"
        for key in diagnostics:
            a, b = np_opt.diagnostics[key], torch_opt.diagnostics[key]
            assert abs(a - b) <= 1e-10, f"diagnostics[{key!r}] at step {step}: numpy {a}, torch {b}"
        assert_same_state(np_model, torch_model, step, type(torch_opt).__name__)
    return np_opt, torch_opt


@pytest.mark.parametrize("kind, spec", [("mlp", MLP), ("cnn", CNN_BN)], ids=["mlp", "cnn-batchnorm"])
@pytest.mark.parametrize("k", [1, 3])
def test_torch_sam_equals_numpy_sam_step_for_step_in_float64(float64, kind, spec, k):
    run_side_by_side(
        spec, kind, lambda b: optim.SAM(b, rho=0.2, steps=k), lambda b: mt.SAM(b, rho=0.2, steps=k)
    )


def test_torch_asam_equals_numpy_asam_step_for_step_in_float64(float64):
    run_side_by_side(
        MLP,
        "mlp",
        lambda b: optim.SAM(b, rho=0.5, adaptive=True, eta=0.01),
        lambda b: mt.SAM(b, rho=0.5, adaptive=True, eta=0.01),
    )


@pytest.mark.parametrize("kind, spec", [("mlp", MLP), ("cnn", CNN_BN)], ids=["mlp", "cnn-batchnorm"])
@pytest.mark.parametrize("k", [1, 3])
def test_torch_xsam_equals_numpy_xsam_while_searching_in_float64(float64, kind, spec, k):
    np_opt, torch_opt = run_side_by_side(
        spec,
        kind,
        lambda b: optim.XSAM(b, rho=0.2, steps=k, search_every=2),
        lambda b: mt.XSAM(b, rho=0.2, steps=k, search_every=2),
        diagnostics=("gk_norm", "g0_norm", "cos_psi", "psi", "alpha"),
    )
    assert torch_opt.diagnostics["searched"] and np_opt.diagnostics["searched"]  # step 4 searched
    np_probes = np.array(np_opt.diagnostics["probe_losses"])
    torch_probes = np.array(torch_opt.diagnostics["probe_losses"])
    assert np_probes.shape == torch_probes.shape == (21, 2)
    np.testing.assert_allclose(torch_probes, np_probes, rtol=0, atol=TOLERANCE)
