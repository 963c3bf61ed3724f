"""Timing on a shared, noisy machine: medians of interleaved rounds in random order.

Single timings are meaningless where a neighbour's burst of work can double them. Every
row of the bench therefore runs its contenders in rounds; each round times every
contender once, in a fresh random order, on the wall clock and on the process's CPU clock.
The report gives the median per contender, and a ratio of two contenders as the median of
their ratios round by round.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class Timings:
    """Seconds per call of each contender, one entry per round, on two clocks: ``wall``
    (perf_counter) and ``cpu`` (process_time: the time this process ran, all its threads).
    A neighbour that takes the core away stretches the wall clock but not the CPU clock."""

    wall: dict
    cpu: dict

    def median(self, name: str, clock: str = "wall") -> float:
        return statistics.median(getattr(self, clock)[name])

    def ratio(self, name: str, reference: str, clock: str = "cpu") -> float:
        """The median over rounds of name's time / reference's time in the same round:
        side by side, so a slow stretch of the machine that spans a round cancels out."""
        times = getattr(self, clock)
        return statistics.median(a / b for a, b in zip(times[name], times[reference], strict=True))


def interleaved_timings(steps: dict, rounds: int = 15, repeat: int = 5, warmup: int = 3) -> Timings:
    """Seconds per call of each function, timed in interleaved rounds.

    Each round times every contender once (``repeat`` calls, averaged), in a fresh random
    order, with a short pause before each: PyTorch's and OpenBLAS's worker threads keep
    spinning for a while after a parallel region, and whoever ran right after them would
    pay for it.
    """
    names = list(steps)
    for name in names:
        for _ in range(warmup):
            steps[name]()
    timings = Timings({name: [] for name in names}, {name: [] for name in names})
    order = np.random.default_rng(0)
    for _ in range(rounds):
        for name in order.permutation(names):
            time.sleep(0.02)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(repeat):
                steps[name]()
            timings.cpu[name].append((time.process_time() - cpu) / repeat)
            timings.wall[name].append((time.perf_counter() - wall) / repeat)
    return timings


def interleaved_medians(steps: dict, rounds: int = 15, repeat: int = 5, warmup: int = 3) -> dict:
    """Median wall-clock seconds per call of each function over interleaved rounds."""
    timings = interleaved_timings(steps, rounds, repeat, warmup)
    return {name: timings.median(name) for name in steps}


def library_default_blas_threads() -> int:
    """The number of threads the BLAS library NumPy uses would start by itself: the
    largest thread count threadpoolctl reports (call before limiting it)."""
    from threadpoolctl import threadpool_info

    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(counts, default=1)


def machine_note() -> str:
    """The load average, with a warning when the machine is busy."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cores:
        return (
            f"WARNING: the machine is busy (load average {load:.1f} on {cores} cores): "
            "timings swing, and more so with several BLAS threads"
        )
    return f"load average {load:.1f} on {cores} cores"


def millis(seconds: float) -> str:
    """Seconds as a right-aligned millisecond figure, e.g. '    2.51 ms'."""
    return f"{seconds * 1e3:8.2f} ms"
