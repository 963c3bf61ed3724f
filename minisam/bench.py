"""How fast is minisam? Ratios measured side by side, in one process.

    python -m minisam bench            # the full table (a few minutes on 2 cores)
    python -m minisam bench --quick    # fewer rounds, for a first look

Every row runs two or more training-step functions in interleaved rounds (each round
times every contender once, in a rotating order), and reports the median time per step
and the ratio to the row's reference. Shared, noisy machines make single timings
meaningless; medians of interleaved rounds are robust to a neighbour's burst of work.

The references:
- a hand-written NumPy step (forward, backward by hand, SGD update) -- the floor for
  any NumPy autograd engine: same BLAS calls, no graph;
- PyTorch on the CPU, when it is installed (its rows are skipped otherwise).

Nothing here is a unit test: timings live in this report, never in the test suite.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------


def interleaved_medians(steps: dict, rounds: int = 15, repeat: int = 5, warmup: int = 3) -> dict:
    """Median seconds per call of each function, timed in interleaved rounds.

    Each round times every contender once, in a fresh random order, with a short pause
    before each: PyTorch's and OpenBLAS's worker threads keep spinning for a while after
    a parallel region, and whoever ran right after them would pay for it.
    """
    names = list(steps)
    for name in names:
        for _ in range(warmup):
            steps[name]()
    times = {name: [] for name in names}
    order = np.random.default_rng(0)
    for _ in range(rounds):
        for name in order.permutation(names):
            time.sleep(0.02)
            start = time.perf_counter()
            for _ in range(repeat):
                steps[name]()
            times[name].append((time.perf_counter() - start) / repeat)
    return {name: statistics.median(t) for name, t in times.items()}


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---------------------------------------------------------------------------------------
# Hand-written NumPy references (no autograd: the backward pass is written out)
# ---------------------------------------------------------------------------------------


def _cross_entropy_and_gradient(logits, y):
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(total[:, 0]) - shifted[np.arange(len(y)), y]))
    grad = exp / total
    grad[np.arange(len(y)), y] -= 1
    return loss, grad / len(y)


def _uniform_init(rng, fan_in, shape):
    bound = 1 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


class NumpyMLP:
    """784-256-256-10 ReLU MLP, softmax cross-entropy, plain SGD; every gradient by hand."""

    def __init__(self, sizes, lr=0.01, seed=0):
        rng = np.random.default_rng(seed)
        self.layers = [
            (_uniform_init(rng, i, (o, i)), _uniform_init(rng, i, (o,)))
            for i, o in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        self.lr = lr

    def step(self, x, y):
        activations, pre = [x], []
        for n, (w, b) in enumerate(self.layers):
            z = activations[-1] @ w.T + b
            pre.append(z)
            activations.append(np.maximum(z, 0) if n < len(self.layers) - 1 else z)
        logits = activations[-1]
        loss, grad = _cross_entropy_and_gradient(logits, y)
        for n in reversed(range(len(self.layers))):
            w, b = self.layers[n]
            if n < len(self.layers) - 1:
                grad = grad * (pre[n] > 0)
            grad_w, grad_b = grad.T @ activations[n], grad.sum(axis=0)
            if n > 0:
                grad = grad @ w
            w -= self.lr * grad_w
            b -= self.lr * grad_b
        return loss


def _im2col(x, k, pad):
    """(N, C, H, W) -> (N·H·W, C·k·k) for a k x k, stride-1 convolution with padding."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    cols = np.empty((n, oh, ow, c, k, k), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, :, i, j] = padded[:, :, i : i + oh, j : j + ow].transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, c * k * k)


def _col2im(cols, shape, k, pad):
    n, c, h, w = shape
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    cols = cols.reshape(n, oh, ow, c, k, k)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            padded[:, :, i : i + oh, j : j + ow] += cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return padded[:, :, pad : pad + h, pad : pad + w]


def _pool2x2(x):
    corners = (x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2])
    return np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))


def _pool2x2_backward(x, out, grad):
    dx = np.zeros_like(x)
    taken = np.zeros(out.shape, dtype=bool)
    for di in (0, 1):
        for dj in (0, 1):
            wins = (x[:, :, di::2, dj::2] == out) & ~taken  # the first maximum takes the gradient
            dx[:, :, di::2, dj::2] = grad * wins
            taken |= wins
    return dx


