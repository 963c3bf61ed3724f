"""The command line: ``python -m minisam {demo,train,compare,reproduce,bench} ...``.

    python -m minisam demo                                  # the tour: landscape + MNIST-1D
    python -m minisam train --optimizer xsam --epochs 10
    python -m minisam train --resume runs/train-X/checkpoint.npz --epochs 30    # extend a run
    python -m minisam compare --optimizers sgd sam xsam --seeds 0 1 2 --label-noise 0.2
    python -m minisam bench --only optimizers

Everything the user typed is checked before any work starts, and an option that does not
apply to the chosen optimizer (``--alpha`` for SGD) is refused rather than ignored. Every
failure is one line on stderr, ``python -m minisam <command>: error: <what, and what to
do>``, with exit status 2 when the arguments were refused before any work and 1 when the
work itself failed; Ctrl-C (or SIGTERM) says which epoch was interrupted and how to resume
(status 130, or 143 for SIGTERM). ``MINISAM_DEBUG=1`` re-raises instead, with the full traceback.
A flag given twice is refused, and so is a malformed environment variable that minisam
reads (``MINISAM_BACKEND``, ``MINISAM_DEBUG``, the thread variables below).

The commands run with one BLAS thread (``minisam/threads.py``), unless you set
``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or ``MINISAM_BLAS_THREADS``.
``MINISAM_BACKEND`` (numpy or cupy) is the default of ``--backend`` for train and compare; demo
and reproduce run on NumPy, as their stored results were made, and refuse another backend.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path

from . import checks
from .backend import BACKENDS
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


class Stopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a command; the message says what was saved and how to go on.
    (Any other KeyboardInterrupt prints as "interrupted": Python may have wrapped one raised
    inside a codec in a message of its own.)"""


class _StoreOnce(argparse._StoreAction):
    """argparse's "store", except that a flag given twice is refused: with argparse's own
    rule (the last one wins) ``--epochs 5 ... --epochs 50`` would quietly drop a value."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = namespace.__dict__.setdefault("_flags_given", set())
        if self.dest in seen:
            raise argparse.ArgumentError(
                self,
                f"given more than once ({getattr(namespace, self.dest)!r}, then {values!r}): give it once",
            )
        seen.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


class _Parser(argparse.ArgumentParser):
    """argparse, with its refusals on one line that says where to look, and every option
    (of every subcommand: they are made with this class too) given at most once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)
        # "-1e-9", "-inf", "-nan" are numbers (refused by the option's type, by name), not unknown
        # flags: argparse's own pattern knows only "-1" and "-0.5", and said "expected one argument"
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)

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


# "+ 0.0" turns a typed "-0" into 0.0, so that results.json never records a negative zero
POSITIVE = _argument_type(float, lambda v: checks.number("", "value", v, 0, above=True), "a number")
NON_NEGATIVE = _argument_type(float, lambda v: checks.number("", "value", v, 0) + 0.0, "a number")


def _below_one(value: float) -> float:
    """A number in [0, 1), with that one message for every way to miss it (NaN, -1, 1, 1.5)."""
    if not 0 <= value < 1:  # NaN fails every comparison
        raise checks.ArgumentError(f"value must be a number in [0, 1), got {value!r}")
    return value + 0.0


FRACTION = _argument_type(float, _below_one, "a number")
POSITIVE_INT = _argument_type(int, lambda v: checks.count("", "value", v, minimum=1), "a whole number")
COUNT = _argument_type(int, lambda v: checks.count("", "value", v), "a whole number")


def one_of(options):
    """An argparse type for a name from ``options``, in any letter case."""
    return _argument_type(str, lambda v: checks.choice("", "value", v, options), "a name")


