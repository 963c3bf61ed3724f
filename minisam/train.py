"""Training runs: one optimizer (``train``), several optimizers over seeds (``compare``).

One loop serves SGD, SAM, ASAM and XSAM alike, because every optimizer takes the same
step: ``loss = opt.step(closure)``, with a closure that runs the forward pass and
returns the loss without calling backward.

    from minisam.train import RunConfig, train, compare
    result = train(RunConfig(optimizer="xsam", epochs=10))
    print(result.history[-1]["test_acc"])
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

import minisam as ms
import minisam.functional as F
from minisam import data as datasets
from minisam import models, optim

OPTIMIZERS = ("sgd", "sam", "asam", "xsam")
MODELS = ("mlp", "cnn1d", "cnn2d")
DATASETS = ("mnist1d", "digits", "moons", "spirals", "blobs")
SCHEDULES = ("none", "cosine", "step")


@dataclass
class RunConfig:
    """Everything that defines a run; saved beside its results and in its checkpoints."""

    dataset: str = "mnist1d"
    model: str = "mlp"
    hidden: tuple = (256, 256)  # MLP hidden sizes
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    rho: float = 0.05  # SAM/ASAM/XSAM neighbourhood radius
    rho_max: float | None = None  # XSAM probe radius (None: 2·rho, the authors' ratio)
    alpha: float = 1.0  # XSAM's starting alpha
    ascent_steps: int = 1  # k, the number of ascent steps
    search_every: int | None = None  # XSAM: None searches once per epoch (the authors' schedule)
    eta: float = 0.01  # ASAM's T = |θ| + η
    epochs: int = 20
    batch_size: int = 128
    schedule: str = "cosine"
    label_noise: float = 0.0
    seed: int = 0
    backend: str = "numpy"
    sharpness: bool = False  # measure λ_max and the worst-case ρ-loss at the end
    validation: int = 0  # training examples held out as a validation set (mnist1d, digits)
    evaluate_test: bool = True  # False: never touch the test set (choosing settings on validation)

    def validate(self) -> RunConfig:
        def one_of(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")

        one_of("optimizer", OPTIMIZERS)
        one_of("model", MODELS)
        one_of("dataset", DATASETS)
        one_of("schedule", SCHEDULES)
        for name in ("lr", "rho", "epochs", "batch_size", "ascent_steps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)!r}")
        for name in ("momentum", "weight_decay", "eta"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative; got {getattr(self, name)!r}")
        if not 0 <= self.label_noise < 1:
            raise ValueError(f"label_noise must be in [0, 1); got {self.label_noise!r}")
        if isinstance(self.validation, bool) or not isinstance(self.validation, int) or self.validation < 0:
            raise ValueError(f"validation must be a whole number of examples >= 0; got {self.validation!r}")
        if self.validation and self.dataset not in ("mnist1d", "digits"):
            raise ValueError(f"validation splits exist for mnist1d and digits, not {self.dataset!r}")
        if not isinstance(self.evaluate_test, bool):
            raise ValueError(f"evaluate_test must be True or False; got {self.evaluate_test!r}")
        if self.model == "cnn2d" and self.dataset != "digits":
            raise ValueError("model cnn2d needs image data: use dataset digits")
        if self.model == "cnn1d" and self.dataset != "mnist1d":
            raise ValueError("model cnn1d needs 1-D signals: use dataset mnist1d")
        return self


@dataclass
class RunResult:
    config: RunConfig
    history: list = field(default_factory=list)  # one dict per epoch
    final: dict = field(default_factory=dict)
    model: object = None


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


# ---------------------------------------------------------------------------------------
# Building the pieces
# ---------------------------------------------------------------------------------------


def load_data(cfg: RunConfig):
    """The dataset of ``cfg`` as host arrays, with label noise (seeded by the run's seed).

    With ``cfg.validation`` examples held out, the validation set is carved from the
    training set *before* the noise, and the noise is drawn over both together: a
    validation set taken from noisily labelled data is noisy too, as it would be in practice.
    """
    if cfg.dataset == "mnist1d":
        d = datasets.load_mnist1d(validation=cfg.validation, channels=cfg.model == "cnn1d")
    elif cfg.dataset == "digits":
        d = datasets.load_digits(validation=cfg.validation)
        if cfg.model != "cnn2d":
            flat = lambda x: None if x is None else x.reshape(len(x), -1)  # noqa: E731
            d = replace(d, x_train=flat(d.x_train), x_val=flat(d.x_val), x_test=flat(d.x_test))
    else:
        d = datasets.load_toy(cfg.dataset, seed=cfg.seed)
    if cfg.label_noise > 0:
        n_train = len(d.y_train)
        labels = d.y_train if d.y_val is None else np.concatenate([d.y_train, d.y_val])
        noisy, _ = datasets.add_label_noise(labels, cfg.label_noise, d.num_classes, seed=cfg.seed)
        d = replace(d, y_train=noisy[:n_train], y_val=None if d.y_val is None else noisy[n_train:])
    return d


def build_model(cfg: RunConfig, d):
    if cfg.model == "mlp":
        features = int(np.prod(d.x_train.shape[1:]))
        return models.MLP([features, *cfg.hidden, d.num_classes])
    if cfg.model == "cnn1d":
        return models.CNN1d(length=d.x_train.shape[-1], num_classes=d.num_classes)
    return models.CNN2d(
        in_channels=d.x_train.shape[1], image_size=d.x_train.shape[-1], num_classes=d.num_classes
    )


def build_optimizer(cfg: RunConfig, model, steps_per_epoch: int):
    base = optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        opt = base
    elif cfg.optimizer in ("sam", "asam"):
        opt = optim.SAM(
            base, rho=cfg.rho, steps=cfg.ascent_steps, adaptive=cfg.optimizer == "asam", eta=cfg.eta
        )
    else:
        search_every = steps_per_epoch if cfg.search_every is None else cfg.search_every
        opt = optim.XSAM(
            base,
            rho=cfg.rho,
            rho_max=cfg.rho_max,
            alpha=cfg.alpha,
            steps=cfg.ascent_steps,
            search_every=search_every,
        )
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "cosine":
        scheduler = optim.CosineAnnealingLR(opt, T_max=total)
    elif cfg.schedule == "step":
        scheduler = optim.StepLR(opt, step_size=max(total // 3, 1), gamma=0.1)
    else:
        scheduler = None
    return opt, scheduler


def evaluate(model, x, y, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on (x, y), in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    with ms.no_grad():
        for start in range(0, len(x), batch_size):
            inputs = ms.Tensor(x[start : start + batch_size])
            targets = y[start : start + batch_size]
            logits = model(inputs)
            total_loss += F.cross_entropy(logits, targets).item() * len(targets)
            correct += int((logits.numpy().argmax(axis=1) == targets).sum())
    model.train(was_training)
    return total_loss / len(x), correct / len(x)


def measure_sharpness(model, x, y, rho: float, subset: int = 512) -> dict:
    """On a fixed training subset: λ_max, the top Hessian eigenvalue, and the ρ-sharpness
    max_{‖ε‖≤ρ} L(θ+ε) − L(θ), the quantity SAM minimises (Foret et al. 2021, eq. 1)."""
    from minisam import sharpness

    inputs, targets = ms.Tensor(x[:subset]), ms.Tensor(y[:subset])
    was_training = model.training
    model.eval()  # a deterministic loss: no dropout, BatchNorm on running statistics

    def closure():
        return F.cross_entropy(model(inputs), targets)

    params = list(model.parameters())
    lam = sharpness.top_hessian_eigenvalue(closure, params, iters=20)
    worst = sharpness.worst_case_loss(closure, params, rho=rho, steps=10, restarts=1)
    model.train(was_training)
    return {"lambda_max": float(lam), "rho_sharpness": float(worst.sharpness)}


# ---------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------


def _progress(epoch, epochs, row, started):
    """A one-line progress bar on a terminal; one line per run when the output is a file."""
    accuracy = "".join(
        f"  {name} acc {row[name + '_acc']:.3f}" for name in ("val", "test") if name + "_acc" in row
    )
    elapsed = time.perf_counter() - started
    line = f"epoch {epoch}/{epochs}  loss {row['train_loss']:.3f}{accuracy}  ({elapsed:.0f}s)"
    if sys.stdout.isatty():
        bar = "#" * int(20 * epoch / epochs)
        print(f"\r  [{bar:<20}] {line}", end="" if epoch < epochs else "\n", flush=True)
    elif epoch == epochs:
        print(f"  {line}", flush=True)


def train(
    cfg: RunConfig, run_dir=None, resume=None, progress: bool = True, stop_after: int | None = None
) -> RunResult:
    """Train one model; with ``run_dir``, write results there and a checkpoint every epoch.

    ``resume`` (a checkpoint path) continues a run exactly where it stopped: model,
    optimizer, scheduler, random-number state and history all come back, so the result
    is bit-identical to a run that never stopped. The checkpoint must come from a run
    with the same configuration. ``stop_after`` ends the run after that epoch, as an
    interruption would (the learning-rate schedule still spans all ``cfg.epochs``).
    """
    cfg.validate()
    if stop_after is not None and not (isinstance(stop_after, int) and stop_after >= 1):
        raise ValueError(f"stop_after must be an epoch number >= 1, got {stop_after!r}")
    ms.backend.use(cfg.backend)
    ms.manual_seed(cfg.seed)
    d = load_data(cfg)
    model = build_model(cfg, d)
    loader = datasets.DataLoader(d.x_train, d.y_train, batch_size=cfg.batch_size, shuffle=True)
    opt, scheduler = build_optimizer(cfg, model, len(loader))
    history, start_epoch = [], 0
    if resume is not None:
        state = ms.load(resume)
        saved = json.loads(state["config"])
        differ = [k for k, v in asdict(cfg).items() if json.loads(json.dumps(v)) != saved.get(k)]
        if differ:
            raise ValueError(
                f"cannot resume from {resume}: it was made with a different configuration "
                f"({', '.join(f'{k}: {saved.get(k)!r} there, {getattr(cfg, k)!r} here' for k in differ)})"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        ms.set_rng_state(state["rng"])
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"])

    started = time.perf_counter()
    last_epoch = cfg.epochs if stop_after is None else min(stop_after, cfg.epochs)
    for epoch in range(start_epoch + 1, last_epoch + 1):
        model.train()
        epoch_start, losses = time.perf_counter(), []
        for step, (inputs, targets) in enumerate(loader):
            loss = opt.step(lambda: F.cross_entropy(model(inputs), targets)).item()
            if not math.isfinite(loss):
                raise NonFiniteLoss(
                    f"the training loss became {loss} at epoch {epoch}, step {step} "
                    f"(lr {cfg.lr}, rho {cfg.rho}); try a smaller --lr or --rho"
                )
            losses.append(loss)
            if scheduler is not None:
                scheduler.step()
        seconds = time.perf_counter() - epoch_start
        row = {"epoch": epoch, "train_loss": float(np.mean(losses))}
        if d.x_val is not None:
            row["val_loss"], row["val_acc"] = evaluate(model, d.x_val, d.y_val)
        if cfg.evaluate_test:
            row["test_loss"], row["test_acc"] = evaluate(model, d.x_test, d.y_test)
        row.update(seconds=seconds, steps=len(losses))
        if cfg.optimizer == "xsam":
            row["alpha"] = float(opt.alpha)
        history.append(row)
        if progress:
            _progress(epoch, cfg.epochs, row, started)
        if run_dir is not None:
            checkpoint = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "rng": ms.get_rng_state(),
                "history": json.dumps(history),
                "epoch": epoch,
                "config": json.dumps(asdict(cfg)),
            }
            if scheduler is not None:
                checkpoint["scheduler"] = scheduler.state_dict()
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            ms.save(checkpoint, Path(run_dir) / "checkpoint.npz")

    train_loss, train_acc = evaluate(model, d.x_train, d.y_train)
    final = {
        "train_loss": train_loss,
        "train_acc": train_acc,
        **{
            key: history[-1][key]
            for key in ("val_loss", "val_acc", "test_loss", "test_acc")
            if key in history[-1]
        },
        "seconds_per_epoch": float(np.median([h["seconds"] for h in history])),
        "seconds_per_step": float(np.median([h["seconds"] / h["steps"] for h in history])),
    }
    if cfg.sharpness:
        final.update(measure_sharpness(model, d.x_train, d.y_train, cfg.rho))
    result = RunResult(cfg, history, final, model)
    if run_dir is not None:
        write_results(result, run_dir)
    return result


def config_of(checkpoint) -> RunConfig:
    """The configuration a checkpoint was made with (to resume it as it was)."""
    saved = json.loads(ms.load(checkpoint)["config"])
    saved["hidden"] = tuple(saved["hidden"])
    return RunConfig(**saved)


def write_results(result: RunResult, run_dir) -> None:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = {"config": asdict(result.config), "final": result.final, "history": result.history}
    (run_dir / "results.json").write_text(json.dumps(summary, indent=2))
    with open(run_dir / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(result.history[0]))
        writer.writeheader()
        writer.writerows(result.history)


# ---------------------------------------------------------------------------------------
# Several optimizers, several seeds, the same data and initialisations
# ---------------------------------------------------------------------------------------

COLUMNS = [
    ("test_acc", "test acc", "{:.3f}"),
    ("train_loss", "train loss", "{:.3f}"),
    ("lambda_max", "λ_max", "{:.2f}"),
    ("rho_sharpness", "ρ-sharpness", "{:.4f}"),
    ("seconds_per_epoch", "s/epoch", "{:.3f}"),
    ("cost_vs_sgd", "step cost vs SGD", "{:.2f}x"),
]


def compare(
    base: RunConfig, optimizers=("sgd", "sam", "xsam"), seeds=(0, 1, 2), run_dir=None, progress: bool = True
) -> dict:
    """Train every optimizer from the same initialisation and data order for each seed.

    Seeding before each run makes the initial weights, the label noise and the shuffling
    identical across optimizers for a given seed: the optimizer is the only difference.
    Returns {"rows": {optimizer: {metric: (mean, std)}}, "runs": {optimizer: [RunResult]}}.
    """
    runs = {name: [] for name in optimizers}
    for seed in seeds:
        for name in optimizers:
            if progress:
                print(f"{name.upper()} (seed {seed})")
            runs[name].append(train(replace(base, optimizer=name, seed=seed), progress=progress))
    rows = {}
    for name, results in runs.items():
        finals = [dict(r.final) for r in results]
        if "sgd" in runs:  # each run against SGD with the same seed
            for f, sgd in zip(finals, runs["sgd"], strict=True):
                f["cost_vs_sgd"] = f["seconds_per_step"] / sgd.final["seconds_per_step"]
        rows[name] = {
            key: (float(np.mean([f[key] for f in finals])), float(np.std([f[key] for f in finals])))
            for key, _, _ in COLUMNS
            if all(key in f for f in finals)
        }
    summary = {"rows": rows, "runs": runs, "seeds": list(seeds)}
    if run_dir is not None:
        write_comparison(summary, base, run_dir)
    return summary


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minisam import plots

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    runs, rows = summary["runs"], summary["rows"]
    table = format_table(rows, summary["seeds"])
    (run_dir / "table.txt").write_text(table + "\n")
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

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    plots.learning_curves(
        {n.upper(): [[h["test_acc"] for h in r.history] for r in rs] for n, rs in runs.items()},
        ax=axes[0],
        title=f"Test accuracy on {base.dataset} ({base.model})",
        ylabel="test accuracy",
    )
    plots.learning_curves(
        {n.upper(): [[h["train_loss"] for h in r.history] for r in rs] for n, rs in runs.items()},
        ax=axes[1],
        title="Training loss (mini-batch mean)",
        ylabel="cross-entropy",
    )
    plots.save(fig, run_dir / "learning_curves.png")
    plt.close(fig)
    if all("lambda_max" in row for row in rows.values()):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, key, title in (
            (axes[0], "lambda_max", r"Top Hessian eigenvalue $\lambda_{max}$"),
            (axes[1], "rho_sharpness", rf"$\rho$-sharpness ($\rho$={base.rho})"),
        ):
            plots.bar_chart(
                {n.upper(): rows[n][key][0] for n in rows},
                ax=ax,
                title=title,
                ylabel=key.replace("_", " "),
                errors={n.upper(): rows[n][key][1] for n in rows},
            )
        plots.save(fig, run_dir / "sharpness.png")
        plt.close(fig)
