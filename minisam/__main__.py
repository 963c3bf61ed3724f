"""The command line: ``python -m minisam {demo,train,compare,bench} ...``.

python -m minisam demo                               # the tour: landscape + MNIST-1D
python -m minisam train --optimizer xsam --epochs 10
python -m minisam compare --optimizers sgd sam xsam --seeds 0 1 2 --label-noise 0.2
python -m minisam bench --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path

from .train import DATASETS, MODELS, OPTIMIZERS, SCHEDULES, RunConfig


def _number(kind, rule: str, accept):
    """An argparse type: text -> ``kind``, refused unless ``accept(value)``; ``rule`` says why."""
    expected = "a whole number" if kind is int else "a number"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    return parse


_positive_float = _number(float, "positive", lambda v: v > 0)
_positive_int = _number(int, "positive", lambda v: v > 0)
_non_negative = _number(float, "non-negative", lambda v: v >= 0)
_count = _number(int, "0 or more", lambda v: v >= 0)
_fraction = _number(float, "in [0, 1)", lambda v: 0 <= v < 1)


def _add_run_arguments(parser, with_optimizer=True):
    d = RunConfig()
    g = parser.add_argument_group("data and model")
    g.add_argument(
        "--dataset", choices=DATASETS, default=d.dataset, help="bundled or toy dataset (default %(default)s)"
    )
    g.add_argument("--model", choices=MODELS, default=d.model, help="network (default %(default)s)")
    g.add_argument(
        "--hidden",
        type=_positive_int,
        nargs="+",
        default=list(d.hidden),
        help="MLP hidden sizes (default %(default)s)",
    )
    g.add_argument(
        "--label-noise",
        type=_fraction,
        default=d.label_noise,
        help="fraction of training labels flipped to another class (default %(default)s)",
    )
    g = parser.add_argument_group("optimization")
    if with_optimizer:
        g.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="(default %(default)s)")
    g.add_argument("--lr", type=_positive_float, default=d.lr, help="learning rate (default %(default)s)")
    g.add_argument("--momentum", type=_non_negative, default=d.momentum, help="(default %(default)s)")
    g.add_argument("--weight-decay", type=_non_negative, default=d.weight_decay, help="(default %(default)s)")
    g.add_argument(
        "--rho",
        type=_positive_float,
        default=d.rho,
        help="SAM-family neighbourhood radius (default %(default)s; ASAM measures it in "
        "its own scaled units, and its paper uses 0.5)",
    )
    g.add_argument("--rho-max", type=_positive_float, default=None, help="XSAM probe radius (default 2·rho)")
    g.add_argument(
        "--alpha", type=_non_negative, default=d.alpha, help="XSAM's initial alpha (default %(default)s)"
    )
    g.add_argument(
        "--ascent-steps",
        type=_positive_int,
        default=d.ascent_steps,
        help="ascent steps k (default %(default)s)",
    )
    g.add_argument(
        "--search-every",
        type=_count,
        default=None,
        help="XSAM: steps between alpha searches (default: once per epoch; 0 never)",
    )
    g.add_argument("--eta", type=_non_negative, default=d.eta, help="ASAM's eta (default %(default)s)")
    g.add_argument("--epochs", type=_positive_int, default=d.epochs, help="(default %(default)s)")
    g.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="(default %(default)s)")
    g.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=d.schedule,
        help="learning-rate schedule (default %(default)s)",
    )
    g = parser.add_argument_group("run")
    if with_optimizer:
        g.add_argument("--seed", type=int, default=d.seed, help="(default %(default)s)")
    g.add_argument("--backend", choices=("numpy", "cupy"), default=d.backend, help="(default %(default)s)")
    g.add_argument("--sharpness", action="store_true", help="measure λ_max and the ρ-sharpness at the end")
    g.add_argument("--out", type=Path, default=None, help="run folder (default runs/<command>-<time>)")


def _config(args, **overrides) -> RunConfig:
    values = {f.name: getattr(args, f.name) for f in fields(RunConfig) if hasattr(args, f.name)}
    values["hidden"] = tuple(values["hidden"])
    values.update(overrides)
    return RunConfig(**values)


def _run_dir(args, command) -> Path:
    return args.out or Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minisam",
        description="minisam: Sharpness-Aware Minimization (SGD, SAM, ASAM, XSAM) from scratch.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,train,compare,bench,reproduce}")

    p = sub.add_parser(
        "demo",
        help="the tour: SGD/SAM/XSAM on a sharp/flat landscape and on MNIST-1D",
        description="Runs on the bundled data with NumPy, in a few minutes on 2 cores.",
    )
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/demo-<time>)")
    p.add_argument("--quick", action="store_true", help="fewer epochs and seeds (for tests)")

    p = sub.add_parser(
        "train",
        help="train one model with one optimizer",
        description="Train one model; writes results.json, history.csv and a checkpoint.",
    )
    _add_run_arguments(p)
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="continue from a checkpoint.npz with the settings it was made with",
    )

    p = sub.add_parser(
        "compare",
        help="several optimizers x seeds on the same data and initialisations",
        description="Prints a table of mean ± std over seeds and writes figures.",
    )
    _add_run_arguments(p, with_optimizer=False)
    p.add_argument("--optimizers", choices=OPTIMIZERS, nargs="+", default=["sgd", "sam", "xsam"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])

    sub.add_parser("bench", help="speed ratios measured side by side (run by hand; see bench --help)")
    from . import reproduce  # the paper's main result at small scale (lessons/results/PROTOCOL.md)

    reproduce.add_arguments(
        sub.add_parser("reproduce", help="the main result: SGD/SAM/XSAM by a fixed protocol")
    )

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # bench parses its own options
        from . import bench

        return bench.main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "demo":
        from . import demo

        return demo.main(out=args.out, quick=args.quick)

    from . import train as training

    try:
        if args.command == "reproduce":
            return reproduce.run(args)
        if args.command == "train":
            config = _config(args)
            if args.resume is not None:  # a resumed run continues with the settings it had
                config = training.config_of(args.resume)
                print(f"resuming from {args.resume} with its own settings")
            run_dir = args.out or (args.resume.parent if args.resume else _run_dir(args, "train"))
            result = training.train(config, run_dir=run_dir, resume=args.resume)
            print("final:", {k: round(v, 4) for k, v in result.final.items()})
            print(f"results in {run_dir}/")
        else:
            run_dir = _run_dir(args, "compare")
            summary = training.compare(
                _config(args), optimizers=args.optimizers, seeds=args.seeds, run_dir=run_dir
            )
            print(training.format_table(summary["rows"], args.seeds))
            print(f"results and figures in {run_dir}/")
    except (ValueError, OSError, training.NonFiniteLoss) as err:
        parser.exit(2, f"python -m minisam {args.command}: error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
