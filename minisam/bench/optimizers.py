"""The optimizer section of the bench: SAM against SGD and XSAM against SAM, each ratio
measured in several child processes.

Why children: on this project's machines the same step costs up to 20 % more or less from
one Python process to the next (the place its arrays land in memory), and SGD and SAM do
not move together, so one process's SAM/SGD ratio swung between 2.1 and 2.35 while rounds
within it agreed to 1-2 %. Each child times the four steps in interleaved rounds on one
model that all four optimizers share; its ratio is the median over rounds of the
within-round ratio of CPU times; the report gives the median over children, and each
child's value.

    python -m minisam.bench.optimizers ROUNDS     # one child: prints its result as JSON
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

OPTIMIZER_CASES = {
    "SGD": ("sgd", {}),
    "SAM": ("sam", {"rho": 0.05}),
    "XSAM never searching": ("xsam", {"rho": 0.05, "search_every": 0}),
    "XSAM 1 search / 100 steps": ("xsam", {"rho": 0.05, "search_every": 100}),
}
RATIOS = {  # label: (contender, reference)
    "SAM / SGD": ("SAM", "SGD"),
    "XSAM never searching / SAM": ("XSAM never searching", "SAM"),
    "XSAM 1 search per 100 steps / SAM": ("XSAM 1 search / 100 steps", "SAM"),
}


def optimizer_timings(rounds: int):
    """This process's ``Timings`` of one step of each optimizer on the bench MLP (batch
    128), all four stepping one shared model, each timed over whole blocks of 100 steps so
    that every block of the searching XSAM holds exactly one search."""
    import minisam as ms

    from .networks import MLP_LAYERS, batch, minisam_net, minisam_step
    from .timing import interleaved_timings

    ms.manual_seed(0)
    x, y = batch((128, 784))
    model = minisam_net(MLP_LAYERS)
    steps = {}
    for name, (optimizer, kwargs) in OPTIMIZER_CASES.items():
        step = minisam_step(model, optimizer, **kwargs)
        steps[name] = lambda step=step: step(x, y)
    return interleaved_timings(steps, rounds=rounds, repeat=100)


def child_result(rounds: int) -> dict:
    """What one child reports: its ratios and its median CPU milliseconds per step."""
    timings = optimizer_timings(rounds)
    return {
        "ratios": {label: timings.ratio(a, b) for label, (a, b) in RATIOS.items()},
        "cpu_ms": {name: 1e3 * timings.median(name, "cpu") for name in OPTIMIZER_CASES},
    }


def run_children(rounds: int, children: int) -> list:
    """Each child's result, the children run one after another."""
    results = []
    for _ in range(children):
        done = subprocess.run(
            [sys.executable, "-m", "minisam.bench.optimizers", str(rounds)], capture_output=True, text=True
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"a bench child process failed: {last}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def summary(results: list) -> dict:
    """The median over children of each ratio and of each step's CPU time."""
    return {
        "ratios": {k: statistics.median(r["ratios"][k] for r in results) for k in RATIOS},
        "cpu_ms": {k: statistics.median(r["cpu_ms"][k] for r in results) for k in OPTIMIZER_CASES},
    }


def main(argv=None) -> None:
    from minisam import threads

    threads.use_one_blas_thread()
    print(json.dumps(child_result(int((argv or sys.argv[1:])[0]))))


if __name__ == "__main__":
    main()
