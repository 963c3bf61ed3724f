"""m-sharpness: minisam.torch.SAM(m=...) equals minisam.optim.SAM(m=...) step for step in float64.

Both follow the contract of minisam/optim/ALGORITHMS.md, section m-sharpness: the closure takes
an optional ``slice`` of example indices, ``step(closure, batch_size=B)``, the micro-batches are
taken in order, and BatchNorm's running statistics come from each micro-batch's pass at θ.
(``optim.SAM``'s ``m`` arrives from another branch; until it is merged these tests fail with a
TypeError about the unexpected argument ``m``.)
"""

import pytest

torch = pytest.importorskip(
    "torch", reason="minisam.torch needs the optional torch extra (pip install -e '.[torch]')"
)

from test_torch_vs_numpy import (  # noqa: E402
    CNN_BN,
    MLP,
    TOLERANCE,
    assert_same_state,
    batches,
    twin_models,
)

import minisam as ms  # noqa: E402
import minisam.functional as F  # noqa: E402
import minisam.torch as mt  # noqa: E402
from minisam import optim  # noqa: E402


@pytest.mark.parametrize("kind, spec", [("mlp", MLP), ("cnn", CNN_BN)], ids=["mlp", "cnn-batchnorm"])
@pytest.mark.parametrize("m, k", [(4, 1), (3, 1), (6, 3)])
def test_torch_m_sharpness_equals_numpy_m_sharpness_step_for_step_in_float64(float64, kind, spec, m, k):
    np_model, torch_model = twin_models(spec)
    np_opt = optim.SAM(
        optim.SGD(np_model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3), rho=0.2, steps=k, m=m
    )
    torch_opt = mt.SAM(
        torch.optim.SGD(torch_model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3),
        rho=0.2,
        steps=k,
        m=m,
    )
    for step, (x, y) in enumerate(batches(kind, 4, size=12)):
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        np_loss = np_opt.step(
            lambda part=slice(None): F.cross_entropy(np_model(ms.Tensor(x[part])), y[part]), batch_size=12
        ).item()
        torch_loss = torch_opt.step(
            lambda part=slice(None): torch.nn.functional.cross_entropy(torch_model(tx[part]), ty[part]),
            batch_size=12,
        ).item()
        assert abs(np_loss - torch_loss) <= TOLERANCE, (
            f"mean loss at θ, step {step}: {np_loss} vs {torch_loss}"
        )
        assert_same_state(np_model, torch_model, step, f"SAM(m={m}, steps={k})")
