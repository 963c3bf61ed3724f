"""A training run: the configuration, the pieces it builds, the loop, its checkpoints.

One loop serves SGD, SAM, ASAM and XSAM alike, because every optimizer takes the same
step: ``loss = opt.step(closure)``, with a closure that runs the forward pass and
returns the loss without calling backward.

    from minisam.train import RunConfig, train
    result = train(RunConfig(optimizer="xsam", epochs=10))
    print(result.history[-1]["test_acc"])

With a run folder, a checkpoint is written after every epoch, and ``resume`` continues
from it bit for bit (or extends the run: see ``restore``). Several optimizers over
several seeds is ``minisam/compare.py`` (``compare``, ``format_table`` and
``write_comparison`` are importable from here too).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

import minisam as ms
import minisam.functional as F
from minisam import checks, models, optim
from minisam import data as datasets
from minisam.vector import NonFiniteLoss

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
        """Check every setting (through minisam/checks.py); names may come in any letter
        case and are stored in lower case. Raises ``ArgumentError`` naming the setting and
        changes nothing when one is wrong."""
        who = "RunConfig"
        names = {
            name: checks.choice(who, name, getattr(self, name), allowed)
            for name, allowed in (
                ("optimizer", OPTIMIZERS),
                ("model", MODELS),
                ("dataset", DATASETS),
                ("schedule", SCHEDULES),
                ("backend", ("numpy", "cupy")),
            )
        }
        for name in ("lr", "rho"):
            checks.number(who, name, getattr(self, name), 0, above=True)
        for name in ("momentum", "weight_decay", "eta", "alpha"):
            checks.number(who, name, getattr(self, name), 0)
        if self.rho_max is not None:
            checks.number(who, "rho_max", self.rho_max, 0, above=True)
        for name in ("epochs", "batch_size", "ascent_steps"):
            checks.count(who, name, getattr(self, name), minimum=1)
        if self.search_every is not None:
            checks.count(who, "search_every", self.search_every)
        checks.count(who, "seed", self.seed)
        checks.probability(who, "label_noise", self.label_noise)
        checks.flag(who, "sharpness", self.sharpness)
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__len__") or not self.hidden:
            raise checks.ArgumentError(
                f"{who}: hidden must be a non-empty list of layer sizes, got {self.hidden!r}"
            )
        for size in self.hidden:
            checks.count(who, "each hidden size", size, minimum=1)
        if names["model"] == "cnn2d" and names["dataset"] != "digits":
            raise checks.ArgumentError(f"{who}: model cnn2d needs image data: use dataset digits")
        if names["model"] == "cnn1d" and names["dataset"] != "mnist1d":
            raise checks.ArgumentError(f"{who}: model cnn1d needs 1-D signals: use dataset mnist1d")
        checks.count(who, "validation", self.validation)
        checks.flag(who, "evaluate_test", self.evaluate_test)
        if self.validation and names["dataset"] not in ("mnist1d", "digits"):
            raise checks.ArgumentError(
                f"{who}: validation splits exist for mnist1d and digits, not {names['dataset']!r}"
            )
        self.__dict__.update(names)
        return self


@dataclass
class RunResult:
    config: RunConfig
    history: list = field(default_factory=list)  # one dict per epoch
    final: dict = field(default_factory=dict)
    model: object = None
    extensions: list = field(default_factory=list)  # resumed with more epochs: when and how


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


BUNDLED = {"mnist1d": "mnist1d.npz", "digits": "digits.npz"}  # the data sets read from data/


def check_data(dataset: str) -> None:
    """Refuse, before any work, a bundled data set whose file is not where it is looked for
    (``MINISAM_DATA`` pointing elsewhere, or a package installed without the repository)."""
    if dataset not in BUNDLED:
        return
    path = datasets.data_dir() / BUNDLED[dataset]
    if not path.is_file():
        override = os.environ.get("MINISAM_DATA", "")
        fix = (
            f"MINISAM_DATA is {override!r}: point it at the folder that holds {BUNDLED[dataset]}, or unset it"
            if override.strip()
            else "the data sets ship in the repository's data/ folder: install minisam from a checkout "
            "with `pip install -e .`"
        )
        raise FileNotFoundError(f"the {dataset} data file {path} does not exist; {fix}")


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
# Checkpoints: one file per run folder, rewritten at the end of every epoch
# ---------------------------------------------------------------------------------------

CHECKPOINT = "checkpoint.npz"
CHECKPOINT_KEYS = ("config", "epoch", "history", "model", "optimizer", "rng")
# What a resumed run may change: its length (to extend it) and a measurement made at the end.
RESUMABLE_CHANGES = ("epochs", "sharpness")


def save_checkpoint(path, cfg: RunConfig, epoch: int, history, model, opt, scheduler, extensions) -> None:
    """Everything a resumed run needs to continue bit for bit: weights, optimizer state
    (momentum buffers, XSAM's α and step counter), schedule position, the random-number
    generator, the history so far and the configuration. ``ms.save`` writes beside the
    file and renames, so an interruption while saving keeps the previous checkpoint."""
    state = {
        "config": json.dumps(asdict(cfg)),
        "epoch": epoch,
        "history": json.dumps(history),
        "extensions": json.dumps(extensions),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "rng": ms.get_rng_state(),
    }
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    ms.save(state, path)


def read_checkpoint(path) -> dict:
    """A training checkpoint's contents, checked: ``path`` is the file, or a run folder
    holding ``checkpoint.npz``; a file that ``ms.load`` reads but that lacks a training
    run's entries is refused by name."""
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT).is_file():
            raise FileNotFoundError(
                f"{path} is a folder without a {CHECKPOINT}: pass the run folder that holds one, or the file"
            )
        path = path / CHECKPOINT
    state = ms.load(path)
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(
            f"{path} is not a training checkpoint of `minisam train` (it lacks {', '.join(missing)}); "
            f"pass the {CHECKPOINT} of a run folder"
        )
    state["path"] = path
    return state


