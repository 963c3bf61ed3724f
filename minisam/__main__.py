"""The command line: ``python -m minisam {demo,train,compare,bench} ...``.

    python -m minisam demo                                  # the tour: landscape + MNIST-1D
    python -m minisam train --optimizer xsam --epochs 10
    python -m minisam train --resume runs/train-X/checkpoint.npz --epochs 30    # extend a run
    python -m minisam compare --optimizers sgd sam xsam --seeds 0 1 2 --label-noise 0.2
    python -m minisam bench --only optimizers

Everything the user typed is checked before any work starts, and an option that does not
apply to the chosen optimizer (``--alpha`` for SGD) is refused rather than ignored. Every
failure is one line on stderr, ``python -m minisam <command>: error: <what, and what to
do>``, with exit status 2 when the arguments were refused before any work and 1 when the
work itself failed; Ctrl-C says which epoch was interrupted and how to resume (status
130). ``MINISAM_DEBUG=1`` re-raises instead, with the full traceback.

The commands run with one BLAS thread (``minisam/threads.py``), unless you set
``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or ``MINISAM_BLAS_THREADS``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path

from . import checks
from .train import CHECKPOINT, DATASETS, MODELS, OPTIMIZERS, RESUMABLE_CHANGES, SCHEDULES, RunConfig

PROG = "python -m minisam"

# Options that only some optimizers (or models) read; given for another, they are refused.
APPLIES_TO = {
    "rho": ("sam", "asam", "xsam"),
    "ascent_steps": ("sam", "asam", "xsam"),
    "eta": ("asam",),
    "rho_max": ("xsam",),
    "alpha": ("xsam",),
    "search_every": ("xsam",),
}
RUN_SETTINGS = tuple(f.name for f in fields(RunConfig))


class Refused(Exception):
    """The arguments were refused before any work started (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its refusals on one line that says where to look."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------------------------------
# One argparse type for every number and name, checked by minisam/checks.py
# ---------------------------------------------------------------------------------------


def _argument_type(convert, check, expected: str):
    """An argparse type: ``convert(text)``, then ``check(value)`` (a minisam.checks rule,
    called with the name "value"); either failure becomes argparse's one-line error."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        try:
            return check(value)
        except checks.ArgumentError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None

    return parse


POSITIVE = _argument_type(float, lambda v: checks.number("", "value", v, 0, above=True), "a number")
NON_NEGATIVE = _argument_type(float, lambda v: checks.number("", "value", v, 0), "a number")
FRACTION = _argument_type(float, lambda v: checks.probability("", "value", v), "a number")
POSITIVE_INT = _argument_type(int, lambda v: checks.count("", "value", v, minimum=1), "a whole number")
COUNT = _argument_type(int, lambda v: checks.count("", "value", v), "a whole number")


def one_of(options):
    """An argparse type for a name from ``options``, in any letter case."""
    return _argument_type(str, lambda v: checks.choice("", "value", v, options), "a name")


# ---------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------


def _add_run_arguments(parser, command: str) -> None:
    """The options that make a RunConfig. Their default is "not given" (so that a resumed
    run can tell a conflicting flag from an absent one); the help shows RunConfig's value."""
    d = RunConfig()
    unset = argparse.SUPPRESS

    def add(group, flag, help, **kwargs):
        group.add_argument(flag, default=unset, help=help, **kwargs)

    g = parser.add_argument_group("data and model")
    add(
        g,
        "--dataset",
        f"bundled or toy dataset (default {d.dataset})",
        type=one_of(DATASETS),
        choices=DATASETS,
    )
    add(g, "--model", f"network (default {d.model})", type=one_of(MODELS), choices=MODELS)
    add(
        g,
        "--hidden",
        f"MLP hidden sizes (default {' '.join(map(str, d.hidden))})",
        type=POSITIVE_INT,
        nargs="+",
        metavar="SIZE",
    )
    add(
        g,
        "--label-noise",
        f"fraction of training labels flipped to another class (default {d.label_noise})",
        type=FRACTION,
    )
    g = parser.add_argument_group("optimization")
    if command == "train":
        add(
            g,
            "--optimizer",
            f"(default {d.optimizer}; any letter case)",
            type=one_of(OPTIMIZERS),
            choices=OPTIMIZERS,
        )
    add(g, "--lr", f"learning rate (default {d.lr})", type=POSITIVE)
    add(g, "--momentum", f"SGD momentum, for every optimizer (default {d.momentum})", type=NON_NEGATIVE)
    add(g, "--weight-decay", f"(default {d.weight_decay})", type=NON_NEGATIVE)
    add(
        g,
        "--rho",
        f"SAM, ASAM, XSAM: neighbourhood radius (default {d.rho}; ASAM measures it in its own "
        "scaled units, and its paper uses 0.5)",
        type=POSITIVE,
    )
    add(g, "--rho-max", "XSAM: probe radius (default 2·rho)", type=POSITIVE)
    add(g, "--alpha", f"XSAM: initial alpha (default {d.alpha})", type=NON_NEGATIVE)
    add(g, "--ascent-steps", f"SAM, ASAM, XSAM: ascent steps k (default {d.ascent_steps})", type=POSITIVE_INT)
    add(
        g,
        "--search-every",
        "XSAM: steps between alpha searches (default: once per epoch; 0: never)",
        type=COUNT,
    )
    add(g, "--eta", f"ASAM: eta in T = |θ| + eta (default {d.eta})", type=NON_NEGATIVE)
    add(g, "--epochs", f"(default {d.epochs})", type=POSITIVE_INT)
    add(g, "--batch-size", f"(default {d.batch_size})", type=POSITIVE_INT)
    add(
        g,
        "--schedule",
        f"learning-rate schedule, per step (default {d.schedule})",
        type=one_of(SCHEDULES),
        choices=SCHEDULES,
    )
    g = parser.add_argument_group("run")
    if command == "train":
        add(g, "--seed", f"(default {d.seed})", type=COUNT)
    add(g, "--backend", f"(default {d.backend})", type=one_of(("numpy", "cupy")), choices=("numpy", "cupy"))
    g.add_argument(
        "--sharpness", action="store_true", default=unset, help="measure λ_max and the ρ-sharpness at the end"
    )
    g.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FOLDER",
        help=f"run folder (default runs/{command}-<date-time>)",
    )