def path_argument(text: str) -> Path:
    """An argparse type for a file or folder: an empty name (``--out ""``, or an unset shell
    variable) would mean the current folder, so it is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return Path(text)


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
    add(
        g,
        "--momentum",
        f"SGD momentum in [0, 1), for every optimizer (default {d.momentum})",
        type=FRACTION,
    )
    add(g, "--weight-decay", f"(default {d.weight_decay})", type=NON_NEGATIVE)
    add(
        g,
        "--rho",
        f"SAM, ASAM, XSAM: neighbourhood radius (default {d.rho}; ASAM measures it in its own "
        "scaled units, and its paper uses 0.5)",
        type=POSITIVE,
    )
    add(g, "--rho-max", "XSAM: probe radius (default 2·rho)", type=POSITIVE)
    add(
        g,
        "--alpha",
        f"XSAM: the alpha used until the first search; needs --search-every 0, since step 0 searches "
        f"(default {d.alpha})",
        type=NON_NEGATIVE,
    )
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
    add(
        g,
        "--backend",
        f"(default: MINISAM_BACKEND when it is set, else {d.backend})",
        type=one_of(BACKENDS),
        choices=BACKENDS,
    )
    g.add_argument(
        "--sharpness",
        action="store_true",
        default=unset,
        help="measure λ_max and the ρ-sharpness (at --rho) at the end",
    )
    g.add_argument(
        "--out",
        type=path_argument,
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
        description="SGD, SAM and XSAM on a 2-D landscape with a sharp and a flat minimum, then the "
        "main result's headline setting (1-D CNN, clean MNIST-1D): 2 of its 5 seeds rerun and checked "
        "against the stored runs, then the stored five-seed tables and verdicts; writes figures. "
        "Bundled data, NumPy, one BLAS thread. On an idle 2-core machine it took 139 s (--quick: 38 s); "
        "beside two other busy processes, 1.8x that.",
    )
    p.add_argument(
        "--out",
        type=path_argument,
        default=None,
        metavar="FOLDER",
        help="run folder (default runs/demo-<date-time>)",
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
        "(MNIST-1D, MLP 256-256, 20 epochs, SGD) a run needs about 2.1 s of CPU time with one BLAS "
        "thread: 2.0 s on an idle 2-core machine, 3.9 s beside two other busy processes, 6.5-10 s at "
        "load 7, and 106-111 s at load 8-10 with OpenBLAS's default of two threads.",
    )
    _add_run_arguments(p, "train")
    p.add_argument(
        "--resume",
        type=path_argument,
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

    # Subcommands defined in their own modules (`add_arguments(parser)`, `run(args)` and, if they
    # check their arguments before any work, `check_arguments(args)`): `reproduce` plugs in here.
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


def debug_requested() -> bool:
    """MINISAM_DEBUG: 1 (true, yes, on) shows the traceback of a failure; unset, empty or 0
    (false, no, off) gives the one-line summary; anything else is refused, not guessed at."""
    text = os.environ.get("MINISAM_DEBUG", "")
    if text.strip().lower() in ("", "0", "false", "no", "off"):
        return False
    if text.strip().lower() in ("1", "true", "yes", "on"):
        return True
    raise Refused(
        f"MINISAM_DEBUG is {text!r}: set it to 1 to see the traceback of a failure, "
        "or to 0 (or unset it) for the one-line summary"
    )


@contextmanager
def before_any_work():
    """Any failure inside is a refusal of the arguments (exit 2), not a failed run."""
    try:
        yield
    except (Refused, KeyboardInterrupt):
        raise
    except Exception as err:
        if debug_requested():
            raise
        raise Refused(one_line(err)) from err


def backend_from_environment() -> str | None:
    """MINISAM_BACKEND as a backend name (any letter case, spaces around it ignored), or None
    when it is unset or empty; a value that names no backend is refused."""
    text = os.environ.get("MINISAM_BACKEND", "")
    if not text.strip():
        return None
    if text.strip().lower() not in BACKENDS:
        raise Refused(
            f"MINISAM_BACKEND is {text!r}, which is not a backend: set it to numpy or cupy, or unset it"
        )
    return text.strip().lower()


def _backend_default(given: dict) -> dict:
    """``{"backend": MINISAM_BACKEND}`` when the variable is set and --backend was not typed
    (the flag wins), else ``{}``; kept apart from ``given`` so that messages can name its source."""
    chosen = backend_from_environment()  # a malformed value is refused even beside --backend
    return {} if chosen is None or "backend" in given else {"backend": chosen}


def refuse_a_malformed_environment(command: str) -> None:
    """The variables minisam reads, checked before any work: the thread counts, MINISAM_BACKEND
    (demo and reproduce run on NumPy only: their runs are compared with stored NumPy runs)."""
    from . import threads

    threads.check_environment()
    backend = backend_from_environment()
    if command in ("demo", "reproduce") and backend not in (None, "numpy"):
        raise Refused(
            f"MINISAM_BACKEND={backend}: {command} runs on NumPy, as its stored results were made "
            "(a run on another backend would not match them bit for bit); unset MINISAM_BACKEND"
        )
    if command == "bench" and backend == "cupy":
        refuse_an_unusable_backend(backend, from_environment=True)


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
        if name == "rho" and given.get("sharpness"):  # the radius of the ρ-sharpness measured at the end
            continue
        if name in given and not set(readers) & set(optimizers):
            also = " (and to --sharpness)" if name == "rho" else ""
            raise Refused(
                f"{_flag(name)} applies only to {', '.join(readers)}{also}, and this run uses "
                f"{', '.join(optimizers)}: leave it out or choose a matching optimizer"
            )
    if "hidden" in given and model != "mlp":
        raise Refused(f"--hidden sets the MLP's sizes, and this run uses --model {model}: leave it out")
    if "alpha" in given and given.get("search_every") != 0:  # step 0 searches and replaces it
        raise Refused(
            "--alpha is the α XSAM uses until its first search, and it searches at step 0 unless "
            "--search-every 0: add --search-every 0 (never search, keep this α), or leave --alpha out"
        )


def refuse_a_folder_with_an_earlier_run(run_dir: Path, resumable: bool) -> None:
    for name in (CHECKPOINT, "results.json"):
        try:
            there = (run_dir / name).exists()
        except OSError:  # a name too long to look up: check_output_folder says so
            return
        if there:
            can_resume = resumable and (run_dir / CHECKPOINT).exists()
            hint = f"resume it with --resume {run_dir / CHECKPOINT}, or " if can_resume else ""
            raise Refused(f"--out {run_dir} already holds a run ({name}): {hint}choose another --out")


def refuse_repeats(flag: str, values: list) -> None:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise Refused(f"{flag} lists {', '.join(repeated)} more than once: give each once")


def refuse_an_unusable_backend(backend: str, from_environment: bool = False) -> None:
    """CuPy asked for where it cannot run: say why, and how to stay on NumPy."""
    import minisam as ms

    reason = ms.backend.gpu_unavailable_reason() if backend == "cupy" else None
    if reason is not None and from_environment:
        raise Refused(
            f"MINISAM_BACKEND=cupy asks for CuPy, which cannot run here: {reason.rstrip('.')}; "
            "unset MINISAM_BACKEND, or set it to numpy, to use NumPy"
        )
    if reason is not None:
        raise Refused(
            f"--backend cupy cannot run here: {reason.rstrip('.')}; leave --backend out to use NumPy"
        )


def _default_folder(command: str) -> Path:
    return Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"


@contextmanager
def run_folder(path: Path, fresh: bool = False):
    """Make the run folder, say where it is, and yield its path. ``fresh`` (the default folder,
    named by the time) must be a new folder: a run started in the same second gets ``<name>-2``
    (``-3``, ...) instead of sharing it. If the run fails before writing anything, the folders
    made here are taken away again, the run folder and any parents made for it."""
    existed, missing_parents = path.exists(), [p for p in path.parents if not p.exists()]
    name, number = path.name, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=not fresh)
            break
        except FileExistsError:
            if not fresh:
                raise
            number += 1
            path = path.with_name(f"{name}-{number}")
        except OSError as err:  # a file system that refuses (/proc, read-only, a name too long)
            _remove_empty(missing_parents)
            raise Refused(
                f"run folder {path} cannot be made ({err.strerror or err}): choose another --out"
            ) from err
    made = ([path] if fresh or not existed else []) + missing_parents
    try:
        print(f"run folder: {path}/", flush=True)
        yield path
    except BaseException:
        _remove_empty(made)
        raise


def _remove_empty(folders) -> None:
    """Remove the folders, deepest first, while they are empty."""
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink() or any(folder.iterdir()):
            return
        folder.rmdir()


@contextmanager
def quiet_overflow():
    """A loss that overflows is reported once, by NonFiniteLoss naming the epoch and step;
    NumPy's own overflow warnings on the way there would only add lines."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        yield


