"""The bench report: what ``python -m minisam bench`` prints, section by section.

    networks    a training step of three networks: minisam, NumPy by hand, PyTorch CPU
    threads     minisam's MLP step with one BLAS thread and with the library's default
    optimizers  SAM against SGD, XSAM against SAM (the speed targets of the redesign)
    allocator   glibc malloc settings: step time and peak memory (child processes)

Every measurement but the threads row runs with one BLAS thread (PyTorch too), as
medians of interleaved rounds in random order (``timing.py``).
"""

from __future__ import annotations

import argparse
import platform
from contextlib import contextmanager

import numpy as np

from . import allocator, gpu, optimizers
from .networks import (
    CNN1D_LAYERS,
    CNN_LAYERS,
    MLP_LAYERS,
    NumpyCNN,
    NumpyMLP,
    batch,
    minisam_net,
    minisam_step,
    torch_or_none,
    torch_step,
    torch_twin,
)
from .timing import (
    interleaved_medians,
    library_default_blas_threads,
    machine_note,
    millis,
)

SECTIONS = ("networks", "threads", "optimizers", "allocator")

# The redesign's speed targets (minisam/optim/ALGORITHMS.md, "Cost" under SAM and XSAM).
SAM_OVER_SGD = 2.15  # two forward+backward passes make 2.0; the vector work around them the rest
XSAM_OVER_SAM = 1.03  # XSAM that never searches: ψ, v(α) and one extra combination of arrays


def _agreement(model, layers, x, y, steps=3):
    """Largest loss difference between minisam and its PyTorch twin over a few SGD steps."""
    twin = torch_twin(model, layers)
    ours, theirs = minisam_step(model, lr=0.01), torch_step(twin, lr=0.01)
    return max(abs(ours(x, y) - theirs(x, y)) for _ in range(steps))


def network_rows(rounds: int, repeat: int) -> list:
    """minisam vs hand-written NumPy vs PyTorch on the MLP, the 2-D CNN and the 1-D CNN."""
    import minisam as ms

    torch = torch_or_none()
    rows = []
    cases = [
        ("MLP 784-256-256-10, batch 128", MLP_LAYERS, (128, 784), NumpyMLP([784, 256, 256, 10])),
        ("CNN 1→16→32 on 28x28, batch 64", CNN_LAYERS, (64, 1, 28, 28), NumpyCNN()),
        ("1-D CNN on MNIST-1D (1x40), batch 64", CNN1D_LAYERS, (64, 1, 40), None),
    ]
    for title, layers, shape, numpy_net in cases:
        ms.manual_seed(0)
        x, y = batch(shape)
        model = minisam_net(layers)
        ours = minisam_step(model)
        steps = {"minisam": lambda: ours(x, y)}
        if numpy_net is not None:
            steps["NumPy by hand"] = lambda: numpy_net.step(x, y)
        agreement = None
        if torch is not None:
            agreement = _agreement(minisam_net(layers), layers, x, y)
            theirs = torch_step(torch_twin(model, layers))
            steps["PyTorch CPU"] = lambda: theirs(x, y)
        medians = interleaved_medians(steps, rounds=rounds, repeat=repeat)
        rows.append((title, medians, agreement))
    return rows


def thread_rows(rounds: int, repeat: int, default_threads: int) -> dict:
    """minisam's MLP SGD step with one BLAS thread and with the library's default count,
    interleaved (each call sets its own limit)."""
    import minisam as ms
    from minisam.threads import blas_threads

    ms.manual_seed(0)
    x, y = batch((128, 784))
    step = minisam_step(minisam_net(MLP_LAYERS))

    def with_threads(limit):
        def run():
            with blas_threads(limit):
                step(x, y)

        return run

    return interleaved_medians(
        {"one": with_threads(1), "default": with_threads(default_threads)}, rounds=rounds, repeat=repeat
    )


def _verdict(ratio: float, target: float) -> str:
    return f"target <= {target:.2f}: {'met' if ratio <= target else 'NOT met'}"


def print_networks(rounds: int, repeat: int) -> None:
    torch = torch_or_none()
    print("== a training step, one thread for every contender")
    print(
        "   PyTorch:", f"{torch.__version__}, set to 1 thread" if torch else "not installed (its columns: -)"
    )
    print(
        f"{'network':<40}{'minisam':>12}{'NumPy by hand':>16}{'PyTorch CPU':>14}"
        f"{'vs NumPy':>10}{'vs PyTorch':>12}"
    )
    with one_torch_thread():
        rows = network_rows(rounds, repeat)
    for title, medians, agreement in rows:
        ours = medians["minisam"]
        numpy_t, torch_t = medians.get("NumPy by hand"), medians.get("PyTorch CPU")
        print(
            f"{title:<40}{millis(ours):>12}"
            f"{millis(numpy_t) if numpy_t else '-':>16}{millis(torch_t) if torch_t else '-':>14}"
            f"{f'{ours / numpy_t:.2f}x' if numpy_t else '-':>10}"
            f"{f'{ours / torch_t:.2f}x' if torch_t else '-':>12}"
            + (f"   (loss vs PyTorch: max diff {agreement:.1e})" if agreement is not None else "")
        )
    print("targets: MLP <= 1.25x NumPy by hand and not slower than PyTorch; CNN <= 1.5x PyTorch")


def print_threads(rounds: int, repeat: int, default_threads: int) -> None:
    from minisam.threads import chosen_by_user

    print("== BLAS threads: minisam's MLP step (SGD, batch 128)")
    user = chosen_by_user()
    if user is not None:
        print(f"   ({user} is set, so both rows use your setting; unset it to compare)")
    medians = thread_rows(rounds, repeat, default_threads)
    one, default = medians["one"], medians["default"]
    print(f"   one thread (what the commands use)        {millis(one)}")
    print(
        f"   library default ({default_threads} threads)              {millis(default)}"
        f"   ({default / one:.2f}x the one-thread time)"
    )
    print("   (on a busy machine the default's threads wait for each other: compare at rest and under load)")