class NumpyCNN:
    """Conv 1→16→32 (3x3, pad 1) + ReLU + 2x2 max-pool each, Linear 32·7·7→10, SGD."""

    def __init__(self, channels=(1, 16, 32), image=28, classes=10, lr=0.01, seed=0):
        rng = np.random.default_rng(seed)
        self.convs = [
            (_uniform_init(rng, ci * 9, (co, ci, 3, 3)), _uniform_init(rng, ci * 9, (co,)))
            for ci, co in zip(channels[:-1], channels[1:], strict=True)
        ]
        features = channels[-1] * (image // 4) ** 2
        self.fc = (
            _uniform_init(rng, features, (classes, features)),
            _uniform_init(rng, features, (classes,)),
        )
        self.lr = lr

    def step(self, x, y):
        saved, h = [], x
        for w, b in self.convs:
            n, _, hh, ww = h.shape
            cols = _im2col(h, 3, 1)
            z = (cols @ w.reshape(len(w), -1).T + b).reshape(n, hh, ww, -1).transpose(0, 3, 1, 2)
            a = np.maximum(z, 0)
            pooled = _pool2x2(a)
            saved.append((h.shape, cols, z, a, pooled))
            h = pooled
        flat = h.reshape(len(h), -1)
        w_fc, b_fc = self.fc
        logits = flat @ w_fc.T + b_fc
        loss, grad = _cross_entropy_and_gradient(logits, y)
        grads_fc = (grad.T @ flat, grad.sum(axis=0))
        grad = (grad @ w_fc).reshape(h.shape)
        conv_grads = []
        for n in reversed(range(len(self.convs))):
            (w, _), (in_shape, cols, z, a, pooled) = self.convs[n], saved[n]
            grad = _pool2x2_backward(a, pooled, grad) * (z > 0)
            g2 = grad.transpose(0, 2, 3, 1).reshape(-1, len(w))
            conv_grads.append((g2.T @ cols, g2.sum(axis=0)))
            if n > 0:  # the input image needs no gradient
                grad = _col2im(g2 @ w.reshape(len(w), -1), in_shape, 3, 1)
        for (w, b), (gw, gb) in zip(reversed(self.convs), conv_grads, strict=True):
            w -= self.lr * gw.reshape(w.shape)
            b -= self.lr * gb
        self.fc[0][...] -= self.lr * grads_fc[0]
        self.fc[1][...] -= self.lr * grads_fc[1]
        return loss


# ---------------------------------------------------------------------------------------
# The same network in minisam and in PyTorch, from one description
# ---------------------------------------------------------------------------------------

MLP_LAYERS = [("linear", 784, 256), ("relu",), ("linear", 256, 256), ("relu",), ("linear", 256, 10)]
CNN_LAYERS = [
    ("conv2d", 1, 16),
    ("relu",),
    ("maxpool2d",),
    ("conv2d", 16, 32),
    ("relu",),
    ("maxpool2d",),
    ("flatten",),
    ("linear", 32 * 7 * 7, 10),
]
# A 1-D CNN for MNIST-1D signals (1 x 40): two 5-tap convolutions, then a linear classifier.
CNN1D_LAYERS = [
    ("conv1d", 1, 32),
    ("relu",),
    ("conv1d", 32, 32),
    ("relu",),
    ("flatten",),
    ("linear", 32 * 40, 10),
]


def _build(layers, nn_module):
    """Build ``layers`` with either ``minisam.nn`` or ``torch.nn`` (same class names)."""
    made = []
    for kind, *sizes in layers:
        if kind == "linear":
            made.append(nn_module.Linear(*sizes))
        elif kind == "conv2d":
            made.append(nn_module.Conv2d(*sizes, kernel_size=3, padding=1))
        elif kind == "conv1d":
            made.append(nn_module.Conv1d(*sizes, kernel_size=5, padding=2))
        elif kind == "maxpool2d":
            made.append(nn_module.MaxPool2d(2))
        elif kind == "relu":
            made.append(nn_module.ReLU())
        elif kind == "flatten":
            made.append(nn_module.Flatten())
    return nn_module.Sequential(*made)


def minisam_net(layers):
    from minisam import nn

    return _build(layers, nn)


def torch_twin(model, layers):
    """A PyTorch copy of a minisam model, weights included (state_dict names match)."""
    torch = _torch()
    twin = _build(layers, torch.nn)
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return twin


def minisam_step(model, optimizer_name="sgd", lr=0.01, **kwargs):
    """A closure-style training step of ``model`` with SGD, SAM or XSAM."""
    import minisam as ms
    import minisam.functional as F
    from minisam import optim

    base = optim.SGD(model.parameters(), lr=lr)
    opt = {
        "sgd": lambda: base,
        "sam": lambda: optim.SAM(base, **kwargs),
        "xsam": lambda: optim.XSAM(base, **kwargs),
    }[optimizer_name]()

    def step(x, y):
        inputs, targets = ms.Tensor(x), ms.Tensor(y)
        return opt.step(lambda: F.cross_entropy(model(inputs), targets)).item()

    return step


def torch_step(model, lr=0.01):
    torch = _torch()
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step(x, y):
        inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        opt.step()
        return loss.item()

    return step


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------


def _batch(shape, classes=10, seed=0):
    gen = np.random.default_rng(seed)
    return gen.standard_normal(shape).astype(np.float32), gen.integers(0, classes, shape[0])


def _agreement(model, layers, x, y, steps=3):
    """Largest loss difference between minisam and its PyTorch twin over a few SGD steps."""
    twin = torch_twin(model, layers)
    ours, theirs = minisam_step(model, lr=0.01), torch_step(twin, lr=0.01)
    return max(abs(ours(x, y) - theirs(x, y)) for _ in range(steps))


def network_rows(rounds, repeat):
    """minisam vs hand-written NumPy vs PyTorch on the MLP, the 2-D CNN and the 1-D CNN."""
    import minisam as ms

    torch = _torch()
    rows = []
    cases = [
        ("MLP 784-256-256-10, batch 128", MLP_LAYERS, (128, 784), NumpyMLP([784, 256, 256, 10])),
        ("CNN 1→16→32 on 28x28, batch 64", CNN_LAYERS, (64, 1, 28, 28), NumpyCNN()),
        ("1-D CNN on MNIST-1D (1x40), batch 64", CNN1D_LAYERS, (64, 1, 40), None),
    ]
    for title, layers, shape, numpy_net in cases:
        ms.manual_seed(0)
        x, y = _batch(shape)
        model = minisam_net(layers)
        ours = minisam_step(model)
        steps = {"minisam": lambda: ours(x, y)}
        if numpy_net is not None:
            steps["NumPy by hand"] = lambda: numpy_net.step(x, y)
        agreement = None
        if torch is not None:
            agreement = _agreement(minisam_net(layers), layers, x, y)
            theirs = torch_step(torch_twin(model, layers))
            steps["PyTorch CPU"] = lambda: theirs(x, y)
        medians = interleaved_medians(steps, rounds=rounds, repeat=repeat)
        rows.append((title, medians, agreement))
    return rows


def optimizer_rows(rounds, repeat):
    """Cost of a SAM step relative to SGD, and of XSAM (one search per 100 steps) to SAM."""
    import minisam as ms

    x, y = _batch((128, 784))
    steps = {}
    for name, kwargs in (("SGD", {}), ("SAM", {"rho": 0.05}), ("XSAM", {"rho": 0.05, "search_every": 100})):
        ms.manual_seed(0)
        step = minisam_step(minisam_net(MLP_LAYERS), name.lower(), **kwargs)
        steps[name] = lambda step=step: step(x, y)
    # Time XSAM over whole blocks of 100 steps, so each block holds exactly one search.
    medians = interleaved_medians(steps, rounds=rounds, repeat=100)
    return medians


def _fmt_ms(seconds):
    return f"{seconds * 1e3:8.2f} ms"


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
    x, y = _batch((32, 1, 28, 28))
    x = x.astype(np.float64)
    for optimizer_name in ("sam", "xsam"):
        cpu = _optimizer_step_on("numpy", optimizer_name, weights, x, y)
        gpu = _optimizer_step_on("cupy", optimizer_name, weights, x, y)
        worst = max(float(np.max(np.abs(cpu[k] - gpu[k]))) for k in cpu)
        print(f"   {optimizer_name.upper():<5} step: {worst:.2e}")

    print("== CNN training step, batch 256, float32 (medians of interleaved rounds)")
    x, y = _batch((256, 1, 28, 28))
    steps = {}
    for name in ("numpy", "cupy"):

        def make(name=name):
            ms.manual_seed(0)
            return minisam_step(minisam_net(CNN_LAYERS))

        step = _on_backend(name, make)
        steps[name] = lambda step=step, name=name: _on_backend(name, lambda: step(x, y))
    medians = interleaved_medians(steps, rounds=rounds, repeat=3)
    print(
        f"   NumPy {_fmt_ms(medians['numpy'])}   CuPy {_fmt_ms(medians['cupy'])}   "
        f"speed-up {medians['numpy'] / medians['cupy']:.1f}x (target >= 10x on an H100)"
    )
    return 0 if tests.returncode == 0 else 1


# ---------------------------------------------------------------------------------------
# Memory and the allocator: measured in child processes, since both are per process
# ---------------------------------------------------------------------------------------

# glibc hands freed blocks above the mmap threshold (128 KiB at first) straight back to
# the OS, so every step's multi-megabyte im2col buffers and activations are mapped and
# page-faulted afresh. Raising the mmap threshold (to its 32 MiB maximum) and the trim
# threshold lets the process keep them. minisam does not change this behind your back:
# it is a process-wide setting. To opt in, start Python with these variables set.
KEEP_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20)}

