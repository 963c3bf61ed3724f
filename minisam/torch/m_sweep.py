"""What m-sharpness does on MNIST-1D: a small, pre-registered sweep over m with minisam.torch.SAM.

    python -m minisam.torch.m_sweep                 # the registered protocol (a few minutes)
    python -m minisam.torch.m_sweep --epochs 2 --seeds 1   # a smoke run

The protocol (written in README.md, section "m-sharpness on MNIST-1D", before it was run):
MNIST-1D from ``minisam.data.load_mnist1d()`` (4000 train / 1000 test, standardised), an
MLP 40-256-256-10 with ReLU in float32, batch 64 (the last partial batch dropped), SGD with
momentum 0.9, weight decay 5e-4, lr 0.05 constant, 20 epochs, ρ = 0.05; conditions: plain
SGD, and SAM with m = 8, 16, 32 and 64 (= the batch: plain SAM); seeds 0, 1, 2 (they set the
initial weights and the shuffling). Reported: final test accuracy (after the last epoch,
no early stopping, nothing tuned on the test set) as mean ± standard deviation over seeds
and a 95% t-interval for the mean, and the final training loss.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

from ..data import load_mnist1d
from . import SAM

T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # Student's t, 97.5% quantile, by dof


def make_model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(40, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )  # fmt: skip


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


def train(m, seed, data, epochs, batch_size=64, rho=0.05, lr=0.05):
    """One run; m = None is plain SGD. Returns (test accuracy, final training loss)."""
    torch.manual_seed(seed)
    model = make_model()
    base = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    opt = None if m is None else SAM(base, rho=rho, m=m)
    x, y = data
    shuffle = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=shuffle)
        for start in range(0, len(x) - batch_size + 1, batch_size):
            xb, yb = x[order[start : start + batch_size]], y[order[start : start + batch_size]]
            if opt is None:
                base.zero_grad()
                torch.nn.functional.cross_entropy(model(xb), yb).backward()
                base.step()
            else:
                opt.step(
                    lambda part=slice(None): torch.nn.functional.cross_entropy(model(xb[part]), yb[part]),
                    batch_size=batch_size,
                )
    with torch.no_grad():
        train_loss = torch.nn.functional.cross_entropy(model(x), y).item()
    return model, train_loss


def summary(values):
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    std = statistics.stdev(values)
    return mean, std, T_975[len(values) - 1] * std / math.sqrt(len(values))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m minisam.torch.m_sweep", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 … N−1 (at most 6)")
    parser.add_argument("--ms", default="8,16,32,64", help="the values of m, comma-separated")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ds = load_mnist1d()
    train_data = (torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train))
    test_x, test_y = torch.from_numpy(ds.x_test), torch.from_numpy(ds.y_test)
    conditions = [None] + [int(v) for v in args.ms.split(",")]
    print(f"MNIST-1D, MLP 40-256-256-10, batch 64, {args.epochs} epochs, rho 0.05, seeds 0..{args.seeds - 1}")
    header = "test accuracy % (mean ± std) [95% CI]"
    print(f"{'condition':>16s}  {header:>38s}  {'per seed':>22s}  {'train loss':>10s}  {'s/run':>6s}")
    for m in conditions:
        accuracies, losses, started = [], [], time.perf_counter()
        for seed in range(args.seeds):
            model, train_loss = train(m, seed, train_data, args.epochs)
            accuracies.append(100 * accuracy(model, test_x, test_y))
            losses.append(train_loss)
        mean, std, half = summary(accuracies)
        label = "SGD" if m is None else f"SAM m={m}"
        seconds = (time.perf_counter() - started) / args.seeds
        print(
            f"{label:>16s}  {mean:6.2f} ± {std:4.2f}  [{mean - half:6.2f}, {mean + half:6.2f}]"
            f"  {np.round(accuracies, 1)!s:>22s}  {statistics.fmean(losses):10.4f}  {seconds:6.1f}"
        )


if __name__ == "__main__":
    main()
