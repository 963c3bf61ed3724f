"""The paper's main result -- XSAM generalises better than SAM, SAM better than SGD -- tested at
small scale by a protocol committed before any of its runs touched the test set
(``lessons/results/PROTOCOL.md``).

    python -m minisam reproduce                      # the whole protocol (selection, then final runs)
    python -m minisam reproduce --phase selection    # validation only: choose the epochs and each ρ
    python -m minisam reproduce --phase final        # the final runs, with the stored choices
    python -m minisam reproduce --setting cnn-clean --optimizer xsam --seed 3   # one stored run again

Two phases. *Selection* never evaluates the test set: it fixes the training length by a rule
on SGD's training loss and picks ρ for SAM and for XSAM from a small grid by validation
accuracy, on seeds that are not used afterwards. It writes ``selection.json``. *Final* trains
five optimizers -- SGD, SAM, XSAM, SGD+ (XSAM with α fixed at 0) and SGD for twice the epochs
(as many gradient evaluations as SAM) -- on fresh seeds, each seed giving every optimizer the
same initialisation, label noise and batch order, and evaluates the test set. It writes
``main_result.json`` (the protocol, every run, paired differences with 95 % confidence
intervals), ``curves.json`` (per-epoch curves, for lesson 08) and the figures.

A run is a pure function of its configuration and seed: the same seed gives bit-identical
numbers, which is what the one-run form checks against the stored result.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from . import threads
from .train import RunConfig, load_data, train

RESULTS = Path(__file__).resolve().parent.parent / "lessons" / "results"

# ---- the protocol (PROTOCOL.md says the same in words) ------------------------------------
# The 1-D CNN on MNIST-1D, 800 of the 4000 training signals held out for validation. SGD's
# hyper-parameters are the runner's defaults, fixed for every optimizer and never tuned.
BASE = RunConfig(
    dataset="mnist1d",
    model="cnn1d",
    lr=0.05,
    momentum=0.9,
    weight_decay=5e-4,
    batch_size=64,
    schedule="cosine",
    validation=800,
)
# Two architectures under the same protocol, each with its own selection: the 1-D CNN (the
# headline, results in lessons/results/) and an MLP 40-128-128-10 (lessons/results/mlp/).
ARCHITECTURES = {"cnn1d": ("cnn", {"model": "cnn1d"}), "mlp": ("mlp", {"model": "mlp", "hidden": (128, 128)})}
NOISE = {"clean": 0.0, "noise20": 0.2}  # the settings: "<architecture>-clean", "<architecture>-noise20"
OPTIMIZERS = {  # the name used on the command line: what it trains
    "sgd": "SGD with momentum for E epochs",
    "sam": "SAM (one ascent step) for E epochs",
    "xsam": "XSAM, rho_max = 2 rho, one alpha search per epoch, for E epochs",
    "sgd+": "XSAM with alpha fixed at 0 (never searching) and XSAM's rho: the step g0/|g0| * |g1|",
    "sgd-2x": "SGD for 2E epochs: as many forward+backward passes as SAM",
}
LABELS = {"sgd": "SGD", "sam": "SAM", "xsam": "XSAM", "sgd+": "SGD+", "sgd-2x": "SGD 2x epochs"}
EPOCH_CANDIDATES = (20, 40, 80)
PLATEAU = 0.1  # E is the first candidate whose doubling lowers SGD's training loss by less
RHO_GRID = (0.02, 0.05, 0.1, 0.2)
SELECTION_SEEDS = (100,)
FINAL_SEEDS = tuple(range(5))
SHARPNESS_RHO = 0.05  # one radius for every optimizer's ρ-sharpness, so they can be compared


def settings_of(model: str = "cnn1d") -> dict:
    prefix = ARCHITECTURES[model][0]
    return {f"{prefix}-{name}": {"label_noise": noise} for name, noise in NOISE.items()}


def results_dir(model: str = "cnn1d") -> Path:
    return RESULTS if model == "cnn1d" else RESULTS / model


def protocol(model: str = "cnn1d") -> dict:
    """The protocol as data: stored at the top of every result file, read back by one-run mode.
    ``model``: "cnn1d" (the headline) or "mlp"."""
    if model not in ARCHITECTURES:
        raise ValueError(f"model must be one of {', '.join(ARCHITECTURES)}; got {model!r}")
    base = asdict(replace(BASE, **ARCHITECTURES[model][1]))
    settings = settings_of(model)
    headline = next(iter(settings))  # clean labels: the paper's main tables are on clean labels
    for per_run in ("optimizer", "seed", "epochs", "label_noise", "rho", "alpha", "search_every"):
        base.pop(per_run)
    return {
        "document": "lessons/results/PROTOCOL.md",
        "base": base,
        "settings": settings,
        "headline": headline,
        "optimizers": OPTIMIZERS,
        "epoch_rule": {
            "candidates": list(EPOCH_CANDIDATES),
            "plateau": PLATEAU,
            "setting": headline,
            "rule": "the smallest candidate E for which SGD trained 2E epochs ends with a training loss "
            "(whole training split, mean over the selection seeds) lower than SGD trained E epochs by "
            f"less than {PLATEAU}; the largest candidate if none; the same E for every setting and optimizer",
        },
        "rho_grid": list(RHO_GRID),
        "rho_rule": "per setting and method, the rho of highest mean final validation accuracy over the "
        "selection seeds; the smaller rho on ties",
        "selection_seeds": list(SELECTION_SEEDS),
        "final_seeds": list(FINAL_SEEDS),
        "sharpness_rho": SHARPNESS_RHO,
        "statistics": "per seed, the difference of test accuracies (same seed: same initialisation, "
        "label noise and batch order); mean, t-based 95% confidence interval (n - 1 degrees of "
        "freedom), wins/ties/losses out of the seeds. A claim A > B held if the interval lies above 0, "
        "was reversed if it lies below 0, and is not resolved otherwise.",
    }


def config_for(protocol: dict, setting: str, optimizer: str, seed: int, epochs=None, rho=None) -> RunConfig:
    """The RunConfig of one run of the stored protocol (``epochs``/``rho``: the choices to use;
    by default those stored in ``protocol["chosen"]``)."""
    if setting not in protocol["settings"]:
        raise ValueError(f"setting must be one of {', '.join(protocol['settings'])}; got {setting!r}")
    if optimizer not in protocol["optimizers"]:
        raise ValueError(f"optimizer must be one of {', '.join(protocol['optimizers'])}; got {optimizer!r}")
    chosen = protocol.get("chosen", {})
    epochs = chosen["epochs"] if epochs is None else epochs
    if rho is None and optimizer in ("sam", "xsam", "sgd+"):
        rho = chosen["rho"][setting]["sam" if optimizer == "sam" else "xsam"]  # SGD+ is XSAM at α = 0
    base = protocol["base"]
    config = RunConfig(
        **{**base, "hidden": tuple(base["hidden"])},
        **protocol["settings"][setting],
        seed=int(seed),
        epochs=int(epochs),
    )
    if optimizer == "sam":
        return replace(config, optimizer="sam", rho=rho)
    if optimizer == "xsam":  # search_every=None: once per epoch, the authors' schedule
        return replace(config, optimizer="xsam", rho=rho, alpha=1.0, search_every=None)
    if optimizer == "sgd+":
        return replace(config, optimizer="xsam", rho=rho, alpha=0.0, search_every=0)
    if optimizer == "sgd-2x":
        return replace(config, epochs=2 * int(epochs))
    return config


def passes_per_run(config: RunConfig, train_examples: int = 3200) -> int:
    """Forward+backward passes a run makes (XSAM's forward-only probes not counted)."""
    steps = config.epochs * math.ceil(train_examples / config.batch_size)
    return steps * (1 if config.optimizer == "sgd" else 1 + config.ascent_steps)


# ---- statistics -------------------------------------------------------------------------------
# Two-sided 95 % quantiles t_{0.975, df} of Student's t distribution, df = 1 … 30, from the
# standard tables (scipy is not a dependency). tests/test_reproduce.py checks every entry by
# integrating the t density numerically.
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def t_975(df: int) -> float:
    """t_{0.975, df}: a 95 % interval for a mean of df + 1 values is mean ± t·sd/√(df + 1)."""
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or not 1 <= df <= len(T_975):
        raise ValueError(f"df must be a whole number from 1 to {len(T_975)}; got {df!r}")
    return T_975[int(df) - 1]


def paired(a, b) -> dict:
    """a − b seed by seed: mean, 95 % confidence interval of the mean, wins/ties/losses of a."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(
            f"paired needs two 1-D sequences of the same length >= 2; got {a.shape} and {b.shape}"
        )
    d = a - b
    half = t_975(len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    mean = float(d.mean())
    return {
        "mean": mean,
        "ci95": [mean - half, mean + half],
        "wins": int((d > 0).sum()),
        "ties": int((d == 0).sum()),
        "losses": int((d < 0).sum()),
        "n": len(d),
    }


def paired_runs(result: dict, setting: str, a: str, b: str) -> dict:
    """``paired`` for optimizers ``a`` and ``b`` of a stored result, over the seeds both ran."""
    acc = {(r["optimizer"], r["seed"]): r["test_acc"] for r in result["runs"] if r["setting"] == setting}
    seeds = sorted(s for name, s in acc if name == b and (a, s) in acc)
    return paired([acc[(a, s)] for s in seeds], [acc[(b, s)] for s in seeds])


def verdict(diff: dict) -> str:
    """The pre-registered reading of a paired difference A − B."""
    low, high = diff["ci95"]
    return "held" if low > 0 else "reversed" if high < 0 else "not resolved"


def summarize(runs: list, protocol: dict) -> dict:
    """Per setting: mean ± std of each optimizer's test accuracy; paired differences against SGD
    and against SAM; the verdict on each of SAM > SGD, XSAM > SAM, XSAM > SGD."""
    summary = {}
    for setting in protocol["settings"]:
        acc = {}
        for name in protocol["optimizers"]:
            mine = sorted(
                (r for r in runs if r["setting"] == setting and r["optimizer"] == name), key=seed_of
            )
            acc[name] = [r["test_acc"] for r in mine]
        seeds = [[r["seed"] for r in runs if r["setting"] == setting and r["optimizer"] == n] for n in acc]
        if len(seeds[0]) < 2 or any(sorted(s) != sorted(seeds[0]) for s in seeds):
            continue  # not yet two seeds of every optimizer (an unfinished run)
        block = {
            "n_seeds": len(acc["sgd"]),
            "test_acc": {
                n: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1))} for n, v in acc.items()
            },
            "vs_sgd": {n: paired(acc[n], acc["sgd"]) for n in acc if n != "sgd"},
            "vs_sam": {n: paired(acc[n], acc["sam"]) for n in acc if n not in ("sgd", "sam")},
        }
        block["claims"] = {
            "SAM > SGD": verdict(block["vs_sgd"]["sam"]),
            "XSAM > SAM": verdict(block["vs_sam"]["xsam"]),
            "XSAM > SGD": verdict(block["vs_sgd"]["xsam"]),
        }
        summary[setting] = block
    return summary


def seed_of(run: dict) -> int:
    return run["seed"]


def format_table(summary: dict, setting: str) -> str:
    """The result of one setting as plain text: accuracies, then the paired differences."""
    block = summary[setting]
    n = block["n_seeds"]
    lines = [f"{setting}: test accuracy over {n} seeds (mean ± std)"]
    for name, acc in block["test_acc"].items():
        lines.append(f"  {LABELS[name]:<14} {acc['mean']:.4f} ± {acc['std']:.4f}")
    lines.append(f"  paired differences in test accuracy, mean [95% CI], wins/ties/losses of {n} seeds:")
    for against, key in (("SGD", "vs_sgd"), ("SAM", "vs_sam")):
        for name, d in block[key].items():
            low, high = d["ci95"]
            lines.append(
                f"  {LABELS[name] + ' − ' + against:<20} {d['mean']:+.4f} [{low:+.4f}, {high:+.4f}]"
                f"  {d['wins']}/{d['ties']}/{d['losses']}"
            )
    lines.append("  " + "; ".join(f"{claim}: {word}" for claim, word in block["claims"].items()))
    return "\n".join(lines)


def claims_sentence(summary: dict, setting: str) -> str:
    """The verdicts of one setting in one sentence, with the numbers they rest on."""
    block = summary[setting]
    parts = []
    for claim, (key, name) in {
        "SAM > SGD": ("vs_sgd", "sam"),
        "XSAM > SAM": ("vs_sam", "xsam"),
        "XSAM > SGD": ("vs_sgd", "xsam"),
    }.items():
        d = block[key][name]
        low, high = d["ci95"]
        parts.append(
            f"{claim} {block['claims'][claim]} ({d['mean']:+.3f}, 95% CI [{low:+.3f}, {high:+.3f}], "
            f"wins {d['wins']}/{d['n']})"
        )
    return f"{setting}, {block['n_seeds']} seeds: " + "; ".join(parts) + "."


# ---- running ----------------------------------------------------------------------------------
class Progress:
    """A progress bar over a known amount of work (in epochs at SGD's cost), one line per run."""

    def __init__(self, total: float, what: str):
        self.total, self.done, self.what, self.started = total, 0.0, what, time.perf_counter()

    def advance(self, work: float, message: str) -> None:
        self.done += work
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        bar = "#" * int(30 * self.done / self.total)
        share = self.done / self.total
        line = f"[{bar:<30}] {self.what} {share:4.0%}  {message}  ({elapsed:.0f} s, ~{left:.0f} s left)"
        terminal = sys.stdout is not None and sys.stdout.isatty()  # None: started with stdout closed
        end = "" if terminal and self.done < self.total else "\n"
        print(("\r" if terminal else "") + line, end=end, flush=True)


def work_of(config: RunConfig) -> float:
    return config.epochs * (1.0 if config.optimizer == "sgd" else 2.0)


def run_one(config: RunConfig, sharpness: bool = False) -> tuple[dict, dict]:
    """Train one run; its record (the numbers) and its per-epoch curves."""
    result = train(config, progress=False)
    record = {
        "rho": None if config.optimizer == "sgd" else config.rho,
        "epochs": config.epochs,
        "val_acc": result.final.get("val_acc"),
        "test_acc": result.final.get("test_acc"),
        "train_loss": result.final["train_loss"],
        "train_acc": result.final["train_acc"],
        "passes": passes_per_run(config),
        "seconds_per_step": result.final["seconds_per_step"],
    }
    if sharpness:
        record.update(measure_flatness(result.model, config))
    keys = ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc", "alpha")
    curves = {k: [row[k] for row in result.history] for k in keys if k in result.history[0]}
    return record, curves


def measure_flatness(model, config: RunConfig, subset: int = 256) -> dict:
    """λ_max (top Hessian eigenvalue; power iteration, 10 Hessian-vector products) and the
    ρ-sharpness max_{‖ε‖≤ρ} L(θ+ε) − L(θ) (5 steps of projected ascent from SAM's ascent point;
    a lower bound) at ρ = ``SHARPNESS_RHO``, of the training loss on the first ``subset``
    training signals with the labels the run trained on, in eval mode. The same measures as
    ``train.measure_sharpness``, at a quarter of its cost."""
    import minisam as ms
    import minisam.functional as F
    from minisam import sharpness

    d = load_data(config)
    inputs, targets = ms.Tensor(d.x_train[:subset]), ms.Tensor(d.y_train[:subset])
    model.eval()

    def closure():
        return F.cross_entropy(model(inputs), targets)

    params = list(model.parameters())
    lam = sharpness.top_hessian_eigenvalue(closure, params, iters=10)
    worst = sharpness.worst_case_loss(closure, params, rho=SHARPNESS_RHO, steps=5, restarts=1)
    return {"lambda_max": float(lam), "rho_sharpness": float(worst.sharpness)}


def select(out: Path, model: str = "cnn1d") -> dict:
    """Phase 1, validation only: the training length E, then ρ for SAM and XSAM in each setting."""
    spec = protocol(model)
    settings = list(spec["settings"])
    plan_epochs = [(s, e) for s in SELECTION_SEEDS for e in EPOCH_CANDIDATES]
    longest = max(EPOCH_CANDIDATES)
    work = (
        sum(e for _, e in plan_epochs)
        + len(settings) * len(SELECTION_SEEDS) * len(RHO_GRID) * 2 * 2 * longest
    )
    progress = Progress(work, "selection")  # an upper bound until E is known

    epoch_runs = []
    for seed, epochs in plan_epochs:
        config = replace(config_for(spec, spec["headline"], "sgd", seed, epochs=epochs), evaluate_test=False)
        record, _ = run_one(config)
        epoch_runs.append({"seed": seed, "epochs": epochs, **record})
        progress.advance(epochs, f"SGD {epochs} epochs, seed {seed}: train loss {record['train_loss']:.4f}")
    mean_loss = {
        e: float(np.mean([r["train_loss"] for r in epoch_runs if r["epochs"] == e])) for e in EPOCH_CANDIDATES
    }
    chosen_epochs = next(
        (
            e
            for e, e2 in zip(EPOCH_CANDIDATES[:-1], EPOCH_CANDIDATES[1:], strict=True)
            if mean_loss[e] - mean_loss[e2] < PLATEAU
        ),
        longest,
    )

    # now that E is known, the rest of the work is known exactly
    progress.total = (
        progress.done + len(settings) * len(SELECTION_SEEDS) * len(RHO_GRID) * 2 * 2 * chosen_epochs
    )
    rho_runs = []
    for setting in settings:
        for method in ("sam", "xsam"):
            for rho in RHO_GRID:
                for seed in SELECTION_SEEDS:
                    config = config_for(spec, setting, method, seed, epochs=chosen_epochs, rho=rho)
                    record, _ = run_one(replace(config, evaluate_test=False))
                    rho_runs.append({"setting": setting, "optimizer": method, "seed": seed, **record})
                    progress.advance(
                        work_of(config),
                        f"{setting} {method.upper()} ρ={rho} seed {seed}: val {record['val_acc']:.4f}",
                    )
    chosen_rho = {s: {m: best_rho(rho_runs, s, m) for m in ("sam", "xsam")} for s in settings}
    spec["chosen"] = {"epochs": chosen_epochs, "rho": chosen_rho}
    selection = {
        "protocol": spec,
        "epoch_rule": {"mean_train_loss": mean_loss, "runs": epoch_runs},
        "rho_runs": rho_runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "selection.json", selection)
    print(f"\nchosen: E = {chosen_epochs} epochs; ρ = {json.dumps(chosen_rho)}")
    return selection


def best_rho(rho_runs: list, setting: str, method: str) -> float:
    """The ρ of highest mean validation accuracy over the selection seeds; the smaller on ties."""
    mean_val = {}
    for rho in sorted({r["rho"] for r in rho_runs}):
        mine = [
            r["val_acc"]
            for r in rho_runs
            if (r["setting"], r["optimizer"], r["rho"]) == (setting, method, rho)
        ]
        mean_val[rho] = float(np.mean(mine))
    return max(mean_val, key=lambda rho: (mean_val[rho], -rho))


def final(out: Path, keep_going: bool = False) -> dict:
    """Phase 2: every optimizer on every final seed in every setting; the table and figures."""
    selection_file = out / "selection.json"
    if not selection_file.is_file():
        raise FileNotFoundError(
            f"{selection_file} not found: run `python -m minisam reproduce --phase selection` first"
        )
    spec = json.loads(selection_file.read_text())["protocol"]
    plan = [  # seed by seed, so that an interrupted run has the same seeds in every setting
        (setting, name, seed)
        for seed in spec["final_seeds"]
        for setting in spec["settings"]
        for name in spec["optimizers"]
    ]
    done = {"runs": [], "curves": {}}
    partial = out / "main_result.json"
    if keep_going and partial.is_file():  # runs are deterministic: finished ones need not run again
        stored = json.loads(partial.read_text())
        if stored["protocol"] == spec:
            done = {"runs": stored["runs"], "curves": json.loads((out / "curves.json").read_text())}
    finished = {(r["setting"], r["optimizer"], r["seed"]) for r in done["runs"]}
    todo = [p for p in plan if p not in finished]
    progress = Progress(sum(work_of(config_for(spec, *p)) for p in todo), "final")
    for setting, name, seed in todo:
        config = config_for(spec, setting, name, seed)
        record, curves = run_one(config, sharpness=True)
        done["runs"].append({"setting": setting, "optimizer": name, "seed": seed, **record})
        done["curves"][f"{setting}/{name}/{seed}"] = curves
        _write_results(out, spec, done, complete=False)
        progress.advance(
            work_of(config),
            f"{setting} {LABELS[name]} seed {seed}: test {record['test_acc']:.3f}",
        )
    result = _write_results(out, spec, done, complete=True)
    figures(result, out)
    print()
    for setting in result["summary"]:
        print(format_table(result["summary"], setting), end="\n\n")
    print(f"results in {out}/ (main_result.json, curves.json, figures)")
    return result


def _write_results(out: Path, spec: dict, done: dict, complete: bool) -> dict:
    order = {name: i for i, name in enumerate(spec["optimizers"])}
    key = lambda r: (r["setting"], r["seed"], order[r["optimizer"]])  # noqa: E731
    runs = sorted(done["runs"], key=key)
    result = {"protocol": spec, "complete": complete, "summary": summarize(runs, spec), "runs": runs}
    _write_json(out / "main_result.json", result)
    _write_json(out / "curves.json", dict(sorted(done["curves"].items())))
    return result


def _write_json(path: Path, payload) -> None:
    """Write through a temporary file, so an interrupted run never leaves half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)


def figures(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plots

    fig = plots.main_result(result)
    plots.save(fig, out / "main_result.png", dpi=100)
    plt.close(fig)
    fig = plots.paired_differences(result)
    plots.save(fig, out / "paired_differences.png", dpi=100)
    plt.close(fig)


def rerun(results_file: Path, setting: str, optimizer: str, seed: int, epochs=None) -> int:
    """One run of the stored protocol again; prints ``test_acc <value>`` last."""
    if not results_file.is_file():
        raise FileNotFoundError(f"{results_file} not found: run `python -m minisam reproduce` first")
    stored = json.loads(results_file.read_text())
    spec = stored["protocol"]
    config = config_for(spec, setting, optimizer, seed, epochs=epochs)  # SGD 2x epochs: twice ``epochs``
    rho = "-" if config.optimizer == "sgd" else config.rho
    print(f"{setting}, {LABELS[optimizer]}, seed {seed}: {config.epochs} epochs, rho {rho}")
    record, _ = run_one(config)
    match = [
        r
        for r in stored.get("runs", [])
        if (r["setting"], r["optimizer"], r["seed"]) == (setting, optimizer, seed)
    ]
    status = 0
    if epochs is not None:
        print("(epochs changed on the command line: not comparable with a stored run)")
    elif not match:
        print("(no stored run with this setting, optimizer and seed)")
    else:
        same = match[0]["test_acc"] == record["test_acc"]
        print(f"stored test_acc {match[0]['test_acc']}: {'identical' if same else 'DIFFERENT'}")
        status = 0 if same else 1
    print(f"test_acc {record['test_acc']}")
    return status


# ---- the command line -------------------------------------------------------------------------
def add_arguments(parser) -> None:
    from .__main__ import COUNT, POSITIVE_INT, path_argument

    parser.description = (
        "The main result by the protocol in lessons/results/PROTOCOL.md: selection on validation data, "
        "then SGD, SAM, XSAM, SGD+ and SGD 2x epochs on 5 seeds, paired differences with 95 % CIs. "
        "With --setting, --optimizer and --seed: rerun one stored run and print test_acc last."
    )
    parser.add_argument(
        "--phase",
        choices=("all", "selection", "final"),
        default=None,
        help="selection (validation only), final (test set, with the stored choices), or all (default)",
    )
    parser.add_argument(
        "--model",
        choices=tuple(ARCHITECTURES),
        default=None,
        help="which architecture's protocol to run (default cnn1d, the headline; mlp: the second model)",
    )
    parser.add_argument(
        "--out",
        type=path_argument,
        default=None,
        help="results folder (default lessons/results, or lessons/results/mlp)",
    )
    parser.add_argument(
        "--keep-going", action="store_true", help="final phase: keep the finished runs of an interrupted run"
    )
    every_setting = [name for model in ARCHITECTURES for name in settings_of(model)]
    parser.add_argument("--setting", choices=every_setting, help="rerun one stored run: its setting")
    parser.add_argument("--optimizer", choices=tuple(OPTIMIZERS), help="rerun one stored run: its optimizer")
    parser.add_argument("--seed", type=COUNT, help="rerun one stored run: its seed")
    parser.add_argument(
        "--epochs",
        type=POSITIVE_INT,
        help="with --setting: a shorter run, for a quick check (SGD 2x epochs runs twice as many)",
    )


def _model_of(setting: str) -> str:
    return next(m for m in ARCHITECTURES if setting in settings_of(m))


def _readable_json(path: Path, advice: str) -> None:
    """Refuse a results file that is missing or damaged, before any run, naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {advice}")
    try:
        json.loads(path.read_text())
    except (ValueError, OSError) as err:
        raise ValueError(f"{path} cannot be read ({type(err).__name__}: {err}): {advice}") from None


def check_arguments(args) -> None:
    """Everything the command line asks, checked before any run: a rerun names all three of
    --setting, --optimizer and --seed and nothing that only the whole protocol reads; the files
    a phase reads exist and are readable, and the folder it writes can be written."""
    from .train import check_data, check_output_folder

    check_data(BASE.dataset)  # every run of the protocol trains on it
    one = {"--setting": args.setting, "--optimizer": args.optimizer, "--seed": args.seed}
    if any(v is not None for v in one.values()):
        missing = [flag for flag, value in one.items() if value is None]
        if missing:
            raise ValueError(
                "to rerun one stored run, give all of --setting, --optimizer and --seed "
                f"(missing {', '.join(missing)})"
            )
        for flag, given in (("--phase", args.phase is not None), ("--keep-going", args.keep_going)):
            if given:
                raise ValueError(f"{flag} belongs to the whole protocol, not to one rerun: leave it out")
        model = _model_of(args.setting)
        if args.model not in (None, model):
            raise ValueError(
                f"--model {args.model} disagrees with --setting {args.setting}, a setting of {model}: "
                "leave --model out"
            )
        where = "run `python -m minisam reproduce` first, or pass the --out folder that holds it"
        _readable_json((args.out or results_dir(model)) / "main_result.json", where)
        return
    if args.epochs is not None:
        raise ValueError("--epochs only shortens a single rerun (with --setting, --optimizer and --seed)")
    phase, out = args.phase or "all", args.out or results_dir(args.model or "cnn1d")
    if args.keep_going and phase == "selection":
        raise ValueError(
            "--keep-going keeps the finished runs of the final phase: leave it out with --phase selection"
        )
    check_output_folder(out, "--out")
    if phase == "final":
        _readable_json(out / "selection.json", "run `python -m minisam reproduce --phase selection` first")


def run(args) -> int:
    check_arguments(args)
    threads.use_one_blas_thread()
    if args.setting is not None:
        model = _model_of(args.setting)
        one = (args.setting, args.optimizer, args.seed)
        return rerun((args.out or results_dir(model)) / "main_result.json", *one, epochs=args.epochs)
    model, phase = args.model or "cnn1d", args.phase or "all"
    out = args.out or results_dir(model)
    if phase in ("all", "selection"):
        select(out, model)
    if phase in ("all", "final"):
        final(out, keep_going=args.keep_going)
    return 0
