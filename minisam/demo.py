"""``python -m minisam demo``: SGD, SAM and XSAM side by side, in a few minutes on a laptop.

Part 1 runs the three optimizers on a 2-D loss surface with a sharp and a flat minimum
(``landscapes.SharpFlat2D``) from a grid of starting points, counts where each one ends,
and draws their paths from three of the starts.

Part 2 is the headline setting of minisam's main result (``lessons/results/PROTOCOL.md``,
``python -m minisam reproduce``): the 1-D CNN on clean MNIST-1D, trained to a plateau with
SGD, SAM, XSAM and two controls, SGD+ (XSAM with α fixed at 0) and SGD for twice the epochs
(SAM's compute). To fit a few minutes it trains 2 of the protocol's 5 seeds, checks every
run against the stored one (the same seed gives bit-identical numbers), and then prints the
stored result over all 5 seeds, with 95 % confidence intervals and the verdicts (and those of the
same protocol on an MLP).

Everything goes into one run folder (figures, ``results.json``, ``table.txt``), named at the
end. The numbers are whatever the runs measure: where SAM or XSAM do not beat SGD, the
tables show it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import landscapes, optim, reproduce

# Part 1. ρ equals the sharp well's width: a smaller ball cannot see past the sharp well's
# walls, so SAM's objective would not tell the two wells apart. The learning rate keeps
# lr·λ_max = 0.05·25 = 1.25 < 2, so plain gradient descent is stable in both wells.
LANDSCAPE_LR, LANDSCAPE_RHO, LANDSCAPE_STEPS = 0.05, 0.2, 400
LANDSCAPE_OPTIMIZERS = {
    "SGD": lambda p: optim.SGD(p, lr=LANDSCAPE_LR),
    "SAM": lambda p: optim.SAM(optim.SGD(p, lr=LANDSCAPE_LR), rho=LANDSCAPE_RHO),
    "XSAM": lambda p: optim.XSAM(optim.SGD(p, lr=LANDSCAPE_LR), rho=LANDSCAPE_RHO, search_every=10),
}

# Part 2: the protocol's first two final seeds of its headline setting.
DEMO_SEEDS = (0, 1)


def landscape_part(run_dir: Path, grid: int) -> dict:
    import matplotlib.pyplot as plt

    from . import plots

    surface = landscapes.SharpFlat2D()
    (x0, x1), (y0, y1) = surface.bounds
    starts = [
        (x, y)
        for y in np.linspace(y0 + 0.25, y1 - 0.25, grid)
        for x in np.linspace(x0 + 0.25, x1 - 0.25, grid)
    ]
    ends = {name: [] for name in LANDSCAPE_OPTIMIZERS}
    for start in starts:
        for name, make in LANDSCAPE_OPTIMIZERS.items():
            path = landscapes.run_optimizer(surface, make, start, LANDSCAPE_STEPS)
            ends[name].append(surface.nearest_minimum(path[-1], radius=0.25) or "neither")
    counts = {name: {m: e.count(m) for m in ("sharp", "flat", "neither")} for name, e in ends.items()}
    escaped = {
        name: sum(s == "sharp" and e == "flat" for s, e in zip(ends["SGD"], ends[name], strict=True))
        for name in ("SAM", "XSAM")
    }

    show = [(-1.0, 0.9), (-0.6, 0.2), (-1.6, 0.2)]
    X, Y, Z = surface.grid(resolution=100)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), layout="constrained")
    for ax, name in zip(axes, LANDSCAPE_OPTIMIZERS, strict=True):
        paths = {
            f"from {s}": landscapes.run_optimizer(surface, LANDSCAPE_OPTIMIZERS[name], s, LANDSCAPE_STEPS)
            for s in show
        }
        plots.contour_paths(
            X,
            Y,
            Z,
            paths=paths,
            ax=ax,
            minima={m.name: m.point for m in surface.minima},
            legend="inside" if name == "XSAM" else None,  # one legend for the row, over empty ground
            title=f"{name} (lr {LANDSCAPE_LR}, ρ {LANDSCAPE_RHO}): "
            f"{counts[name]['flat']}/{len(starts)} starts end flat",
        )
    plots.save(fig, run_dir / "landscape_paths.png", dpi=100)
    plt.close(fig)
    return {"starts": len(starts), "counts": counts, "sgd_sharp_but_this_flat": escaped}


def main(out=None, quick: bool = False) -> int:
    import matplotlib

    matplotlib.use("Agg")
    started = time.perf_counter()
    run_dir = Path(out) if out else Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)

    # flushed as they come (here and per run): a reader that has gone (`| head -1`) stops the demo
    print("Part 1: a 2-D landscape with a sharp and a flat minimum of about equal depth", flush=True)
    land = landscape_part(run_dir, grid=5 if quick else 9)
    for name, c in land["counts"].items():
        print(
            f"  {name:<5} ends in the flat minimum from {c['flat']:>3} of {land['starts']} starts, "
            f"in the sharp one from {c['sharp']}, elsewhere from {c['neither']}"
        )
    for name, n in land["sgd_sharp_but_this_flat"].items():
        print(f"  starts where SGD ends sharp and {name} ends flat: {n}")

    real = real_data_part(run_dir, quick)
    (run_dir / "results.json").write_text(json.dumps(real, indent=1) + "\n")
    (run_dir / "landscape.json").write_text(json.dumps(land, indent=2))
    print(f"\nDone in {time.perf_counter() - started:.0f} s. Figures, table and results: {run_dir}/")
    return 0


def real_data_part(run_dir: Path, quick: bool) -> dict:
    """Part 2: rerun the headline setting's first seeds, compare with the stored runs, show the result."""
    import matplotlib.pyplot as plt

    from . import plots

    results_file = reproduce.RESULTS / "main_result.json"
    if not results_file.is_file():
        raise FileNotFoundError(f"{results_file} not found: the stored main result ships with the repository")
    stored = json.loads(results_file.read_text())
    spec, setting = stored["protocol"], stored["protocol"]["headline"]
    epochs = 1 if quick else spec["chosen"]["epochs"]
    print(
        f"\nPart 2: the main result's headline setting, {setting}: a 1-D CNN on MNIST-1D, "
        f"{epochs} epochs{' (quick: not the stored length)' if quick else ''}, "
        f"five optimizers, seeds {DEMO_SEEDS} of the protocol's {len(spec['final_seeds'])}"
    )
    stored_acc = {
        (r["optimizer"], r["seed"]): r["test_acc"] for r in stored["runs"] if r["setting"] == setting
    }
    runs, curves, identical = [], {}, 0
    for seed in DEMO_SEEDS:
        for name in spec["optimizers"]:
            config = reproduce.config_for(spec, setting, name, seed, epochs=epochs)
            record, curves[f"{setting}/{name}/{seed}"] = reproduce.run_one(config)
            runs.append({"setting": setting, "optimizer": name, "seed": seed, **record})
            same = not quick and stored_acc.get((name, seed)) == record["test_acc"]
            identical += same
            if quick:
                check = "quick: shorter than the stored run"
            else:
                check = (
                    "identical to the stored run"
                    if same
                    else f"DIFFERS from the stored {stored_acc[(name, seed)]}"
                )
            line = f"  {reproduce.LABELS[name]:<14} seed {seed}: test acc {record['test_acc']:.3f}  ({check})"
            print(line, flush=True)

    lines = [f"{'optimizer':<14}  test acc (mean ± std)  epochs  fwd+bwd passes"]
    for name in spec["optimizers"]:
        acc = [r["test_acc"] for r in runs if r["optimizer"] == name]
        mine = next(r for r in runs if r["optimizer"] == name)
        lines.append(
            f"{reproduce.LABELS[name]:<14}  {np.mean(acc):.3f} ± {np.std(acc, ddof=1):.3f}"
            f"        {mine['epochs']:>6}  {mine['passes']:>14}"
        )
    lines.append(f"mean ± std over {len(DEMO_SEEDS)} seeds ({', '.join(map(str, DEMO_SEEDS))})")
    table = "\n".join(lines)
    print("\n" + table)
    (run_dir / "table.txt").write_text(table + "\n")
    if not quick:
        print(f"{identical} of {len(runs)} runs identical to the stored ones")

    print(f"\nThe stored result (python -m minisam reproduce), all {len(spec['final_seeds'])} seeds:\n")
    for name in stored["summary"]:
        print(reproduce.format_table(stored["summary"], name), end="\n\n")
    print(reproduce.claims_sentence(stored["summary"], setting))
    mlp_file = reproduce.results_dir("mlp") / "main_result.json"
    if mlp_file.is_file():  # the same protocol on a second model
        mlp = json.loads(mlp_file.read_text())["summary"]
        print("The same protocol on an MLP 40-128-128-10:")
        for name in mlp:
            print(reproduce.claims_sentence(mlp, name))

    demo = {"protocol": spec, "runs": runs}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    plots.main_result_curves(demo, curves, setting, "test_acc", ax=axes[0])
    plots.main_result_curves(demo, curves, setting, "train_loss", ax=axes[1])
    axes[0].set_title(f"{setting}: test accuracy, seeds {DEMO_SEEDS}")
    axes[1].set(title=f"{setting}: training loss (mini-batch mean)", ylabel="cross-entropy", yscale="log")
    fig.tight_layout()
    plots.save(fig, run_dir / "learning_curves.png", dpi=100)
    plt.close(fig)
    fig = plots.main_result(stored)
    plots.save(fig, run_dir / "main_result.png", dpi=100)
    plt.close(fig)
    return {
        "setting": setting,
        "seeds": list(DEMO_SEEDS),
        "quick": quick,
        "runs": runs,
        "identical": identical,
    }
