"""A float32 run stays float32: no op, layer or optimizer silently upcasts to float64."""

import numpy as np
import pytest

import minisam as ms
import minisam.functional as F
from minisam import models, optim


def _optimizer(name, params):
    base = optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    return {
        "sgd": lambda: base,
        "sam": lambda: optim.SAM(base, rho=0.05, steps=2),
        "asam": lambda: optim.SAM(base, rho=0.5, adaptive=True),
        "xsam": lambda: optim.XSAM(base, rho=0.05, steps=2, search_every=1),
    }[name]()


@pytest.mark.parametrize("name", ["sgd", "sam", "asam", "xsam"])
def test_training_steps_keep_every_array_float32(name):
    assert ms.get_default_dtype() == np.float32
    ms.manual_seed(0)
    model = models.CNN2d(in_channels=1, image_size=8, num_classes=10, batch_norm=True, dropout=0.1)
    opt = _optimizer(name, list(model.parameters()))
    gen = np.random.default_rng(0)
    x = ms.Tensor(gen.standard_normal((16, 1, 8, 8)))  # float64 on the host becomes float32
    y = gen.integers(0, 10, 16)
    for _ in range(3):
        loss = opt.step(lambda: F.cross_entropy(model(x), y))
    assert loss.dtype == np.float32
    for key, value in model.state_dict().items():
        if value.dtype.kind == "f":
            assert value.dtype == np.float32, key
    for p in model.parameters():
        assert p.grad is None or p.grad.dtype == np.float32
    base = opt if name == "sgd" else opt.base
    assert all(b is None or b.dtype == np.float32 for b in base.momentum_buffers)
    model.eval()
    with ms.no_grad():
        assert model(x).dtype == np.float32
