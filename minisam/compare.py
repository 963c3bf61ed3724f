"""Several optimizers over several seeds, with the optimizer the only difference.

For each seed, every optimizer starts from the same initial weights and sees the same
label noise and the same order of mini-batches: seeding before each run fixes all of
them (``ms.manual_seed``), so a difference in the table is the optimizer's doing. The
table gives mean ± standard deviation over the seeds (NumPy's ``std``, ddof 0: the
spread of these seeds, not an estimate for a larger population).

    from minisam.compare import compare, format_table
    from minisam.train import RunConfig
    summary = compare(RunConfig(dataset="digits", epochs=5), optimizers=("sgd", "sam"), seeds=(0, 1))
    print(format_table(summary["rows"], summary["seeds"]))

Everything is checked before the first run starts: an optimizer or seed listed twice, a
setting that a run would refuse, or an output folder that cannot be written is an error
at once, not after an hour of training.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from . import checks
from .train import OPTIMIZERS, RunConfig, check_output_folder, train

# (key in RunResult.final, column title, number format)
COLUMNS = [
    ("test_acc", "test acc", "{:.3f}"),
    ("train_loss", "train loss", "{:.3f}"),
    ("lambda_max", "λ_max", "{:.2f}"),
    ("rho_sharpness", "ρ-sharpness", "{:.4f}"),
    ("seconds_per_epoch", "s/epoch", "{:.3f}"),
    ("cost_vs_sgd", "step cost vs SGD", "{:.2f}x"),
]


def _distinct(name: str, values: list) -> None:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise checks.ArgumentError(
            f"compare: {name} must not repeat a value, got {', '.join(repeated)} more than once in {values!r}"
        )


def check_plan(base: RunConfig, optimizers, seeds) -> tuple[list, list]:
    """The optimizers (lower case) and seeds, checked; every run's configuration validated."""
    if isinstance(optimizers, str) or not list(optimizers):
        raise checks.ArgumentError(
            f"compare: optimizers must be a non-empty list of names, got {optimizers!r}"
        )
    if isinstance(seeds, (str, int)) or not list(seeds):
        raise checks.ArgumentError(f"compare: seeds must be a non-empty list of integers, got {seeds!r}")
    names = [checks.choice("compare", "each optimizer", name, OPTIMIZERS) for name in optimizers]
    seeds = [checks.count("compare", "each seed", seed) for seed in seeds]
    _distinct("optimizers", names)
    _distinct("seeds", seeds)
    for name in names:
        replace(base, optimizer=name, seed=seeds[0]).validate()
    return names, seeds


def compare(
    base: RunConfig, optimizers=("sgd", "sam", "xsam"), seeds=(0, 1, 2), run_dir=None, progress: bool = True
) -> dict:
    """Train every optimizer from the same initialisation and data order for each seed.

    Returns ``{"rows": {optimizer: {metric: (mean, std)}}, "runs": {optimizer: [RunResult]},
    "seeds": [seed, ...]}``; with ``run_dir``, also writes the table, the results and the
    figures there (``write_comparison``).
    """
    names, seeds = check_plan(base, optimizers, seeds)
    if run_dir is not None:
        check_output_folder(run_dir, "compare: run_dir")
    runs = {name: [] for name in names}
    for seed in seeds:
        for name in names:
            if progress:
                print(f"{name.upper()} (seed {seed})", flush=True)
            runs[name].append(train(replace(base, optimizer=name, seed=seed), progress=progress))
    summary = {"rows": summarise(runs), "runs": runs, "seeds": seeds}
    if run_dir is not None:
        write_comparison(summary, base, run_dir)
    return summary


def summarise(runs: dict) -> dict:
    """Mean and std over seeds of each measured metric; the step cost relative to SGD
    is taken per seed (each run against the SGD run with the same seed)."""
    rows = {}
    for name, results in runs.items():
        finals = [dict(r.final) for r in results]
        if "sgd" in runs:
            for final, sgd in zip(finals, runs["sgd"], strict=True):
                final["cost_vs_sgd"] = final["seconds_per_step"] / sgd.final["seconds_per_step"]
        rows[name] = {
            key: (float(np.mean([f[key] for f in finals])), float(np.std([f[key] for f in finals])))
            for key, _, _ in COLUMNS
            if all(key in f for f in finals)
        }
    return rows


def format_table(rows: dict, seeds) -> str:
    """A plain-text table: mean ± std over seeds for every metric that was measured."""
    present = [c for c in COLUMNS if any(c[0] in r for r in rows.values())]
    header = ["optimizer"] + [title for _, title, _ in present]
    lines = []
    for name, row in rows.items():
        cells = [name.upper()]
        for key, _, fmt in present:
            if key not in row:
                cells.append("-")
                continue
            mean, std = row[key]
            cells.append(
                fmt.format(mean) if key == "cost_vs_sgd" else f"{fmt.format(mean)} ± {fmt.format(std)}"
            )
        lines.append(cells)
    widths = [max(len(str(r[i])) for r in [header] + lines) for i in range(len(header))]

    def render(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    note = f"mean ± std over {len(seeds)} seeds ({', '.join(map(str, seeds))})"
    return "\n".join([render(header), rule, *map(render, lines), note])


def write_comparison(summary: dict, base: RunConfig, run_dir) -> None:
    """table.txt, results.json, results.csv, learning_curves.png (and sharpness.png when
    λ_max and the ρ-sharpness were measured) in ``run_dir``."""
    from . import plots

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    runs, rows = summary["runs"], summary["rows"]
    (run_dir / "table.txt").write_text(format_table(rows, summary["seeds"]) + "\n")
    payload = {
        "config": asdict(base),
        "seeds": summary["seeds"],
        "summary": rows,
        "runs": {
            name: [{"seed": r.config.seed, "final": r.final, "history": r.history} for r in results]
            for name, results in runs.items()
        },
    }
    (run_dir / "results.json").write_text(json.dumps(payload, indent=2))
    with open(run_dir / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["optimizer", "seed", *runs[next(iter(runs))][0].final])
        for name, results in runs.items():
            for r in results:
                writer.writerow([name, r.config.seed, *r.final.values()])

    histories = {name.upper(): [r.history for r in results] for name, results in runs.items()}
    plots.comparison_curves(histories, f"{base.dataset} ({base.model})", run_dir / "learning_curves.png")
    if all("lambda_max" in row for row in rows.values()):
        plots.sharpness_bars(
            {name.upper(): row for name, row in rows.items()}, base.rho, run_dir / "sharpness.png"
        )