def build_parser():
    """The parser, and each subcommand's parser by name (for its prog in error lines)."""
    parser = _Parser(
        prog=PROG,
        description="minisam: Sharpness-Aware Minimization (SGD, SAM, ASAM, XSAM) from scratch. "
        "Each command checks its arguments before any work, prints the run folder first, and "
        "runs with one BLAS thread unless OPENBLAS_NUM_THREADS (or similar) is set.",
        epilog="MINISAM_DEBUG=1 shows the traceback of a failure instead of its one-line summary.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands = {}

    p = commands["demo"] = sub.add_parser(
        "demo",
        help="the tour: SGD/SAM/XSAM on a sharp/flat landscape and on MNIST-1D",
        description="SGD, SAM and XSAM on a 2-D landscape with a sharp and a flat minimum, then "
        "on MNIST-1D with 20% label noise over five seeds; prints a table and writes figures. "
        "Bundled data, NumPy, one BLAS thread. --quick took under 3 minutes on a 2-core machine at load 8.",
    )
    p.add_argument(
        "--out", type=Path, default=None, metavar="FOLDER", help="run folder (default runs/demo-<date-time>)"
    )
    p.add_argument("--quick", action="store_true", help="2 epochs and 2 seeds (a smoke test, not a result)")

    p = commands["train"] = sub.add_parser(
        "train",
        help="train one model with one optimizer",
        description="Train one model. Writes results.json, history.csv and, after every epoch, "
        f"{CHECKPOINT}. --resume continues a run bit for bit; given with a different --epochs it "
        "extends the run, and the learning-rate schedule is then redefined over the new total "
        "(with --schedule none the result equals a run started with that many epochs; with "
        "cosine or step it does not, and results.json records the extension). With the defaults "
        "(MNIST-1D, MLP 256-256, 20 epochs, SGD) a run needs about 2.2 s of CPU time with one BLAS "
        "thread; on a 2-core machine at load 7 it took 6.5-10 s, and 106-111 s at load 8-10 with "
        "OpenBLAS's default of two threads.",
    )
    _add_run_arguments(p, "train")
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help=f"continue from a {CHECKPOINT} (or the run folder holding it) with the settings it was "
        "made with; other flags must agree with them, except --epochs (extends) and --sharpness",
    )

    p = commands["compare"] = sub.add_parser(
        "compare",
        help="several optimizers x seeds on the same data and initialisations",
        description="Train each optimizer from the same initial weights and data order for each "
        "seed; prints a table of mean ± std over the seeds and writes figures and results. "
        "Options that apply to some optimizers only need one of them in --optimizers.",
    )
    _add_run_arguments(p, "compare")
    p.add_argument(
        "--optimizers",
        type=one_of(OPTIMIZERS),
        choices=OPTIMIZERS,
        nargs="+",
        default=["sgd", "sam", "xsam"],
        metavar="NAME",
        help=f"from {', '.join(OPTIMIZERS)}, each at most once, any letter case (default sgd sam xsam)",
    )
    p.add_argument(
        "--seeds",
        type=COUNT,
        nargs="+",
        default=[0, 1, 2],
        metavar="SEED",
        help="each at most once (default 0 1 2)",
    )

    from . import bench

    p = commands["bench"] = sub.add_parser(
        "bench",
        help="speed ratios measured side by side (run by hand)",
        description=bench.__doc__.split("\n\n")[0],
    )
    bench.add_arguments(p)

    # Subcommands defined in their own modules (`add_arguments(parser)` and `run(args)`):
    # the experiment helper's `reproduce` plugs in here once minisam/reproduce.py exists.
    for name, help in (("reproduce", "re-run the pre-registered experiments behind the lessons' claims"),):
        if importlib.util.find_spec(f"{__package__}.{name}") is not None:
            module = importlib.import_module(f"{__package__}.{name}")
            about = (module.__doc__ or help).split("\n\n")[0]
            p = commands[name] = sub.add_parser(name, help=help, description=about)
            module.add_arguments(p)
    return parser, commands