def print_optimizers(rounds: int, children: int) -> None:
    print(
        f"== optimizers: minisam MLP 784-256-256-10, batch 128, in {children} child processes, each "
        f"{rounds} rounds of 100-step blocks"
    )
    results = optimizers.run_children(rounds, children)
    median = optimizers.summary(results)
    per_step = ", ".join(f"{name} {ms:.2f} ms" for name, ms in median["cpu_ms"].items())
    print(f"   per step (CPU time, median over children): {per_step}")
    print("   ratios: CPU time, within each round; the median over rounds, then over children (each child's)")
    targets = {"SAM / SGD": SAM_OVER_SGD, "XSAM never searching / SAM": XSAM_OVER_SAM}
    for label in optimizers.RATIOS:
        ratio, each = median["ratios"][label], " ".join(f"{r['ratios'][label]:.3f}" for r in results)
        verdict = (
            _verdict(ratio, targets[label]) if label in targets else "shown: 21 forward passes per search"
        )
        print(f"   {label:<35}{ratio:.3f}x  ({verdict})  [{each}]")


def print_allocator(rounds: int) -> None:
    rows = allocator.allocator_rows(rounds)
    (step_default, peak_default), (step_kept, peak_kept) = rows["default"], rows["kept"]
    print("== malloc (child processes, one thread): CNN step, and peak memory of a 2-epoch `train` run")
    print(f"   (each child: medians of {rounds} rounds; the step is the median over 3 children per setting)")
    print(f"   default glibc malloc            {millis(step_default)}   peak {peak_default:6.0f} MiB")
    print(f"   {' '.join(f'{k}={v}' for k, v in allocator.KEEP_MEMORY.items())}")
    print(
        f"                                   {millis(step_kept)}   peak {peak_kept:6.0f} MiB"
        f"   ({step_default / step_kept:.2f}x faster)"
    )
    print("   minisam leaves malloc alone (a process-wide choice); set the variables above to opt in")


@contextmanager
def one_torch_thread():
    """PyTorch limited to one thread within the block, like NumPy's BLAS."""
    torch = torch_or_none()
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def add_arguments(parser) -> None:
    """The bench's options, on ``parser`` (the ``bench`` subcommand's)."""
    from minisam.__main__ import POSITIVE_INT, one_of

    parser.add_argument("--quick", action="store_true", help="fewer rounds (noisier), for a first look")
    parser.add_argument(
        "--rounds",
        type=POSITIVE_INT,
        default=None,
        help="interleaved rounds per row (default 15; 5 with --quick)",
    )
    parser.add_argument(
        "--only",
        type=one_of(SECTIONS),
        choices=SECTIONS,
        nargs="+",
        default=None,
        metavar="SECTION",
        help=f"run only these sections, from {', '.join(SECTIONS)}. On a 2-core machine at load 8-9, "
        "--only optimizers threads took 98 s and the whole report with --quick under 2 minutes",
    )
    parser.add_argument(
        "--skip-allocator", action="store_true", help="skip the child processes of the allocator section"
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="instead: CuPy vs NumPy (pytest -m gpu, one SAM/XSAM step, CNN speed)",
    )


MAX_ROUNDS = 1000


def check_arguments(args) -> None:
    """Refuse, before any measurement, what the bench would otherwise ignore or fail on late."""
    from minisam.checks import ArgumentError

    if args.rounds is not None and args.rounds > MAX_ROUNDS:
        raise ArgumentError(
            f"--rounds must be at most {MAX_ROUNDS} (each round times every row), got {args.rounds}"
        )
    if args.only is not None and len(set(args.only)) != len(args.only):
        raise ArgumentError(f"--only names a section twice: {' '.join(args.only)}")
    if args.gpu:
        if args.only is not None or args.skip_allocator:
            raise ArgumentError("--gpu is a report of its own: it does not take --only or --skip-allocator")
        import minisam as ms

        reason = ms.backend.gpu_unavailable_reason()
        if reason is not None:
            raise ArgumentError(f"--gpu needs a GPU that CuPy can use: {reason}")


def run(args) -> int:
    rounds = args.rounds if args.rounds is not None else (5 if args.quick else 15)
    repeat = 3 if args.quick else 5
    if args.gpu:
        return gpu.gpu_report(rounds)
    sections = args.only or [s for s in SECTIONS if not (s == "allocator" and args.skip_allocator)]

    import minisam as ms
    from minisam import threads

    default_threads = library_default_blas_threads()  # before anything limits it
    print(
        f"minisam bench: NumPy {np.__version__} on {platform.machine()}, backend {ms.backend.name}, "
        f"float32; medians of interleaved rounds in random order ({rounds} per row unless a section says)"
    )
    print(
        f"{threads.describe()}; the library's default is {default_threads}; "
        "every row but the threads row uses 1"
    )
    print(machine_note())
    with threads.blas_threads(1):
        for section in SECTIONS:
            if section not in sections:
                continue
            print()
            if section == "networks":
                print_networks(rounds, repeat)
            elif section == "threads":
                print_threads(rounds, repeat, default_threads)
            elif section == "optimizers":
                print_optimizers(max(rounds // 5, 3), 3 if args.quick else 5)
            else:
                print_allocator(max(rounds // 3, 3))
    return 0


def main(argv=None) -> int:
    """The bench on its own: ``python -m minisam.bench [options]``."""
    parser = argparse.ArgumentParser(prog="python -m minisam bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
    except ValueError as err:
        parser.error(str(err))
    return run(args)