class OutputClosed(Exception):
    """Standard output failed under a running command: its reader went away (``... | head -1``)
    or its disk is full. ``kept`` says what the command had saved, where it knows."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error, self.kept = error, ""


class _GuardedOutput:
    """sys.stdout, with a failed write or flush raised as OutputClosed: so that it is told apart
    from a failure to write a result file (whose OSError names the file)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as err:
            raise OutputClosed(err) from err

    def flush(self):
        try:
            return self._stream.flush()
        except OSError as err:
            raise OutputClosed(err) from err

    def __getattr__(self, name):
        return getattr(self._stream, name)


# ---------------------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------------------


def _resumed_config(args, given: dict, environment: dict):
    """The checkpoint of --resume, read, and its configuration with the flags that may change;
    refused when a flag (or MINISAM_BACKEND) disagrees with the settings it was made with."""
    from minisam import train as training

    state = training.read_checkpoint(args.resume)
    saved = training.config_of(state)
    if environment and environment["backend"] != saved.backend:
        raise Refused(
            f"MINISAM_BACKEND={environment['backend']}, and {state['path']} was made with --backend "
            f"{saved.backend}: a resumed run keeps the settings it was made with; unset MINISAM_BACKEND "
            f"or pass --backend {saved.backend}"
        )
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
    return state, config


