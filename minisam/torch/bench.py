"""What a minisam.torch step costs next to a plain PyTorch SGD step, on the CPU.

    python -m minisam.torch.bench            # MLP and CNN, 7 rounds of 100 steps each
    python -m minisam.torch.bench --quick    # 3 rounds, for a first look

The method of ``python -m minisam bench``: one thread for every contender (torch and the
BLAS, through threadpoolctl), the contenders timed in interleaved rounds in a fresh random
order with a short pause before each, and the median over rounds. Each timed call runs 100
training steps, so XSAM with ``search_every=100`` searches exactly once per call.

Two clocks (``minisam/bench/timing.py``): wall time, and the CPU time of the process
(``time.process_time``; with one thread, the thread that does all the work). On a shared
machine whose cores are busy with other jobs the wall time also counts the time this
process waited for a core; the CPU time does not, so its ratios are the steadier ones
there (cache and memory-bandwidth contention still reach both).

Targets (issue 13): SAM ≤ 2.1x the same model's SGD step (two forward+backward passes
instead of one make the floor 2.0); XSAM with one search per 100 steps ≤ 1.1x SAM. The floor
row times exactly those two passes and one update, so the table shows how much of SAM's ratio
is the algorithm's unavoidable second pass and how much is minisam.torch's own work.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform

import torch

from ..bench.timing import interleaved_timings
from ..threads import blas_threads
from . import SAM, XSAM

STEPS_PER_CALL = 100
TARGETS = {"SAM / SGD": 2.1, "XSAM (search every 100) / SAM": 1.1}


def _mlp():
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10),
    ), 128  # fmt: skip


def _cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10),
    ), 64  # fmt: skip


MODELS = {"MLP 784-256-256-10, batch 128": _mlp, "CNN 1-16-32 (3x3) on 28x28, batch 64": _cnn}


def contenders(make_model) -> dict:
    """Training loops on the same model and batch, each a function that runs STEPS_PER_CALL
    steps: plain SGD; the floor (two forward+backward passes and one SGD update, no ascent,
    no norms, no restore); SAM; XSAM searching once per call."""
    # each contender trains its own copy of the same model on the same batch
    torch.manual_seed(0)
    model, batch_size = make_model()
    x, y = torch.randn(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))

    def setup():
        twin = copy.deepcopy(model)
        base = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        return base, (lambda: torch.nn.functional.cross_entropy(twin(x), y))

    def sgd_steps(passes):
        base, closure = setup()

        def run():
            for _ in range(STEPS_PER_CALL):
                for _ in range(passes):  # 2: SAM's two passes and one update, none of its vector work
                    base.zero_grad()
                    closure().backward()
                base.step()

        return run

    def steps_of(wrap):
        base, closure = setup()
        opt = wrap(base)

        def run():
            for _ in range(STEPS_PER_CALL):
                opt.step(closure)

        return run

    return {
        "SGD": sgd_steps(passes=1),
        "floor": sgd_steps(passes=2),
        "SAM": steps_of(lambda base: SAM(base, rho=0.05)),
        "XSAM": steps_of(lambda base: XSAM(base, rho=0.05, search_every=STEPS_PER_CALL)),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m minisam.torch.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per model (at least 3)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    if rounds < 3:
        parser.error(f"--rounds must be at least 3 (a median of fewer is not a median), got {rounds}")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, one thread, float32")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores when it started")
    print(f"median ms per step over {rounds} interleaved rounds of {STEPS_PER_CALL} steps\n")
    with blas_threads(1):
        for name, make_model in MODELS.items():
            timings = interleaved_timings(contenders(make_model), rounds=rounds, repeat=1, warmup=1)
            print(name)
            for clock, which in (("wall", "wall"), ("CPU", "cpu")):
                ms = {k: 1000 * timings.median(k, which) / STEPS_PER_CALL for k in timings.cpu}
                ratios = {
                    "floor / SGD": ms["floor"] / ms["SGD"],
                    "SAM / SGD": ms["SAM"] / ms["SGD"],
                    "XSAM (search every 100) / SAM": ms["XSAM"] / ms["SAM"],
                }
                print(f"  {clock:4s} time: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items()))
                for label, ratio in ratios.items():
                    if label not in TARGETS:
                        print(f"      {label:30s} {ratio:5.2f}x   (two passes and one update, nothing else)")
                        continue
                    verdict = "meets" if ratio <= TARGETS[label] else "MISSES"
                    print(f"      {label:30s} {ratio:5.2f}x   target <= {TARGETS[label]}x: {verdict}")


if __name__ == "__main__":
    main()