# ---------------------------------------------------------------------------------------
# Checks before any work
# ---------------------------------------------------------------------------------------


@contextmanager
def before_any_work():
    """Any failure inside is a refusal of the arguments (exit 2), not a failed run."""
    try:
        yield
    except (Refused, KeyboardInterrupt):
        raise
    except Exception as err:
        if os.environ.get("MINISAM_DEBUG"):
            raise
        raise Refused(one_line(err)) from err


def _given(args) -> dict:
    """The RunConfig settings the user typed (absent ones are not in ``args`` at all)."""
    given = {name: getattr(args, name) for name in RUN_SETTINGS if hasattr(args, name)}
    if "hidden" in given:
        given["hidden"] = tuple(given["hidden"])
    return given


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def refuse_options_that_do_not_apply(given: dict, optimizers, model: str) -> None:
    for name, readers in APPLIES_TO.items():
        if name in given and not set(readers) & set(optimizers):
            raise Refused(
                f"{_flag(name)} applies only to {', '.join(readers)}, and this run uses "
                f"{', '.join(optimizers)}: leave it out or choose a matching optimizer"
            )
    if "hidden" in given and model != "mlp":
        raise Refused(f"--hidden sets the MLP's sizes, and this run uses --model {model}: leave it out")


def refuse_a_folder_with_an_earlier_run(run_dir: Path, resumable: bool) -> None:
    for name in (CHECKPOINT, "results.json"):
        if (run_dir / name).exists():
            can_resume = resumable and (run_dir / CHECKPOINT).exists()
            hint = f"resume it with --resume {run_dir / CHECKPOINT}, or " if can_resume else ""
            raise Refused(f"--out {run_dir} already holds a run ({name}): {hint}choose another --out")


def refuse_repeats(flag: str, values: list) -> None:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise Refused(f"{flag} lists {', '.join(repeated)} more than once: give each once")


def refuse_an_unusable_backend(backend: str) -> None:
    """CuPy asked for where it cannot run: say why, and how to stay on NumPy."""
    import minisam as ms

    reason = ms.backend.gpu_unavailable_reason() if backend == "cupy" else None
    if reason is not None:
        raise Refused(
            f"--backend cupy cannot run here: {reason.rstrip('.')}; leave --backend out to use NumPy"
        )


def _default_folder(command: str) -> Path:
    return Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"


@contextmanager
def run_folder(path: Path):
    """Make the run folder and say where it is; if the run fails before writing anything
    into it, take the (empty) folder away again."""
    made = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    print(f"run folder: {path}/", flush=True)
    try:
        yield path
    except BaseException:
        if made and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        raise