def run_train(args) -> int:
    import minisam as ms
    from minisam import train as training

    given = _given(args)
    with before_any_work():
        environment = _backend_default(given)
        state = None
        if args.resume is not None:
            state, config = _resumed_config(args, given, environment)
            run_dir = args.out or state["path"].parent
            if run_dir.resolve() != state["path"].parent.resolve():
                refuse_a_folder_with_an_earlier_run(run_dir, resumable=False)
        else:
            config = replace(RunConfig(), **given, **environment)
            refuse_options_that_do_not_apply(given, [config.optimizer], config.model)
            run_dir = args.out or _default_folder("train")
            if args.out is not None:
                refuse_a_folder_with_an_earlier_run(run_dir, resumable=True)
        config.validate()
        training.check_data(config.dataset)
        training.check_output_folder(run_dir, "--out")
        refuse_an_unusable_backend(config.backend, from_environment="backend" in environment)
        ms.backend.use(config.backend)

    extending = state is not None and config.epochs != training.config_of(state).epochs
    fresh = args.out is None and state is None
    try:
        with run_folder(run_dir, fresh=fresh) as run_dir, quiet_overflow():
            if state is not None:
                print(
                    f"resuming {state['path']} after epoch {int(state['epoch'])} with its own settings"
                    + (f", extended to {config.epochs} epochs" if extending else ""),
                    flush=True,
                )
            resume = None if state is None else state["path"]
            result = training.train(config, run_dir=run_dir, resume=resume)
    except training.Interrupted as stop:
        raise Stopped(_interrupted_train(stop, config, extending)) from None
    except KeyboardInterrupt:  # outside the epochs: loading the data, the final measurements
        raise Stopped(f"interrupted; {_kept(run_dir, config, extending)}") from None
    except OutputClosed as closed:
        closed.kept = _kept(run_dir, config, extending)
        raise
    try:
        print("final: " + ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in result.final.items()))
        print(f"results in {run_dir}/", flush=True)
    except OutputClosed as closed:
        closed.kept = f"the run had finished: its results are in {run_dir}/"
        raise
    return 0


def _kept(run_dir: Path, config: RunConfig, extending: bool) -> str:
    """What a run stopped outside its epochs has kept, and how to go on."""
    checkpoint, extend = run_dir / CHECKPOINT, f" --epochs {config.epochs}" if extending else ""
    if checkpoint.exists():
        return f"the finished epochs are saved: resume with {PROG} train --resume {checkpoint}{extend}"
    return "no epoch had finished: nothing to resume"


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
        environment = _backend_default(given)
        optimizers, seeds = list(args.optimizers), list(args.seeds)
        refuse_repeats("--optimizers", optimizers)
        refuse_repeats("--seeds", seeds)
        base = replace(RunConfig(), **given, **environment)
        refuse_options_that_do_not_apply(given, optimizers, base.model)
        comparison.check_plan(base, optimizers, seeds)
        training.check_data(base.dataset)
        run_dir = args.out or _default_folder("compare")
        if args.out is not None:
            refuse_a_folder_with_an_earlier_run(run_dir, resumable=False)
        training.check_output_folder(run_dir, "--out")
        refuse_an_unusable_backend(base.backend, from_environment="backend" in environment)
        ms.backend.use(base.backend)

    _use_agg()
    with run_folder(run_dir, fresh=args.out is None) as run_dir, quiet_overflow():
        try:
            summary = comparison.compare(base, optimizers=optimizers, seeds=seeds, run_dir=run_dir)
        except training.Interrupted as stop:
            raise Stopped(
                f"interrupted during epoch {stop.epoch} of a run; compare keeps no checkpoints, "
                "so run the command again"
            ) from None
        except OutputClosed as closed:
            closed.kept = "compare keeps no checkpoints: run it again with its output kept"
            raise
    try:
        print(comparison.format_table(summary["rows"], seeds))
        print(f"results and figures in {run_dir}/", flush=True)
    except OutputClosed as closed:
        closed.kept = f"the runs had finished: results and figures are in {run_dir}/"
        raise
    return 0