_CNN_CHILD = """
import json, sys
import minisam as ms
from minisam import bench
ms.manual_seed(0)
x, y = bench._batch((64, 1, 28, 28))
step = bench.minisam_step(bench.minisam_net(bench.CNN_LAYERS))
seconds = bench.interleaved_medians({"cnn": lambda: step(x, y)}, rounds=int(sys.argv[1]), repeat=3)
print(json.dumps(seconds["cnn"]))
"""

_TRAIN_CHILD = """
import json, resource
from minisam.train import RunConfig, train
train(RunConfig(dataset="digits", model="cnn2d", epochs=2, optimizer="xsam"), progress=False)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""


def _child(code, env_extra, *args) -> float:
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in KEEP_MEMORY}
    env.update(env_extra)
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def allocator_rows(rounds: int, repeats: int = 3) -> dict:
    """The CNN step and a short training run's peak memory, default malloc vs kept memory;
    the child processes alternate so that the machine's drift hits both alike."""
    steps = {"default": [], "kept": []}
    for _ in range(repeats):
        for name, env in (("default", {}), ("kept", KEEP_MEMORY)):
            steps[name].append(_child(_CNN_CHILD, env, rounds))
    peak = {name: _child(_TRAIN_CHILD, env) for name, env in (("default", {}), ("kept", KEEP_MEMORY))}
    return {name: (statistics.median(steps[name]), peak[name]) for name in steps}