def config_of(checkpoint) -> RunConfig:
    """The configuration a checkpoint (file, run folder or the dict ``read_checkpoint``
    returns) was made with, to resume it as it was."""
    state = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint)
    try:
        saved = json.loads(str(state["config"]))
        saved["hidden"] = tuple(saved["hidden"])
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(
            f"{state.get('path', 'the checkpoint')} is damaged: its configuration cannot be read "
            f"({type(err).__name__}: {err}); pass the {CHECKPOINT} of a run folder"
        ) from None
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(saved) - known)
    if unknown:
        raise ValueError(
            f"{state.get('path', 'the checkpoint')} was made by a minisam with settings this one does not "
            f"know ({', '.join(unknown)}); resume it with the version that made it"
        )
    return RunConfig(**saved)


def resume_differences(saved: RunConfig, cfg: RunConfig) -> list[str]:
    """The settings in which ``cfg`` differs from the checkpoint's, other than those a
    resumed run may change (``RESUMABLE_CHANGES``)."""
    ours, theirs = json.loads(json.dumps(asdict(cfg))), json.loads(json.dumps(asdict(saved)))
    return [
        f"{key}: {theirs.get(key)!r} there, {getattr(cfg, key)!r} here"
        for key in ours
        if key not in RESUMABLE_CHANGES and ours[key] != theirs.get(key)
    ]


def restore(state: dict, cfg: RunConfig, model, opt, scheduler) -> tuple[list, int, list]:
    """Load a checkpoint into freshly built pieces; returns (history, epoch, extensions).

    A run resumed with the same ``epochs`` continues exactly: the result is bit-identical
    to a run that never stopped. A run resumed with a different ``epochs`` is *extended*
    (or shortened, down to the epochs it has done): the learning-rate schedule is then
    redefined over the new total, so the next step uses the rate the new schedule gives at
    that step. With ``schedule="none"`` an extended run is bit-identical to one started with
    the larger ``epochs``; with ``cosine`` or ``step`` it is not, because its earlier epochs
    ran on the shorter schedule (a cosine schedule that had decayed to 0 rises again, to
    lr·(1 + cos(π·done/new))/2). Each extension is recorded in ``extensions``.
    """
    saved = config_of(state)
    where = state["path"]
    differ = resume_differences(saved, cfg)
    if differ:
        raise ValueError(
            f"cannot resume from {where}: it was made with a different configuration ({'; '.join(differ)}); "
            f"only {' and '.join(RESUMABLE_CHANGES)} may change"
        )
    epoch = int(state["epoch"])
    if cfg.epochs < epoch:
        raise ValueError(
            f"cannot resume from {where} with epochs {cfg.epochs}: it has already done {epoch} epochs"
        )
    try:  # a checkpoint whose weights or optimizer state do not fit its own configuration
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        extensions = json.loads(state.get("extensions", "[]"))
        new_shape = None if scheduler is None else scheduler.state_dict()  # as built for cfg.epochs
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"cannot resume from {where}: it is damaged ({err})") from None
    if scheduler is not None and cfg.epochs != saved.epochs:  # the new schedule's shape, at this step
        scheduler.load_state_dict({**new_shape, "last_epoch": scheduler.last_epoch})
        opt.lr = scheduler.get_lr()
    if cfg.epochs != saved.epochs:
        extensions.append({"at_epoch": epoch, "from_epochs": saved.epochs, "to_epochs": cfg.epochs})
    ms.set_rng_state(state["rng"])
    return json.loads(state["history"]), epoch, extensions


