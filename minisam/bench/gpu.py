"""The GPU check: CuPy against NumPy, for ``python -m minisam bench --gpu``.

Three things: the gpu-marked tests (every op's value and gradient on CuPy against NumPy),
one float64 SAM and one XSAM step of the small CNN on both backends (their largest weight
difference), and the speed of a CNN training step at batch 256 on both.
"""

from __future__ import annotations

import numpy as np

from .networks import CNN_LAYERS, batch, minisam_net, minisam_step
from .timing import interleaved_medians, millis


def _on_backend(name, fn):
    """Run ``fn()`` with backend ``name`` selected, then go back to the previous backend."""
    import minisam as ms

    previous = ms.backend.name
    ms.backend.use(name)
    try:
        return fn()
    finally:
        ms.backend.use(previous)


def _optimizer_step_on(name, optimizer_name, weights, x, y):
    """One float64 SAM/XSAM step of the small CNN from ``weights``; the new weights, on host."""
    import minisam as ms

    def run():
        model = minisam_net(CNN_LAYERS)
        model.load_state_dict(weights)
        step = minisam_step(
            model,
            optimizer_name,
            lr=0.1,
            rho=0.05,
            **({"search_every": 1} if optimizer_name == "xsam" else {}),
        )
        step(x, y)
        return {k: np.asarray(v) for k, v in model.state_dict().items()}

    previous = ms.get_default_dtype()
    ms.set_default_dtype(np.float64)
    try:
        return _on_backend(name, run)
    finally:
        ms.set_default_dtype(previous)


def gpu_report(rounds: int) -> int:
    """CuPy against NumPy: the gpu-marked tests, one SAM and one XSAM step, and CNN speed."""
    import subprocess
    import sys

    import minisam as ms

    reason = ms.backend.gpu_unavailable_reason()
    if reason is not None:
        print(f"GPU section not run: {reason}")
        return 1
    print("== pytest -m gpu (every op, value and gradient, CuPy vs NumPy)")
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
    )
    print("\n".join(tests.stdout.strip().splitlines()[-3:]))

    print("== one optimizer step of the small CNN in float64, CuPy vs NumPy (max |difference|)")
    ms.manual_seed(0)
    weights = minisam_net(CNN_LAYERS).state_dict()
    x, y = batch((32, 1, 28, 28))
    x = x.astype(np.float64)
    for optimizer_name in ("sam", "xsam"):
        cpu = _optimizer_step_on("numpy", optimizer_name, weights, x, y)
        gpu = _optimizer_step_on("cupy", optimizer_name, weights, x, y)
        worst = max(float(np.max(np.abs(cpu[k] - gpu[k]))) for k in cpu)
        print(f"   {optimizer_name.upper():<5} step: {worst:.2e}")

    print("== CNN training step, batch 256, float32 (medians of interleaved rounds)")
    x, y = batch((256, 1, 28, 28))
    steps = {}
    for name in ("numpy", "cupy"):

        def make(name=name):
            ms.manual_seed(0)
            return minisam_step(minisam_net(CNN_LAYERS))

        step = _on_backend(name, make)
        steps[name] = lambda step=step, name=name: _on_backend(name, lambda: step(x, y))
    medians = interleaved_medians(steps, rounds=rounds, repeat=3)
    print(
        f"   NumPy {millis(medians['numpy'])}   CuPy {millis(medians['cupy'])}   "
        f"speed-up {medians['numpy'] / medians['cupy']:.1f}x (target >= 10x on an H100)"
    )
    return 0 if tests.returncode == 0 else 1