@contextmanager
def quiet_overflow():
    """A loss that overflows is reported once, by NonFiniteLoss naming the epoch and step;
    NumPy's own overflow warnings on the way there would only add lines."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        yield


# ---------------------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------------------


def run_train(args) -> int:
    import minisam as ms
    from minisam import train as training

    given = _given(args)
    with before_any_work():
        state = None
        if args.resume is not None:
            state = training.read_checkpoint(args.resume)
            saved = training.config_of(state)
            conflicts = [
                f"{_flag(name)} {value!r} (the checkpoint has {getattr(saved, name)!r})"
                for name, value in given.items()
                if name not in RESUMABLE_CHANGES and value != getattr(saved, name)
            ]
            if conflicts:
                raise Refused(
                    f"{'; '.join(conflicts)}: a resumed run keeps the settings it was made with "
                    f"(only {', '.join(map(_flag, RESUMABLE_CHANGES))} may be given); leave the flag out"
                )
            refuse_options_that_do_not_apply(given, [saved.optimizer], saved.model)
            config = replace(saved, **{k: v for k, v in given.items() if k in RESUMABLE_CHANGES})
            done = int(state["epoch"])
            if config.epochs < done:
                raise Refused(f"--epochs {config.epochs}: {state['path']} has already done {done} epochs")
            run_dir = args.out or state["path"].parent
            if run_dir.resolve() != state["path"].parent.resolve():
                refuse_a_folder_with_an_earlier_run(run_dir, resumable=False)
        else:
            config = replace(RunConfig(), **given)
            refuse_options_that_do_not_apply(given, [config.optimizer], config.model)
            run_dir = args.out or _default_folder("train")
            refuse_a_folder_with_an_earlier_run(run_dir, resumable=True)
        config.validate()
        training.check_output_folder(run_dir, "--out")
        refuse_an_unusable_backend(config.backend)
        ms.backend.use(config.backend)

    extending = state is not None and config.epochs != training.config_of(state).epochs
    with run_folder(run_dir), quiet_overflow():
        if state is not None:
            print(
                f"resuming {state['path']} after epoch {int(state['epoch'])} with its own settings"
                + (f", extended to {config.epochs} epochs" if extending else ""),
                flush=True,
            )
        try:
            result = training.train(config, run_dir=run_dir, resume=None if state is None else state["path"])
        except training.Interrupted as stop:
            raise KeyboardInterrupt(_interrupted_train(stop, config, extending)) from None
    print("final: " + ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in result.final.items()))
    print(f"results in {run_dir}/")
    return 0


def _interrupted_train(stop, config: RunConfig, extending: bool) -> str:
    if stop.checkpoint is None:
        return f"interrupted during epoch {stop.epoch}, before the first checkpoint: nothing to resume"
    extend = f" --epochs {config.epochs}" if extending else ""
    return (
        f"interrupted during epoch {stop.epoch} (epochs 1-{stop.saved_epoch} are saved); resume with: "
        f"{PROG} train --resume {stop.checkpoint}{extend}"
    )


def run_compare(args) -> int:
    import minisam as ms
    from minisam import compare as comparison
    from minisam import train as training

    given = _given(args)
    with before_any_work():
        optimizers, seeds = list(args.optimizers), list(args.seeds)
        refuse_repeats("--optimizers", optimizers)
        refuse_repeats("--seeds", seeds)
        base = replace(RunConfig(), **given)
        refuse_options_that_do_not_apply(given, optimizers, base.model)
        comparison.check_plan(base, optimizers, seeds)
        run_dir = args.out or _default_folder("compare")
        refuse_a_folder_with_an_earlier_run(run_dir, resumable=False)
        training.check_output_folder(run_dir, "--out")
        refuse_an_unusable_backend(base.backend)
        ms.backend.use(base.backend)

    _use_agg()
    with run_folder(run_dir), quiet_overflow():
        try:
            summary = comparison.compare(base, optimizers=optimizers, seeds=seeds, run_dir=run_dir)
        except training.Interrupted as stop:
            raise KeyboardInterrupt(
                f"interrupted during epoch {stop.epoch} of a run; compare keeps no checkpoints, "
                "so run the command again"
            ) from None
    print(comparison.format_table(summary["rows"], seeds))
    print(f"results and figures in {run_dir}/")
    return 0


def run_demo(args) -> int:
    from minisam import demo
    from minisam import train as training

    with before_any_work():
        run_dir = args.out or _default_folder("demo")
        training.check_output_folder(run_dir, "--out")
    _use_agg()
    print(f"run folder: {run_dir}/", flush=True)
    return demo.main(out=run_dir, quick=args.quick)


def _use_agg() -> None:
    """Figures go to files: no window, and no display needed."""
    import matplotlib

    matplotlib.use("Agg")


def one_line(err: BaseException) -> str:
    """An exception as one line: its message (a KeyError's without quotes), else its type."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    text = " ".join(text.split())
    return text or type(err).__name__


def main(argv=None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    prog = commands[args.command].prog
    debug = bool(os.environ.get("MINISAM_DEBUG"))
    from . import threads

    try:
        if args.command == "bench":  # it sets the thread limits of each measurement itself
            from . import bench

            return bench.run(args)
        threads.use_one_blas_thread()
        if args.command in ("train", "compare", "demo"):
            return {"train": run_train, "compare": run_compare, "demo": run_demo}[args.command](args)
        return importlib.import_module(f"{__package__}.{args.command}").run(args)
    except Refused as err:
        if debug and err.__cause__ is not None:
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        if debug:
            raise
        print(f"{prog}: {one_line(stop) if stop.args else 'interrupted'}", file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            raise
        known = isinstance(err, (ValueError, TypeError, KeyError, OSError, RuntimeError))
        detail = one_line(err) if known else f"{type(err).__name__}: {one_line(err)} (a bug? rerun with "
        detail += "" if known else "MINISAM_DEBUG=1 for the traceback and report it)"
        print(f"{prog}: error: {detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