def _machine_note() -> str:
    import os

    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cores:
        return (
            f"WARNING: the machine is busy (load average {load:.1f} on {cores} cores): "
            "BLAS threads then fight over the cores and timings swing wildly"
        )
    return f"load average {load:.1f} on {cores} cores"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minisam bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (noisier)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per row")
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="CuPy vs NumPy: pytest -m gpu, one SAM/XSAM step, CNN speed at batch 256",
    )
    parser.add_argument(
        "--skip-allocator",
        action="store_true",
        help="skip the child processes that measure malloc settings and peak memory",
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 15)
    repeat = 3 if args.quick else 5
    if args.gpu:
        return gpu_report(rounds)

    import minisam as ms

    torch = _torch()
    print(
        f"minisam bench: NumPy {np.__version__} on {platform.machine()}, backend {ms.backend.name}, "
        f"float32; medians of {rounds} interleaved rounds in random order"
    )
    print(
        "PyTorch:",
        f"{torch.__version__} ({torch.get_num_threads()} threads)"
        if torch
        else "not installed (its columns are skipped)",
    )
    print(_machine_note())
    print()
    print(
        f"{'training step':<40}{'minisam':>12}{'NumPy by hand':>16}{'PyTorch CPU':>14}"
        f"{'vs NumPy':>10}{'vs PyTorch':>12}"
    )
    for title, medians, agreement in network_rows(rounds, repeat):
        ours = medians["minisam"]
        numpy_t, torch_t = medians.get("NumPy by hand"), medians.get("PyTorch CPU")
        print(
            f"{title:<40}{_fmt_ms(ours):>12}"
            f"{_fmt_ms(numpy_t) if numpy_t else '-':>16}{_fmt_ms(torch_t) if torch_t else '-':>14}"
            f"{f'{ours / numpy_t:.2f}x' if numpy_t else '-':>10}"
            f"{f'{ours / torch_t:.2f}x' if torch_t else '-':>12}"
            + (f"   (loss vs PyTorch: max diff {agreement:.1e})" if agreement is not None else "")
        )
    print("targets: MLP <= 1.25x NumPy by hand and not slower than PyTorch; CNN <= 1.5x PyTorch")
    print()
    costs = optimizer_rows(max(rounds // 3, 3), repeat)
    print(
        f"SAM step / SGD step (MLP, batch 128):     {costs['SAM'] / costs['SGD']:.2f}x  "
        "(target <= 2.15; two forward+backward passes make 2.0)"
    )
    print(
        f"XSAM (1 search per 100 steps) / SAM:      {costs['XSAM'] / costs['SAM']:.2f}x  "
        "(target <= 1.05; a search is 21 forward passes)"
    )
    if not args.skip_allocator:
        print()
        rows = allocator_rows(max(rounds // 3, 3))
        (step_default, peak_default), (step_kept, peak_kept) = rows["default"], rows["kept"]
        print("malloc (child processes, CNN step, and peak memory of a 2-epoch `train` run):")
        print(f"  default glibc malloc            {_fmt_ms(step_default)}   peak {peak_default:6.0f} MiB")
        print(f"  {' '.join(f'{k}={v}' for k, v in KEEP_MEMORY.items())}")
        print(
            f"                                  {_fmt_ms(step_kept)}   peak {peak_kept:6.0f} MiB"
            f"   ({step_default / step_kept:.2f}x faster)"
        )
        print("  minisam leaves malloc alone (a process-wide choice); set the variables above to opt in")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
