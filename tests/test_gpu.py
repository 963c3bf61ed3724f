"""The SAM family and the training runner on CuPy give NumPy's numbers (GPU only).

These tests skip, with the reason, where CuPy cannot run; `python -m minisam bench --gpu`
runs them together with the speed comparison on a GPU machine.
"""

import numpy as np
import pytest

import minisam as ms
import minisam.functional as F
from minisam import models, optim
from minisam.train import RunConfig, train

pytestmark = pytest.mark.gpu


def _one_step(optimizer_name, backend_name, weights, x, y):
    ms.backend.use(backend_name)
    try:
        model = models.CNN2d(in_channels=1, image_size=8, num_classes=10, batch_norm=True)
        model.load_state_dict(weights)
        base = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        opt = (
            optim.SAM(base, rho=0.05, steps=2)
            if optimizer_name == "sam"
            else optim.XSAM(base, rho=0.05, steps=2, search_every=1)
        )
        inputs, targets = ms.Tensor(x), ms.Tensor(y)
        for _ in range(2):
            opt.step(lambda: F.cross_entropy(model(inputs), targets))
        return model.state_dict()
    finally:
        ms.backend.use("numpy")


@pytest.mark.parametrize("optimizer_name", ["sam", "xsam"])
def test_sam_family_step_on_cupy_matches_numpy_in_float64(cupy_backend, float64, optimizer_name):
    ms.backend.use("numpy")
    ms.manual_seed(0)
    weights = models.CNN2d(in_channels=1, image_size=8, num_classes=10, batch_norm=True).state_dict()
    gen = np.random.default_rng(0)
    x, y = gen.standard_normal((16, 1, 8, 8)), gen.integers(0, 10, 16)
    cpu = _one_step(optimizer_name, "numpy", weights, x, y)
    gpu = _one_step(optimizer_name, "cupy", weights, x, y)
    for key in cpu:
        np.testing.assert_allclose(gpu[key], cpu[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_training_run_on_cupy_follows_the_numpy_run(cupy_backend):
    config = dict(dataset="digits", model="cnn2d", optimizer="xsam", epochs=1, batch_size=64)
    gpu = train(RunConfig(backend="cupy", **config), progress=False)
    cpu = train(RunConfig(backend="numpy", **config), progress=False)
    assert gpu.final["test_acc"] == pytest.approx(cpu.final["test_acc"], abs=0.02)
    assert gpu.history[0]["train_loss"] == pytest.approx(cpu.history[0]["train_loss"], rel=1e-3)