def check_output_folder(path, who: str = "run folder") -> Path:
    """Refuse, before any work, a folder that cannot be made or written: an existing
    file, a path through a file, a symbolic link to nowhere, a read-only place. Creates nothing."""
    path = Path(path)
    try:
        path.exists()
    except OSError as err:  # a name the file system cannot even look up (longer than its limit)
        raise ValueError(f"{who} {path} cannot be made ({err.strerror}): choose another path") from None
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{who} {path} is an existing file, not a folder: choose another path")
    existing = path
    while not existing.exists():
        if existing.is_symlink():  # exists() follows the link: this one points nowhere
            raise FileExistsError(
                f"{who} {path} cannot be made: {existing} is a symbolic link to {os.readlink(existing)!r}, "
                "which does not exist: choose another path or remove the link"
            )
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"{who} {path} cannot be made: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{who} {path} cannot be written: no write permission in {existing}")
    return path


# ---------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training: which epoch was running, and the last checkpoint (the
    epoch it holds and its path; ``(0, None)`` when nothing was saved)."""

    def __init__(self, epoch: int, saved_epoch: int, checkpoint):
        super().__init__(f"interrupted during epoch {epoch}")
        self.epoch, self.saved_epoch, self.checkpoint = epoch, saved_epoch, checkpoint


def _progress(epoch, epochs, row, started):
    """One line per epoch: a bar redrawn in place on a terminal, plain lines otherwise
    (a log file or a pipe still shows that the run is alive)."""
    accuracy = "".join(
        f"  {name} acc {row[name + '_acc']:.3f}" for name in ("val", "test") if name + "_acc" in row
    )
    elapsed = time.perf_counter() - started
    line = f"epoch {epoch}/{epochs}  loss {row['train_loss']:.3f}{accuracy}  ({elapsed:.0f}s)"
    if sys.stdout is not None and sys.stdout.isatty():  # None: started with its stdout closed
        bar = "#" * int(20 * epoch / epochs)
        print(f"\r  [{bar:<20}] {line}", end="" if epoch < epochs else "\n", flush=True)
    else:
        print(f"  {line}", flush=True)


def _suspects(cfg: RunConfig) -> str:
    """The settings that can make the loss overflow, and which of them to lower: the learning rate,
    rho for the optimizers that read it, and the weight decay when lr·wd is large (>= 1)."""
    knobs = {"lr": cfg.lr, "momentum": cfg.momentum, "weight decay": cfg.weight_decay}
    lower = ["--lr"]
    if cfg.optimizer != "sgd":
        knobs["rho"] = cfg.rho
        lower.append("--rho")
    if cfg.lr * cfg.weight_decay >= 1:
        lower.append("--weight-decay")
    settings = ", ".join(f"{name} {value}" for name, value in knobs.items())
    return f"({settings}); try a smaller " + " or ".join(lower)


def train_one_epoch(model, loader, opt, scheduler, cfg: RunConfig, epoch: int) -> list[float]:
    """One pass over the training data; the loss at θ of every step (as the optimizer
    returns it). The schedule moves once per step."""
    model.train()
    losses = []
    for step, (inputs, targets) in enumerate(loader):
        try:  # the optimizers refuse a NaN or infinite loss (vector.loss_and_gradients)
            loss = opt.step(lambda: F.cross_entropy(model(inputs), targets)).item()
        except NonFiniteLoss as err:
            raise NonFiniteLoss(
                f"the training loss became {err.value} at epoch {epoch}, step {step} {_suspects(cfg)}",
                err.value,
            ) from None
        losses.append(loss)
        if scheduler is not None:
            scheduler.step()
    return losses


def train(
    cfg: RunConfig, run_dir=None, resume=None, progress: bool = True, stop_after: int | None = None
) -> RunResult:
    """Train one model; with ``run_dir``, write results there and a checkpoint every epoch.

    ``resume`` (a checkpoint file or run folder) continues a run where it stopped: model,
    optimizer, scheduler, random-number state and history all come back, so the result
    is bit-identical to a run that never stopped. The checkpoint must come from a run
    with the same configuration, except ``epochs`` (a different value extends the run;
    see ``restore`` for what that does to the schedule) and ``sharpness``. ``stop_after``
    ends the run after that epoch, as an interruption would (the learning-rate schedule
    still spans all ``cfg.epochs``). Ctrl-C raises ``Interrupted``.
    """
    cfg.validate()
    if stop_after is not None:
        checks.count("train", "stop_after", stop_after, minimum=1)
    if run_dir is not None:
        check_output_folder(run_dir, "train: run_dir")
    state = read_checkpoint(resume) if resume is not None else None
    ms.backend.use(cfg.backend)
    ms.manual_seed(cfg.seed)
    d = load_data(cfg)
    model = build_model(cfg, d)
    loader = datasets.DataLoader(d.x_train, d.y_train, batch_size=cfg.batch_size, shuffle=True)
    opt, scheduler = build_optimizer(cfg, model, len(loader))
    history, start_epoch, extensions = [], 0, []
    if state is not None:
        history, start_epoch, extensions = restore(state, cfg, model, opt, scheduler)
    checkpoint = None if run_dir is None else Path(run_dir) / CHECKPOINT

    started = time.perf_counter()
    last_epoch = cfg.epochs if stop_after is None else min(stop_after, cfg.epochs)
    last_saved = (start_epoch, state["path"]) if state is not None else (0, None)
    running = start_epoch + 1
    try:
        for epoch in range(start_epoch + 1, last_epoch + 1):
            running = epoch
            epoch_start = time.perf_counter()
            losses = train_one_epoch(model, loader, opt, scheduler, cfg, epoch)
            seconds = time.perf_counter() - epoch_start
            row = {"epoch": epoch, "train_loss": float(np.mean(losses))}
            if d.x_val is not None:
                row["val_loss"], row["val_acc"] = evaluate(model, d.x_val, d.y_val)
            if cfg.evaluate_test:  # False while settings are chosen on validation
                row["test_loss"], row["test_acc"] = evaluate(model, d.x_test, d.y_test)
            row.update(seconds=seconds, steps=len(losses))
            if cfg.optimizer == "xsam":
                row["alpha"] = float(opt.alpha)
            history.append(row)
            if checkpoint is not None:
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                save_checkpoint(checkpoint, cfg, epoch, history, model, opt, scheduler, extensions)
                last_saved = (epoch, checkpoint)
            if progress:  # after the checkpoint: an epoch on the screen is an epoch saved
                _progress(epoch, cfg.epochs, row, started)
    except KeyboardInterrupt:
        if checkpoint is not None:  # a save cut short leaves its partial file beside the last checkpoint
            Path(f"{checkpoint}.partial").unlink(missing_ok=True)
        raise Interrupted(running, *last_saved) from None

    if not history:
        raise ValueError(f"nothing to report: the run has no finished epoch (epochs {cfg.epochs})")
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
    result = RunResult(cfg, history, final, model, extensions)
    if run_dir is not None:
        write_results(result, run_dir)
    return result


def write_results(result: RunResult, run_dir) -> None:
    """results.json (configuration, final numbers, per-epoch history, extensions) and
    history.csv (one row per epoch) in ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = {"config": asdict(result.config), "final": result.final, "history": result.history}
    if result.extensions:
        summary["extensions"] = result.extensions
    (run_dir / "results.json").write_text(json.dumps(summary, indent=2))
    with open(run_dir / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(result.history[0]))
        writer.writeheader()
        writer.writerows(result.history)


def __getattr__(name):
    """``compare``, ``format_table`` and ``write_comparison`` live in minisam/compare.py and
    stay importable from here (looked up on first use: compare.py itself imports this module)."""
    if name in ("compare", "format_table", "write_comparison"):
        from . import compare as comparison

        return getattr(comparison, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