def run_demo(args) -> int:
    from minisam import demo
    from minisam import train as training

    with before_any_work():
        run_dir = args.out or _default_folder("demo")
        if args.out is not None:
            refuse_a_folder_with_an_earlier_run(run_dir, resumable=False)
        training.check_output_folder(run_dir, "--out")
        training.check_data("mnist1d")  # part 2 trains on MNIST-1D
    _use_agg()
    with run_folder(run_dir, fresh=args.out is None) as run_dir:
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


# ---------------------------------------------------------------------------------------
# The process: signals, standard output, and one line per failure
# ---------------------------------------------------------------------------------------


@contextmanager
def sigterm_as_ctrl_c(received: list):
    """Within the block, SIGTERM (``kill``, a job scheduler's stop) ends the command as Ctrl-C
    does: the partial checkpoint and an empty run folder are removed, and one line says how to
    resume. ``received`` gets the signal's number. A SIGTERM the parent ignores stays ignored."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        received.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _tolerant_stdout() -> None:
    """A character the output's encoding lacks (θ and ± under PYTHONIOENCODING=ascii, a stray
    byte of a file name) is written escaped, as stderr does, instead of failing the command."""
    if sys.stdout is not None and sys.stdout is sys.__stdout__ and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")


@contextmanager
def guarded_stdout():
    """Within the block, a failed write to the process's stdout raises OutputClosed."""
    if sys.stdout is None or sys.stdout is not sys.__stdout__:
        yield
        return
    sys.stdout = _GuardedOutput(sys.stdout)
    try:
        yield
    finally:
        sys.stdout = sys.__stdout__


def _release_stdout() -> None:
    """If what was printed can no longer be written (the reader of a pipe has gone, a full disk),
    send the rest to os.devnull, so that Python's flush at exit adds no second message."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        if sys.stdout is sys.__stdout__:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):  # stdout itself closed: nothing is left to flush
                pass


def _dispatch(args) -> int:
    with before_any_work():
        refuse_a_malformed_environment(args.command)
    if args.command == "bench":  # it sets the thread limits of each measurement itself
        from . import bench

        with before_any_work():
            bench.check_arguments(args)
        return bench.run(args)
    from . import threads

    threads.use_one_blas_thread()
    if args.command in ("train", "compare", "demo"):
        return {"train": run_train, "compare": run_compare, "demo": run_demo}[args.command](args)
    module = importlib.import_module(f"{__package__}.{args.command}")
    if hasattr(module, "check_arguments"):
        with before_any_work():
            module.check_arguments(args)
    return module.run(args)


def main(argv=None) -> int:
    import signal

    starting = getattr(sys.modules.get("minisam"), "_interrupted_while_starting", None)
    if starting is not None and signal.getsignal(signal.SIGINT) is starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C is KeyboardInterrupt again
    _tolerant_stdout()
    parser, commands = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:  # --help into a pipe already closed: the reader had what it wanted
        _release_stdout()
        return 0
    prog = commands[args.command].prog
    debug, received = False, []
    try:
        with sigterm_as_ctrl_c(received), guarded_stdout():
            debug = debug_requested()
            status = _dispatch(args)
            if sys.stdout is not None:
                sys.stdout.flush()  # a closed pipe or a full disk shows here, not as a warning at exit
            return status
    except Refused as err:
        if debug and err.__cause__ is not None:
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        if debug:
            raise
        _release_stdout()
        print(f"{prog}: {one_line(stop) if isinstance(stop, Stopped) else 'interrupted'}", file=sys.stderr)
        return 128 + received[0] if received else 130
    except OutputClosed as closed:
        if debug:
            raise
        _release_stdout()
        what = (
            "was closed (piped into head?)"
            if isinstance(closed.error, BrokenPipeError)
            else f"cannot be written ({closed.error.strerror or closed.error})"
        )
        then = f"; {closed.kept}" if closed.kept else ", so the command stopped"
        print(f"{prog}: error: standard output {what}{then}", file=sys.stderr)
        return 1
    except Exception as err:
        if debug:
            raise
        print(f"{prog}: error: {_failure_line(err)}", file=sys.stderr)
        return 1


def _failure_line(err: Exception) -> str:
    """What a failed run prints after ``error:``."""
    if isinstance(err, (ValueError, TypeError, KeyError, OSError, RuntimeError)):
        return one_line(err)
    return (
        f"{type(err).__name__}: {one_line(err)} "
        "(a bug? rerun with MINISAM_DEBUG=1 for the traceback and report it)"
    )


if __name__ == "__main__":
    sys.exit(main())
